"""The secrets broker of one node: upstream secrets sealed by the vault, the lease book, and the
engines that turn leases into credentials (docs/secrets.md).

The broker is synchronous library code over the node's database and vault; the node serves it
over secure channels (running calls in a worker thread) and calls `sweep` from its maintenance
loop and `revoke_for_feed` whenever its revocation feed changes. Every call takes the verified
caller (`VerifiedCredential`) and `now`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from troth import limits
from troth.credentials import VerifiedCredential, VerifiedFeed
from troth.crypto import KeyType
from troth.dataclass_init import quick_init
from troth.encoding.ijson import load_json
from troth.errors import DecodeError, SecretError, SecretFailure
from troth.identity import Identifier
from troth.secrets.audit import AuditKind, AuditSink, SqliteAuditLog
from troth.secrets.book import LeaseBook, lease_account
from troth.secrets.broker_upstreams import BrokerUpstreams
from troth.secrets.engine import Engine, Grant, SecretSpec, parse_spec
from troth.secrets.engines.http_inject import (
    HttpInjectEngine,
    HttpRequest,
    HttpResponse,
    PreparedForward,
)
from troth.secrets.engines.postgres import PostgresEngine
from troth.secrets.engines.token import TokenEngine
from troth.secrets.issues import ForwardBudget, IssueBudget
from troth.secrets.jwt import Jwks, LeaseStates, ValidatedToken, validate_token
from troth.secrets.keys import BrokerKeys
from troth.secrets.lease import (
    Lease,
    LeaseCredential,
    LeaseHandle,
    LeaseId,
    LeaseRequest,
    LeaseState,
    SecretValue,
    check_secret_name,
)
from troth.secrets.orphans import OrphanSweep
from troth.secrets.policy import DenyAllPolicy, LeasePolicy
from troth.secrets.states import BrokerClock, PublishedLeases, check_token_of_lease
from troth.secrets.store import SecretRecord, SqliteSecretStore
from troth.secrets.sweep import (
    MAX_SWEEP_FIRST_ATTEMPTS,
    SWEEP_FIRST_SECONDS,
    Due,
    RetryBudget,
    fair_order,
)
from troth.secrets.upstreams import check_value as _check_value
from troth.secrets.upstreams import config_text as _config_text
from troth.secrets.upstreams import engine_call as _engine_call
from troth.secrets.upstreams import release as _release
from troth.secrets.upstreams import secret_aad as _secret_aad
from troth.storage import SqliteDatabase
from troth.vault import SealingVault

__all__ = ["Broker", "IssuedLease", "SweepReport"]

log = logging.getLogger("troth.secrets.broker")

_F = SecretFailure
_T = TypeVar("_T")
_NO_UPSTREAM: Final = SecretValue(b"")  # what an engine that reads no upstream value is handed


@quick_init  # one per issue
@dataclass(frozen=True, slots=True)
class IssuedLease:
    """A new lease: `lease_id` goes to the agent once (it is never stored), with `credential`."""

    lease_id: LeaseId
    lease: Lease
    credential: LeaseCredential

    def to_json(self) -> dict[str, Any]:
        """For the agent that asked (holds the lease id and the credential)."""
        return {
            "lease_id": self.lease_id.text(),
            "lease": self.lease.to_json(),
            "credential": self.credential.reveal(),
        }


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep did."""

    expired: int
    revoked: int
    failed: int
    orphans: int
    deferred: int = 0
    """Due revocations (first attempts and retries) left to the next sweeps (their budgets
    spent: troth.secrets.sweep)."""

    def to_json(self) -> dict[str, int]:
        return {
            "expired": self.expired,
            "revoked": self.revoked,
            "failed": self.failed,
            "orphans": self.orphans,
            "deferred": self.deferred,
        }


_PUT_ATTEMPTS: Final = 3  # rounds of revoking before a moved secret is stored or removed
MAX_STUCK_REPORTED: Final = 100
"""Stuck revocations `Broker.stuck_revocations` lists at most (the most attempted first)."""


class Broker(BrokerUpstreams):
    """Leases of upstream secrets to verified agents (see the module docstring)."""

    def __init__(
        self,
        db: SqliteDatabase,
        vault: SealingVault,
        *,
        now: int,
        policy: LeasePolicy | None = None,
        audit: AuditSink | None = None,
        issuer: str = "troth-broker",
        key_type: KeyType = KeyType.ED25519,
        quota: int = limits.DEFAULT_LEASE_QUOTA,
        issues: IssueBudget | None = None,
        forwards: ForwardBudget | None = None,
    ) -> None:
        """`issues`: how many leases are issued per member and in all (default: the named
        limits, `limits.LEASE_ISSUE_*`); `forwards`: how many requests are forwarded per member
        and in all (`limits.LEASE_FORWARD_*`)."""
        self.issues = issues or IssueBudget()
        self.forwards = forwards or ForwardBudget()
        self.store = SqliteSecretStore(db)
        self.clock = BrokerClock(self.store)
        """The latest `now` given: every call judged at max(now, it) (review 54e, secrets 3)."""
        self.vault = vault
        self.issuer = issuer
        self.keys = BrokerKeys(self.store, vault, key_type=key_type, now=now)
        self.audit_log = SqliteAuditLog(db) if audit is None else None
        self.book = LeaseBook(
            self.store,
            policy or DenyAllPolicy(),
            audit or self.audit_log,  # type: ignore[arg-type]
            self.keys.hasher,
            quota=quota,
            # the revocations' records when `audit` refuses them (review 34g, secrets 1)
            fallback=None if audit is None else SqliteAuditLog(db),
        )
        self.engines: dict[str, Engine] = {}
        for engine in (
            TokenEngine(lambda _now: self.keys.token_signer(issuer)),
            PostgresEngine(role_prefix=f"tl_{self.keys.broker_id}_"),
            HttpInjectEngine(),
        ):
            self.engines[engine.kind] = engine
        self.monotonic: Callable[[], float] = time.monotonic
        """The clock the sweep's retry budget measures engine time with (tests replace it)."""
        self.retries = RetryBudget(lambda: self.monotonic())
        self.first_attempts = RetryBudget(
            lambda: self.monotonic(), seconds=SWEEP_FIRST_SECONDS, attempts=MAX_SWEEP_FIRST_ATTEMPTS
        )
        self.orphans = OrphanSweep(lambda: self.monotonic())
        """The orphan sweep's schedule and budget (troth.secrets.orphans)."""
        self._specs: dict[str, tuple[tuple[str, str], SecretSpec]] = {}
        self._upstreams: dict[tuple[str, str, str], SecretValue] = {}
        # held while open: `recover` aborts every PENDING lease only when no other broker (of
        # this process or another: the daemon, a CLI command's runtime) has the database open
        self._peers = db.peer_lock("brokers")
        # node.db restored from a copy: its token keys withdrawn first (a crash redoes it),
        # not counted (counted, a copy one write behind would read as current: review 52c)
        if self.book.restored():
            self.keys.rotate_signing_key(now, compromised=True, counted=False)
        self.restored = self.book.check_restored(now)  # and its open leases revoked (51d)

    def close(self) -> None:
        try:
            for engine in self.engines.values():
                close = getattr(engine, "close", None)
                if close is not None:
                    close()
        finally:
            self._peers.close()

    # -- upstream secrets (operators) ---------------------------------------------------------

    def put_secret(
        self,
        name: str,
        engine: str,
        config: Mapping[str, Any] | str | bytes,
        value: SecretValue | bytes,
        *,
        now: int,
    ) -> SecretSpec:
        """Store (or replace) an upstream secret, sealed by the vault; `config` is the engine's
        JSON configuration. The value never appears in the database in clear. Replacing it with
        another engine, or moving it (another `Engine.location`: another server), first revokes
        its open leases under the configuration they were issued with (what the old one created
        upstream would be out of reach afterwards); SecretError ENGINE_FAILED, nothing stored,
        if an upstream revocation fails. Stored at the same place, its REVOKING leases are tried
        at once under the new value (a fixed admin password: review 64r, postgres 1)."""
        check_secret_name(name)
        kind = self._engine(engine)
        if isinstance(config, str | bytes):
            raw = config.encode() if isinstance(config, str) else config
            try:
                config = load_json(raw, max_bytes=limits.MAX_SECRET_CONFIG_BYTES, what="config")
            except DecodeError as exc:
                raise SecretError(_F.CONFIG_INVALID, str(exc)) from None
        spec = parse_spec(name, kind, config)  # type: ignore[arg-type]
        secret = value if isinstance(value, SecretValue) else SecretValue(value)
        _check_value(engine, secret.reveal())
        text = _config_text(spec)
        if len(text.encode()) > limits.MAX_SECRET_CONFIG_BYTES:
            raise SecretError(_F.CONFIG_INVALID, "the configuration is over the limit")
        for _ in range(_PUT_ATTEMPTS):  # a lease issued while the old ones were revoked: again
            with self.store.transaction():
                before = self.store.get_config(name)
                moved = before is not None and self._moved(self._parsed(name, before), spec)
                if not moved or not self._open_leases(name):
                    aad = _secret_aad(name, engine, text)
                    sealed = self.vault.seal(self.keys.seal_key, secret.reveal(), aad)
                    self.store.put_secret(SecretRecord(name, engine, text, sealed, now))
                    self.book.audit_other(
                        AuditKind.PUT,
                        now,
                        secret=name,
                        detail=f"engine {engine}",
                        value=secret.reveal(),
                    )
                    if before is not None:  # what the old configuration reached (postgres)
                        _release(self.engines, before[0], engine)
                    stuck = [] if moved else self._revoking(name)
                    break
            self._revoke_all_of(name, now)
        else:
            raise SecretError(_F.ENGINE_FAILED, f"{name} keeps being leased: retry")
        # the revocations left stuck (an admin password changed on the server) are tried at
        # once under what was just stored, not at their next retry, up to 30 minutes later
        # (review 64r, postgres 1); a failure leaves them REVOKING with their backoff
        self._revoke_batch(stuck, now, early=True)
        return spec

    def remove_secret(self, name: str, *, now: int) -> int:
        """Revoke every lease of `name`, then delete it; returns how many leases were revoked.
        SecretError ENGINE_FAILED, nothing deleted, if an upstream revocation fails (the leases
        stay REVOKING, and the sweep retries them under the configuration still stored)."""
        spec = self.spec(name)
        for _ in range(_PUT_ATTEMPTS):  # a lease issued while the others were revoked: again
            revoked = self._revoke_all_of(name, now)
            with self.store.transaction():
                if self._open_leases(name):
                    continue
                self.store.delete_secret(name)
                self.book.audit_other(AuditKind.REMOVE, now, secret=name, detail="removed")
            self._upstreams.pop((name, spec.engine, _config_text(spec)), None)
            _release(self.engines, spec.engine)
            return revoked
        raise SecretError(_F.ENGINE_FAILED, f"{name} keeps being leased: retry")

    def _open_leases(self, name: str) -> list[Lease]:
        return self.store.open_leases_of_secret(name)

    def _revoking(self, name: str) -> list[Lease]:
        """The leases of `name` whose upstream revocation is not done yet."""
        return [lease for lease in self._open_leases(name) if lease.state is LeaseState.REVOKING]

    def _revoke_all_of(self, name: str, now: int) -> int:
        """Revoke every open lease of secret `name` under its stored configuration (the one
        they were issued with); SecretError ENGINE_FAILED if an upstream revocation failed."""
        spec = self.spec(name)
        with self.store.transaction():
            leases = self._open_leases(name)
        started = [self.book.revoke_handle(lease.handle, now) for lease in leases]
        done = [lease for lease in started if lease is not None]
        failed = self._revoke_batch(done, now, spec, early=True)
        if failed:
            raise SecretError(
                _F.ENGINE_FAILED,
                f"{failed} of {name}'s leases could not be revoked upstream: retry (the leases "
                "stay revoked; the secret is unchanged)",
            )
        return len(leases)

    def _moved(self, before: SecretSpec, after: SecretSpec) -> bool:
        """Whether what leases of `before` created upstream is out of reach under `after`."""
        if before.engine != after.engine:
            return True
        engine = self._engine(before.engine)
        return engine.location(before.settings) != engine.location(after.settings)

    def secrets(self) -> list[SecretSpec]:
        """Every stored secret's configuration (never a value)."""
        return [self.spec(record.name) for record in self.store.secrets()]

    def spec(self, name: str) -> SecretSpec:
        """Secret `name`'s configuration as stored now (parsed once per stored version)."""
        return self._parsed(name, self.store.get_config(name))

    def _parsed(self, name: str, stored: tuple[str, str] | None) -> SecretSpec:
        """The spec of `name` from its stored (engine, JSON config), parsed once per version."""
        if stored is None:
            raise SecretError(_F.NOT_CONFIGURED, name)
        cached = self._specs.get(name)
        if cached is not None and cached[0] == stored:
            return cached[1]
        spec = parse_spec(name, self._engine(stored[0]), json.loads(stored[1]))
        self._specs[name] = (stored, spec)
        return spec

    # -- leases (agents) ----------------------------------------------------------------------

    def issue(
        self,
        credential: VerifiedCredential,
        name: str,
        *,
        now: int,
        scope: Iterable[str] | None = None,
        ttl: int | None = None,
        request: LeaseRequest | None = None,
    ) -> IssuedLease:
        """Lease secret `name` to the credential's actor (policy, quota and revocation checked
        inside the transaction that writes the lease). With `request` (the agent's name for
        the request and this attempt at it), the leases its earlier attempts were issued
        (their answers lost) are revoked first, so they neither stay live nor hold the quota;
        SecretError BAD_REQUEST if this attempt or a later one was served (review 45i,
        secrets 2; docs/secrets.md, "Retried requests"). Each call spends one of the issue
        budget of the credential's member and of the broker's (`IssueBudget`); SecretError
        BUSY, nothing read or written, when either is spent (review 48o, issue rate 1). A
        refusal gives the broker's back (the member's stays spent)."""
        now = self.clock.now(now, store=False)  # its lease's locator keeps the second
        self.issues.take(lease_account(credential), now)
        try:
            if request is not None:
                earlier = self.book.supersede(credential, request, now)
                self._revoke_upstream(earlier, now, member=lease_account(credential))
            granted = self.book.open_lease(
                credential,
                name,
                scope=scope,
                ttl=ttl,
                now=now,
                spec_of=self._parsed,
                engine_ref=lambda spec, handle: self.engines[spec.engine].engine_ref(spec, handle),
                mint=self._mint_local,
                request=request,
            )
        except SecretError:  # refused, no lease written: the total is given back
            self.issues.refund_total(now)
            raise
        if granted.credential is not None:
            return IssuedLease(granted.lease_id, granted.lease, granted.credential)
        spec = granted.grant.spec
        engine, upstream = self.engines[spec.engine], self._upstream(spec)
        try:
            made = _engine_call(lambda: engine.issue(granted.grant, upstream))
        except SecretError:
            aborted = self.book.abort(granted, now)
            self._revoke_upstream([] if aborted is None else [aborted], now, spec)
            raise
        try:
            lease = self.book.activate(granted, made, now)
        except SecretError:  # revoked (the feed, a sweep) while the engine worked
            self._revoke_upstream([self._lease(granted.lease.handle)], now, spec)
            raise
        return IssuedLease(granted.lease_id, lease, made)

    def _mint_local(self, grant: Grant) -> LeaseCredential | None:
        """A local engine's credential, made inside the lease's transaction (None otherwise);
        its failure is ENGINE_FAILED, as a remote engine's and a renewal's are (review 30b,
        errors 1: a vault that could not sign escaped as the vault's error)."""
        engine = self.engines[grant.spec.engine]
        if not engine.local:
            return None
        # an engine that reads no upstream value (token) is not handed the stored one
        # (review 59g, issue 1: its look-up ran on every issue)
        if not getattr(engine, "reads_upstream", True):
            return _engine_call(lambda: engine.issue(grant, _NO_UPSTREAM))
        return _engine_call(lambda: engine.issue(grant, self._upstream(grant.spec)))

    def renew(
        self,
        credential: VerifiedCredential,
        lease_id: LeaseId,
        *,
        now: int,
        ttl: int | None = None,
    ) -> tuple[Lease, LeaseCredential]:
        """Extend the caller's lease from `now` (capped); returns it and the new credential.
        `credential` is the one the lease was issued under (its chain; EXPIRED otherwise). A
        remote engine (postgres) renews upstream with no write transaction of the node's
        database open (`LeaseBook.renew`).
        Each call spends one of the issue budgets, as `issue` does (review 48o, issue rate 2:
        each renewal writes an audit record and mints a credential)."""
        now = self.clock.now(now)
        self.issues.take(lease_account(credential), now)
        try:
            return self.book.renew(
                credential,
                lease_id,
                ttl=ttl,
                now=now,
                spec_of=self.spec,
                extend=lambda grant: _engine_call(
                    lambda: self.engines[grant.spec.engine].renew(grant, self._upstream(grant.spec))
                ),
                # a remote engine's renewal runs outside the write transaction (review 49e,
                # renewals 1); one revoked meanwhile is revoked upstream again (idempotent)
                remote=lambda spec: not self.engines[spec.engine].local,
                undo=lambda lease, spec: self._revoke_upstream([lease], now, spec, early=True),
            )
        except SecretError:  # refused in its transaction, nothing written: as for `issue`
            self.issues.refund_total(now)
            raise

    def revoke(
        self,
        caller: VerifiedCredential | Identifier,
        lease_id: LeaseId,
        *,
        now: int,
        account: Identifier | None = None,
    ) -> Lease:
        """The caller (its credential or its verified identity) revokes its own lease
        (NO_SUCH_LEASE for anyone else's); its records count for `account` (default: the
        member its credential names, else the identity itself)."""
        if account is None:
            account = lease_account(caller) if isinstance(caller, VerifiedCredential) else caller
        lease = self.book.revoke(_actor(caller), lease_id, now, account=account)
        if lease is not None:  # its records count for the member who asked (review 22d)
            self._revoke_upstream([lease], now, member=account)
        return self._lease(lease_id.handle)

    def leases(
        self, caller: VerifiedCredential | Identifier, *, include_ended: bool = False
    ) -> list[Lease]:
        """The caller's own leases (by its credential or its verified identity)."""
        return self.book.leases_of(_actor(caller), include_ended=include_ended)

    def forward(
        self, credential: VerifiedCredential, lease_id: LeaseId, request: HttpRequest, *, now: int
    ) -> HttpResponse:
        """Send `request` upstream under the caller's http-inject lease, the secret added
        (`prepare_forward`, then its `send()` on this thread)."""
        return self.prepare_forward(credential, lease_id, request, now=now).send()

    def prepare_forward(
        self, credential: VerifiedCredential, lease_id: LeaseId, request: HttpRequest, *, now: int
    ) -> PreparedForward:
        """Everything of `forward` but the upstream call: the caller's http-inject lease is
        ACTIVE at `now` and `credential` is the one it was issued under, the request passes
        the secret's rules (a refusal is audited `deny`), it is counted in the member's and
        the broker's forward budgets (`ForwardBudget`: SecretError BUSY, nothing written),
        the secret is unsealed and the forward audited `use` (fail closed: not sent unless
        recorded). `send()` may then run on another thread; the served broker calls this on
        its own thread right before it sends, so a lease revoked while the forward waited is
        never used."""
        now = self.clock.now(now)
        lease = self.book.active_lease(credential, lease_id, now)
        spec = self.spec(lease.secret)
        engine = self.engines[spec.engine]
        account = lease_account(credential)
        if not isinstance(engine, HttpInjectEngine):  # audited as every refusal (review 53t)
            refused = SecretError(_F.BAD_REQUEST, f"{spec.name} is not an http-inject secret")
            self.book.deny(refused, now, lease.identity, spec.name, lease.handle, account)
            raise refused

        def record(kind: AuditKind, detail: str) -> None:
            with self.store.transaction():
                self.book.audit_other(
                    kind,
                    now,
                    secret=spec.name,
                    identity=lease.identity,
                    lease=lease.handle,
                    detail=detail,
                    member=account,
                )

        try:
            target, headers = engine.check_request(spec, lease.scope, request)
        except SecretError as exc:
            if exc.reason is _F.FORBIDDEN_REQUEST:  # within the denial budget (review 45k)
                self.book.deny(exc, now, lease.identity, spec.name, lease.handle, account)
            raise
        # each forward writes a `use` record: counted per member and in all, as issues are
        # (review 56j, forwards 2); BUSY writes nothing
        self.forwards.take(account, now)
        secret = SecretValue(self._upstream(spec).reveal())  # its use audited before sent
        record(AuditKind.USE, f"{request.method} {request.target.partition('?')[0]}")
        return PreparedForward(engine, spec, request, target, tuple(headers), secret)

    # -- revocation and maintenance (the node) ------------------------------------------------

    def revoke_lease(self, handle: LeaseHandle, *, now: int) -> Lease:
        """An operator revokes any lease by its handle."""
        lease = self.book.revoke_handle(handle, now)
        if lease is not None:
            self._revoke_upstream([lease], now, early=True)
        return self._lease(handle)

    def revoke_identity(
        self,
        identity: Identifier,
        *,
        now: int,
        authorities: frozenset[Identifier] | None = None,
    ) -> list[Lease]:
        """An operator revokes every lease of `identity` and of the chains it delegated, as a
        feed revoking it would (review 58d, secrets 2) (with `authorities`: only the leases
        justified by their credentials); returns them as they are after the engines'
        revocations (REVOKED, or REVOKING when an engine failed: the sweep retries)."""
        leases = self.book.revoke_identity(identity, now, authorities=authorities)
        self._revoke_batch(leases, now)
        return [self._lease(lease.handle) for lease in leases]

    def revoke_for_feed(self, feed: VerifiedFeed, *, now: int) -> list[Lease]:
        """The node's revocation feed changed: revoke every lease it revokes, now (returned as
        they are after the engines' revocations)."""
        leases = self.book.revoke_for_feed(feed, now)
        self._revoke_batch(leases, now)
        return [self._lease(lease.handle) for lease in leases]

    def sweep(self, now: int, *, after_restart: bool = False) -> SweepReport:
        """Revoke expired leases, finish or retry pending and interrupted revocations, and
        remove upstream objects no lease accounts for. PENDING leases are aborted once older
        than the book's grace; `after_restart`, all of them if no other broker has the
        database open (none can be issuing one). First revocations (the expired leases, the
        aborted ones) and those that failed before are tried each within its own budget of the
        sweep, in turn across accounts (troth.secrets.sweep; review 46d, secrets 2: a burst of
        expiring leases was tried all at once); the rest stay REVOKING, due for the next
        sweeps (`SweepReport.deferred`). The orphans are swept on a schedule and within a budget
        of their own (troth.secrets.orphans; review 49e, orphans 1)."""
        now = self.clock.now(now)
        expired = self.book.expire(now)  # -> REVOKING, never tried: due below
        redo = self._stalled(now, after_restart)
        failures: list[int] = []

        def attempt(lease: Lease) -> None:
            failures.append(self._revoke_upstream([lease], now))

        left = 0
        for budget, due in (
            (self.first_attempts, [item for item in redo if not item.attempts]),
            (self.retries, [item for item in redo if item.attempts]),  # review 45i, secrets 1
        ):
            left += budget.run(fair_order(due), attempt)
        failed = sum(failures)
        orphans = self._sweep_orphans(now)
        try:
            self.book.flush_denials(now)
        except SecretError as exc:  # the sink refused them: the counts are lost, not the sweep
            log.warning("the summaries of unrecorded refusals: %s", exc)
        return SweepReport(len(expired), len(failures) - failed, failed, orphans, left)

    def prune(self, now: int) -> int:
        """Forget the leases that ended more than `ENDED_LEASE_RETENTION` ago (the node's
        maintenance), and then the chains, or the (identity, account) rows, no lease refers
        to any more (`LeaseBook.prune`); their audit records stay. Then the token keys retired
        long enough ago that they are published no more (`BrokerKeys.forget_retired`: review
        47d, signing keys 2). Returns how many leases."""
        pruned = self.book.prune(now)
        self.keys.forget_retired(now)
        return pruned

    def stuck_revocations(self, limit: int = MAX_STUCK_REPORTED) -> list[tuple[Lease, int, int]]:
        """REVOKING leases whose upstream revocation failed (the most attempted first, at most
        `limit`), each with its attempts and when the sweep tries it next: what an operator
        must look at (a lock the engine cannot take, its server gone)."""
        return self.store.stuck_revocations(limit=limit)

    def recover(self, now: int) -> SweepReport:
        """At start-up (no issue of this broker is in flight):
        `sweep(now, after_restart=True)`."""
        return self.sweep(now, after_restart=True)

    def _stalled(self, now: int, after_restart: bool) -> list[Due]:
        """`book.stalled`: every PENDING lease only after a restart with no other broker open,
        the database's broker lock held exclusively meanwhile (a broker opening waits)."""
        if not after_restart:
            return self.book.stalled(now)
        with self._peers.alone() as alone:
            return self.book.stalled(now, all_pending=alone)

    # -- tokens -------------------------------------------------------------------------------

    def jwks(self, now: int) -> Jwks:
        """The broker's published token keys (the current one and those retired too recently
        for their tokens to have expired), at max(now, the broker's clock): a clock set back
        publishes no key again (review 54l, secrets 2)."""
        return self.keys.jwks(max(now, self.clock.seen()))

    def revoked_leases(self) -> LeaseStates:
        """For `validate_token(..., revoked=...)`: a jti is revoked unless its lease is ACTIVE;
        a live lease's end and the broker's clock (`LeaseStates`), so that a standalone
        validator ends what this broker ends (review 54e, secrets 1 and 3)."""
        return PublishedLeases(self.store, self.clock)

    def validate_token(self, token: str, *, audience: str, now: int) -> ValidatedToken:
        """`validate_token` with this broker's keys, issuer and lease states (the lease not
        over: `now` before its `expires_at`, so a renewal for less time ends the earlier tokens
        too, before the sweep marks it), at max(now, the broker's clock), and what only the
        broker knows: a token signed by a retired key must predate its retirement (a leaked
        retired key mints nothing new), and the token must be one its lease could carry
        (`check_token_of_lease`). SecretError otherwise. The caller's `now` moves not the
        broker's clock (review 58d, secrets 1: a relying party's clock ahead ended every lease,
        and a `now` past what SQLite stores stopped every sweep): the broker's own calls move
        it (issue, renew, the sweep)."""
        now = max(now, self.clock.seen())
        validated = validate_token(
            token,
            self.jwks(now),
            audience=audience,
            now=now,
            revoked=self.revoked_leases(),
            issuer=self.issuer,
        )
        retired_at = self.keys.retired_at(validated.kid)
        if retired_at is not None and validated.issued_at > retired_at:
            raise SecretError(
                _F.JWT_UNKNOWN_KEY, f"kid {validated.kid} retired at {retired_at}, before iat"
            )
        lease = self.book.lease(LeaseHandle.parse(validated.jti))
        check_token_of_lease(
            validated, lease, audience, lambda name: self.spec(name).settings.get("audience")
        )
        return validated

    # -- internals ----------------------------------------------------------------------------

    def _engine(self, kind: str) -> Engine:
        engine = self.engines.get(kind)
        if engine is None:
            raise SecretError(_F.CONFIG_INVALID, f"no engine {kind!r} ({', '.join(self.engines)})")
        return engine

    def _lease(self, handle: LeaseHandle) -> Lease:
        lease = self.book.lease(handle)
        if lease is None:
            raise SecretError(_F.NO_SUCH_LEASE, str(handle))
        return lease


def _actor(caller: VerifiedCredential | Identifier) -> Identifier:
    return caller.actor if isinstance(caller, VerifiedCredential) else caller
