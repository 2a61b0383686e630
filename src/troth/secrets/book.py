"""The lease book: the broker's state machine over its store (sans-IO: `now` and the verified
caller are passed in, engines are called back only where the state change needs their answer).

    PENDING --activate--> ACTIVE --revoke / expire / feed--> REVOKING --finish--> REVOKED
       \\-------------------- abort / recover / feed -----------/

Every transition is one SQLite transaction holding the write lock (BEGIN IMMEDIATE), and its
audit record is written inside it (fail closed). Issue re-checks, inside the transaction that
writes the lease, the policy, the quota and the newest revocation feed the book was given; since
`revoke_for_feed` installs the feed *before* its own transaction scans the open leases, a lease
written concurrently is either refused or found by that scan (docs/secrets.md, "Revocation and
its bound").
Several brokers may share a database (a node's daemon, its CLI commands' runtimes): only a caller
that knows no other broker is open may abort every PENDING lease (`stalled(all_pending=True)`).

Beside it: what the book writes to its audit sink (`BookAudit`, which `LeaseBook` is) in
troth.secrets.book_audit; the feeds it holds and the leases a feed ends in
troth.secrets.book_feeds; what a lease is filed under in troth.secrets.members.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from troth import limits
from troth.credentials import VerifiedCredential, VerifiedFeed
from troth.dataclass_init import quick_init
from troth.errors import SecretError, SecretFailure, StorageError
from troth.identity import Identifier
from troth.secrets.audit import AuditHasher, AuditKind, AuditSink
from troth.secrets.book_audit import BookAudit
from troth.secrets.book_feeds import HeldFeeds, leases_revoked_by, leases_through
from troth.secrets.engine import Grant, SecretSpec
from troth.secrets.lease import (
    LIVE_STATES,
    EndReason,
    Lease,
    LeaseCredential,
    LeaseHandle,
    LeaseId,
    LeaseRequest,
    LeaseState,
    check_scope,
    check_secret_name,
)
from troth.secrets.members import (
    ROOT_MEMBER,
    ChainHashes,
    chain_members,
    delegators,
    lease_account,
    printable_name,
    standing_member,
)
from troth.secrets.policy import LeasePolicy, LeaseQuestion
from troth.secrets.store import SqliteSecretStore
from troth.secrets.sweep import Due
from troth.storage.rollback import Restored, RollbackGuard

__all__ = [
    "ENDED_LEASE_RETENTION",
    "REVOKE_RETRY_FIRST",
    "REVOKE_RETRY_MAX",
    "ROOT_MEMBER",
    "Granted",
    "LeaseBook",
    "chain_members",
    "lease_account",
    "revoke_backoff",
    "standing_member",
]

_F = SecretFailure
_S = LeaseState
_E = EndReason
_COUNTED: Final = frozenset({_E.REVOKED, _E.IDENTITY_REVOKED, _E.SECRET_REMOVED})
"""The ends of an ACTIVE lease a restored copy of node.db would undo (its tokens validating
again): counted by the rollback guard. An expiry is not (the copy's lease is past its
`expires_at` too), nor an abort (a PENDING lease carries no token)."""
REVOKE_RETRY_FIRST: Final = 5
"""Seconds after a failed upstream revocation before the sweep tries it again (the served
broker's SWEEP_SECONDS); each further failure doubles the wait, up to `REVOKE_RETRY_MAX`."""
REVOKE_RETRY_MAX: Final = 1800
"""Longest wait between two attempts at a revocation that keeps failing (seconds): an attempt
may cost the broker's thread the engine's lock timeout (limits.POSTGRES_LOCK_TIMEOUT_MS), so a
lease stuck for good costs it at most that every 30 minutes, not every sweep (review 45b,
revocations 1). The lease stays REVOKING meanwhile (counted in its quota)."""
ENDED_LEASE_RETENTION: Final = 30 * 86_400
"""Seconds an ended lease's row (REVOKED: revoked, expired, aborted) stays in the broker's
table after it ended, for `list --ended` and token checks; then `prune` deletes it (review 45b,
revocations 2: they were kept for good). Its audit records stay."""
MAX_PRUNED_LEASES: Final = 10_000
"""Ended leases one `prune` deletes at most (the oldest ended first; the next round goes on)."""
MAX_PRUNE_CHAINS_READ: Final = 10_000
"""Stored chains one `prune` looks at (whether a lease still refers to each: one scan of the
leases' chain hashes, no index, which would cost every lease an entry), in the order of their
hashes, from where the last one stopped: the chains no lease refers to are deleted within a
pass over the table (review 46d, secrets 1), which starts when a `prune` deleted leases."""
MAX_PRUNE_ACCOUNTS_READ: Final = 10_000
"""(identity, account) rows one `prune` looks at (whether a lease is still filed under each:
one scan of the leases' pairs, no index), in key order from where the last one stopped: the
rows no lease is filed under are deleted within a pass over the table (review 47d, accounts
1), which starts when a `prune` deleted leases; its rounds and the chains' pass's take turns
(one scan of the leases a round)."""
MAX_DUE_REVOCATIONS: Final = 10_000
"""REVOKING leases one sweep tries at most (the longest due first)."""


def revoke_backoff(attempts: int) -> int:
    """Seconds to wait after the `attempts`-th failed revocation of a lease before the next."""
    return min(REVOKE_RETRY_FIRST << min(max(attempts - 1, 0), 16), REVOKE_RETRY_MAX)


_ANY_LEASE: Final = "SELECT 1 FROM secret_leases LIMIT 1"
_LOCATOR_DRAWS: Final = 8  # 28 random bits per second: 8 collisions in a row never happen
_EMPTY_SCOPE: Final = "an empty scope (leave scope out to lease every scope the secret offers)"


@quick_init  # the issue path makes one per lease
@dataclass(frozen=True, slots=True)
class Granted:
    """A lease just written: the lease id (give it to the agent once), the record, what the
    engine was asked for and, for local engines, the credential it made."""

    lease_id: LeaseId
    lease: Lease
    grant: Grant
    credential: LeaseCredential | None
    account: Identifier | None = None  # the member it is filed under (lease_account)


class LeaseBook(BookAudit):
    """Leases of one broker (see the module docstring)."""

    def __init__(
        self,
        store: SqliteSecretStore,
        policy: LeasePolicy,
        audit: AuditSink,
        hasher: AuditHasher,
        *,
        quota: int = limits.DEFAULT_LEASE_QUOTA,
        pending_grace: int = 60,
        fallback: AuditSink | None = None,
    ) -> None:
        """`fallback` keeps the records of the revocations the broker and its node make when
        `audit` refuses them (`_append`); None: such a refusal fails them too."""
        if quota < 1:
            raise ValueError("a lease quota is at least 1")
        super().__init__(store, audit, hasher, fallback)
        self._policy = policy
        self.quota = quota
        self.pending_grace = pending_grace
        self._feeds = HeldFeeds()
        self._chain_hashes = ChainHashes()
        # `prune`'s passes: where each goes on reading, whether one goes on, whose turn it is
        self._chain_cursor = b""
        self._account_cursor: tuple[bytes, bytes] | None = None
        self._chains_due = self._accounts_due = self._accounts_turn = False
        # revocations a restored copy of node.db must not undo (review 51d, rollback 2)
        self._guard = RollbackGuard(store.db, "broker")

    # -- issue --------------------------------------------------------------------------------

    def open_lease(
        self,
        credential: VerifiedCredential,
        name: str,
        *,
        scope: Iterable[str] | None,
        ttl: int | None,
        now: int,
        spec_of: Callable[[str, tuple[str, str] | None], SecretSpec],
        engine_ref: Callable[[SecretSpec, LeaseHandle], str | None],
        mint: Callable[[Grant], LeaseCredential | None],
        request: LeaseRequest | None = None,
    ) -> Granted:
        """Check and write a lease of secret `name` (its stored (engine, config) read inside
        the transaction and parsed by `spec_of`): ACTIVE with `mint`'s credential when it makes
        one (local engines, one transaction), else PENDING until `activate`. SecretError
        (audited) when refused; with `request`, also when a lease of it is live or was issued
        to this attempt or a later one (`supersede` first)."""
        identity, account = credential.actor, lease_account(credential)
        try:
            with self._store.transaction():
                check_secret_name(name)
                if request is not None:
                    self._request_leases(identity, request, live_too=True)
                stored, live = self._store.config_and_live(name, account, now, up_to=self.quota)
                spec = spec_of(name, stored)
                wanted = spec.scopes if scope is None else check_scope(list(scope))
                if wanted is not spec.scopes and not set(wanted) <= set(spec.scopes):
                    raise SecretError(_F.BAD_REQUEST, "a scope the secret does not offer")
                if spec.scopes and not wanted:  # a token of scope "" (review 65n, secrets 1)
                    raise SecretError(_F.BAD_REQUEST, _EMPTY_SCOPE)
                ttl = spec.ttl if ttl is None else ttl
                if not limits.MIN_LEASE_TTL <= ttl <= spec.max_ttl:
                    raise SecretError(_F.BAD_REQUEST, f"ttl must be 1-{spec.max_ttl} seconds")
                self._check_standing(credential, spec, wanted, ttl, now, renewal=False)
                if live >= self.quota:
                    raise SecretError(
                        _F.QUOTA_EXCEEDED, f"{self.quota} open leases under member {account}"
                    )
                cap = min(now + spec.max_ttl, credential.expires_at, _keys_end(credential))
                self._guard.arm()  # a copy holding a lease is found, its guard deleted (52c)
                for _ in range(_LOCATOR_DRAWS):  # a locator is taken: draw again (mint is pure)
                    lease_id = LeaseId.new(now)
                    handle, proof = lease_id.handle_and_proof()
                    grant = Grant(
                        handle,
                        identity,
                        delegators(credential),
                        spec,
                        wanted,
                        now,
                        min(now + ttl, cap),
                        engine_ref(spec, handle),
                    )
                    made = mint(grant)
                    lease = Lease(
                        handle,
                        identity,
                        spec.name,
                        spec.engine,
                        wanted,
                        self._chain_hashes.digest(credential.chain),  # `_chain_hash`
                        credential.authority,
                        now,
                        grant.expires_at,
                        ttl,
                        spec.max_ttl,
                        cap,
                        _S.PENDING if made is None else _S.ACTIVE,
                        now,
                        None,
                        grant.engine_ref,
                    )
                    if self._store.insert_lease(
                        lease,
                        account,
                        proof,
                        lambda: chain_members(credential),
                        None if request is None else (request.key(identity), request.attempt),
                    ):
                        break
                else:
                    raise StorageError(f"no free lease locator in {_LOCATOR_DRAWS} draws")
                if made is not None:
                    self._record(
                        AuditKind.ISSUE, now, lease, "issued", made.digest_input, member=account
                    )
        except SecretError as exc:
            self._deny(exc, now, identity, printable_name(name), None, account)
            raise
        self._store.chain_committed(lease.chain_hash)
        return Granted(lease_id, lease, grant, made, account)

    def supersede(
        self, credential: VerifiedCredential, request: LeaseRequest, now: int
    ) -> list[Lease]:
        """Before a lease for `request`: its earlier attempts' live leases (issued, their
        answers lost: the agent asks again) -> REVOKING, returned for the caller to revoke
        upstream; SecretError BAD_REQUEST (audited) if this attempt or a later one was served
        already (a late copy of an attempt the agent gave up on). Review 45i, secrets 2."""
        identity, account = credential.actor, lease_account(credential)
        try:
            with self._store.transaction():
                return self._start_all(
                    self._request_leases(identity, request, live_too=False),
                    now,
                    EndReason.REVOKED,
                    f"its request was retried (attempt {request.attempt})",
                )
        except SecretError as exc:
            self._deny(exc, now, identity, None, None, account)
            raise

    def _request_leases(
        self, identity: Identifier, request: LeaseRequest, *, live_too: bool
    ) -> list[Lease]:
        """`identity`'s live lease of `request`'s earlier attempts (at most one: an attempt's
        lease is written only while no earlier one is live, and a lease never comes back to
        life, so only the highest attempt's may be; that row alone is read, not the request's
        whole history: review 45k, secrets 2); BAD_REQUEST if one of this attempt or a later
        one exists (or, `live_too`, one is live)."""
        last = self._store.last_of_request(request.key(identity))
        if last is None:
            return []
        lease, attempt = last
        if attempt >= request.attempt:
            raise SecretError(
                _F.BAD_REQUEST,
                f"attempt {attempt} of this lease request was served already "
                f"(lease {lease.handle}): a new request takes a new id",
            )
        if lease.state not in LIVE_STATES:
            return []
        if live_too:
            raise SecretError(_F.BAD_REQUEST, "an earlier attempt of this request is live: retry")
        return [lease]

    def _chain_hash(self, chain: bytes) -> bytes:
        """SHA-256 of a chain, remembered for the chains used last (`ChainHashes`: at most
        `MAX_CHAIN_HASH_CACHE_BYTES` of chains held; review 45i, secrets 3)."""
        return self._chain_hashes.digest(chain)

    def activate(self, granted: Granted, made: LeaseCredential, now: int) -> Lease:
        """PENDING -> ACTIVE once the engine made the credential; SecretError REVOKED if the
        lease was revoked (or swept) meanwhile: the caller must then revoke upstream."""
        with self._store.transaction():
            if not self._store.set_state(
                granted.lease.handle, was=[_S.PENDING], to=_S.ACTIVE, now=now
            ):
                raise SecretError(_F.REVOKED, "the lease was revoked while it was being issued")
            lease = self._get(granted.lease.handle)
            self._record(
                AuditKind.ISSUE, now, lease, "issued", made.digest_input, member=granted.account
            )
        return lease

    # -- renew, look up, list -----------------------------------------------------------------

    def renew(
        self,
        credential: VerifiedCredential,
        lease_id: LeaseId,
        *,
        ttl: int | None,
        now: int,
        spec_of: Callable[[str], SecretSpec],
        extend: Callable[[Grant], LeaseCredential],
        remote: Callable[[SecretSpec], bool] = lambda _spec: False,
        undo: Callable[[Lease, SecretSpec], object] = lambda _lease, _spec: None,
    ) -> tuple[Lease, LeaseCredential]:
        """Extend an active lease from `now` by `ttl` (default: its ttl), capped by its max_ttl
        and the secret's as stored now, and the credential that justified it, which
        `credential` must be (its chain). A local engine's `extend` runs inside the
        transaction that writes the renewal; a `remote` one's (postgres: its server's round
        trips, up to a connect or lock timeout) between the transaction that checks it and the
        one that writes it, so no write lock of the node's database is held while an upstream
        takes its time (review 49e, renewals 1); a lease revoked meanwhile is refused REVOKED,
        `undo` called first (its revocation may have run before the extension)."""
        identity = credential.actor
        secret: str | None = None
        handle = lease_id.handle
        try:
            with self._store.transaction():
                lease = self._own(identity, lease_id)
                secret = lease.secret
                grant = self._renewal(credential, lease, ttl, now, spec_of)
                if not remote(grant.spec):
                    return self._renewed(credential, grant, extend(grant), now, lease)
            made = extend(grant)
            with self._store.transaction():
                lease = self._own(identity, lease_id)
                if lease.state is _S.ACTIVE:
                    return self._renewed(credential, grant, made, now, lease)
            undo(lease, grant.spec)
            raise SecretError(_F.REVOKED, f"lease {handle} was revoked while it was renewed")
        except SecretError as exc:
            self._deny(exc, now, identity, secret, handle, lease_account(credential))
            raise

    def _renewal(
        self,
        credential: VerifiedCredential,
        lease: Lease,
        ttl: int | None,
        now: int,
        spec_of: Callable[[str], SecretSpec],
    ) -> Grant:
        """What a renewal of `lease` asks its engine for (`renew`'s checks, in its
        transaction)."""
        handle = lease.handle
        if lease.state is not _S.ACTIVE:
            raise _ended(lease)
        self._check_chain(credential, lease)
        if now >= lease.expires_at:
            raise SecretError(_F.EXPIRED, f"lease {handle} expired at {lease.expires_at}")
        spec = spec_of(lease.secret)
        if spec.engine != lease.engine:  # re-stored with another engine (put_secret)
            raise SecretError(_F.REVOKED, f"lease {handle}: its secret changed engine")
        if not set(lease.scope) <= set(spec.scopes):  # an operator withdrew one since
            raise SecretError(
                _F.BAD_REQUEST, "a scope the secret no longer offers: issue a new lease"
            )
        # the secret's max_ttl as stored now bounds it too: an operator who lowered it
        # stops longer renewals, as one who withdrew a scope (review 30b, leases 3)
        max_ttl = min(lease.max_ttl, spec.max_ttl)
        cap = min(lease.cap_at, lease.issued_at + spec.max_ttl)
        ttl = min(lease.ttl, max_ttl) if ttl is None else ttl
        if not limits.MIN_LEASE_TTL <= ttl <= max_ttl:
            raise SecretError(_F.BAD_REQUEST, f"ttl must be 1-{max_ttl} seconds")
        self._check_standing(credential, spec, lease.scope, ttl, now, renewal=True)
        expires_at = min(now + ttl, cap, credential.expires_at, _keys_end(credential))
        if expires_at <= now:
            raise SecretError(_F.EXPIRED, f"lease {handle} cannot be renewed past {cap}")
        return Grant(
            handle,
            lease.identity,
            delegators(credential),
            spec,
            lease.scope,
            now,
            expires_at,
            lease.engine_ref,
        )

    def _renewed(
        self,
        credential: VerifiedCredential,
        grant: Grant,
        made: LeaseCredential,
        now: int,
        was: Lease,
    ) -> tuple[Lease, LeaseCredential]:
        """Write a renewal (`grant.expires_at`) and its audit record, in the caller's
        transaction. One for less time than `was` had ends its earlier tokens sooner: counted
        by the rollback guard, as a revocation (review 52c, rollback 2)."""
        self._store.extend(grant.handle, grant.expires_at, now)
        if grant.expires_at < was.expires_at:
            self._guard.bump()
        lease = self._get(grant.handle)
        self._record(
            AuditKind.RENEW,
            now,
            lease,
            f"until {grant.expires_at}",
            made.digest_input,
            member=lease_account(credential),
        )
        return lease, made

    def active_lease(self, credential: VerifiedCredential, lease_id: LeaseId, now: int) -> Lease:
        """The caller's lease if it is active and unexpired, `credential` is the chain it was
        issued under and that chain is not revoked."""
        try:
            lease = self._own(credential.actor, lease_id)
            if lease.state is not _S.ACTIVE:
                raise _ended(lease)
            if now >= lease.expires_at:
                raise SecretError(_F.EXPIRED, f"lease {lease.handle}")
            self._check_chain(credential, lease)
            self._check_feed(credential)
        except SecretError as exc:
            self._deny(exc, now, credential.actor, None, lease_id.handle, lease_account(credential))
            raise
        return lease

    def leases_of(self, identity: Identifier, *, include_ended: bool = False) -> list[Lease]:
        """An identity's own leases, newest first (at most `limits.MAX_LEASE_LIST`)."""
        return self._store.leases_of(
            identity, include_ended=include_ended, limit=limits.MAX_LEASE_LIST
        )

    def lease(self, handle: LeaseHandle) -> Lease | None:
        """Any lease by handle (operators; agents use `leases_of`)."""
        return self._store.get_lease(handle)

    # -- revoke -------------------------------------------------------------------------------

    def revoke(
        self,
        identity: Identifier,
        lease_id: LeaseId,
        now: int,
        *,
        account: Identifier | None = None,
    ) -> Lease | None:
        """The caller revokes its own lease: the lease to revoke upstream (None: already done).
        Another identity's lease is NO_SUCH_LEASE, exactly like a lease that does not exist.
        Its records count for `account` (the member the caller's chain names)."""
        member = identity if account is None else account
        try:
            with self._store.transaction():
                lease = self._own(identity, lease_id)
                return self._start_revoke(
                    lease, now, EndReason.REVOKED, "revoked by its agent", member=member
                )
        except SecretError as exc:
            self._deny(exc, now, identity, None, lease_id.handle, member)
            raise

    def revoke_handle(self, handle: LeaseHandle, now: int) -> Lease | None:
        """An operator revokes a lease by its handle."""
        with self._store.transaction():
            lease = self._store.get_lease(handle)
            if lease is None:
                raise SecretError(_F.NO_SUCH_LEASE, str(handle))
            return self._start_revoke(
                lease, now, EndReason.REVOKED, "revoked by an operator", ending=True
            )

    def revoke_identity(
        self, identity: Identifier, now: int, *, authorities: frozenset[Identifier] | None = None
    ) -> list[Lease]:
        """Every open lease of `identity` (an operator's call) and of the chains it delegated
        (review 58d, secrets 2), or only those justified under `authorities`: all of them,
        never a first page (review 30b, store 5)."""
        with self._store.transaction():
            leases = self._store.leases_in(LIVE_STATES, identity=identity, limit=None)
            if authorities is not None:
                leases = [lease for lease in leases if lease.authority in authorities]
            found = {lease.handle: lease for lease in leases}
            for lease in leases_through(self._store, identity, authorities):
                found.setdefault(lease.handle, lease)
            leases = list(found.values())
            return self._start_all(
                leases, now, EndReason.REVOKED, "identity revoked by an operator"
            )

    def revoke_for_feed(self, feed: VerifiedFeed, now: int) -> list[Lease]:
        """Install `feed` (the newest verified revocation feed of its authority) and revoke every
        open lease justified under that authority whose chain it revokes (the identity, a delegator,
        or a link), and every open lease of an identity it revokes that presented a chain of that
        authority here. Another authority's chain through a revoked delegator is judged by its own
        root's feed, as the gates judge it (review 31b, secrets 1); an agent revoked by an authority
        with standing over it is refused as a peer whatever chain it presents, so its leases under
        every authority end (review 31b, secrets 2; docs/formats.md, "Whose word counts on an
        identity"), also when its leases under the authority all ended: it presented a chain of that
        authority here before (review 31b, secrets 3). A delegator of the authority's chains is not
        judged by it as a peer: its leases under another authority stay (review 32a, secrets 1)."""
        self._feeds.install(feed)
        with self._store.transaction():
            return self._start_all(
                leases_revoked_by(self._store, feed),
                now,
                EndReason.IDENTITY_REVOKED,
                "revoked in the feed",
            )

    def check_restored(self, now: int) -> Restored | None:
        """Whether the node.db under this book is a restored copy (troth.storage.rollback): if
        so, every open lease is revoked (which of them were revoked after the copy was taken
        cannot be known: review 51d, rollback 2) in the transaction that records the restore,
        found once; their upstream revocations are the sweep's, as any. A store holding leases
        an older troth issued (none armed the scope before review 52c) is armed now, so a copy
        taken from here on, put back with its guard deleted, is found (review 56o, rollback 1;
        review 56d, rollback 1 for the tickets)."""

        def revoke_all() -> int:
            leases = self._store.leases_in(LIVE_STATES, limit=None)
            detail = "node.db was restored from a copy (docs/storage.md, Rollback guard)"
            return len(self._start_all(leases, now, _E.REVOKED, detail, counted=False))

        restored = self._guard.check(now, revoke_all, self._store.transaction)
        if not self._guard.armed() and self._store.db.fetch_one(_ANY_LEASE) is not None:
            with self._store.transaction():
                self._guard.arm()
        return restored

    def restored(self) -> bool:
        """Whether the node.db under this book is a restored copy not yet checked (read only;
        `check_restored` acts on it)."""
        return self._guard.behind()

    def expire(self, now: int, *, limit: int = 10_000) -> list[Lease]:
        """ACTIVE leases past their expiry -> REVOKING (their upstream credentials may still
        work: a role's open sessions outlive VALID UNTIL)."""
        with self._store.transaction():
            due = self._store.leases_in([_S.ACTIVE], expires_before=now, limit=limit)
            return self._start_all(due, now, EndReason.EXPIRED, "expired", kind=AuditKind.EXPIRE)

    def stalled(self, now: int, *, all_pending: bool = False) -> list[Due]:
        """Leases whose revocation must be (re)done: PENDING ones older than the grace (all of
        them with `all_pending`: the caller knows no issue is in flight, its broker restarted
        and no other is open) become REVOKING; with every lease already REVOKING whose retry
        is due (`revoke_failed`: a failed revocation waits longer at each failure), with its
        account and failed attempts (the sweep budgets the retries: troth.secrets.sweep)."""
        cutoff = now if all_pending else now - self.pending_grace
        with self._store.transaction():
            pending = self._store.leases_in([_S.PENDING], state_before=cutoff)
            self._start_all(pending, now, EndReason.ABORTED, "never confirmed by its engine")
            return self._store.due_revocations(now, limit=MAX_DUE_REVOCATIONS)

    def abort(self, granted: Granted, now: int) -> Lease | None:
        """The engine failed to issue: PENDING -> REVOKING (the caller revokes upstream)."""
        with self._store.transaction():
            return self._start_revoke(
                granted.lease, now, EndReason.ABORTED, "the engine failed", ending=True
            )

    def finish_revoke(
        self,
        lease: Lease,
        now: int,
        detail: str = "revoked upstream",
        *,
        member: Identifier | None = None,
    ) -> None:
        """REVOKING -> REVOKED once the engine took the credential back (recorded for `member`
        when a member asked for it)."""
        with self._store.transaction():
            if self._store.set_state(lease.handle, was=[_S.REVOKING], to=_S.REVOKED, now=now):
                self._record(AuditKind.REVOKED, now, lease, detail, member=member, ending=True)

    def revoke_failed(self, lease: Lease, now: int) -> tuple[int, int]:
        """Count a failed upstream revocation: the sweep retries it `revoke_backoff(attempts)`
        seconds from `now` (stored with the lease: a restart keeps the schedule). Returns the
        attempts and when the next is due."""
        with self._store.transaction():
            attempts = self._store.note_attempt(lease.handle, lambda n: now + revoke_backoff(n))
        return attempts, now + revoke_backoff(attempts)

    def prune(self, now: int, *, retention: int = ENDED_LEASE_RETENTION) -> int:
        """Delete the rows of leases that ended (REVOKED) more than `retention` seconds before
        `now`, at most MAX_PRUNED_LEASES; never a live or REVOKING one. Then, in the same
        transaction (a crash keeps all or none; each looks at the leases left in it), the
        chains no lease refers to any more among the next `MAX_PRUNE_CHAINS_READ` stored
        (`SqliteSecretStore.prune_chains`: each one's standing row kept) or, in the other
        rounds of a pass (review 47d, accounts 1), the (identity, account) rows no lease is
        filed under among the next `MAX_PRUNE_ACCOUNTS_READ`
        (`SqliteSecretStore.prune_accounts`). Returns how many leases."""
        store = self._store
        with store.transaction():
            pruned = store.prune_ended(now - retention, limit=MAX_PRUNED_LEASES)
            if pruned:  # only a lease pruned leaves a chain or an account row unused: a pass
                # over each starts, and goes on in the next rounds until it is through
                self._chains_due = self._accounts_due = True
            # one scan of the leases a round, at most: the rounds take the passes in turn
            # (a scan serving both, with the pairs' wider keys, cost ~1.6x the chains' one)
            if self._accounts_due and (self._accounts_turn or not self._chains_due):
                _rows, self._account_cursor = store.prune_accounts(
                    self._account_cursor, limit=MAX_PRUNE_ACCOUNTS_READ
                )
                self._accounts_due = self._account_cursor is not None
                self._accounts_turn = False
            elif self._chains_due:
                _chains, self._chain_cursor = store.prune_chains(
                    self._chain_cursor, limit=MAX_PRUNE_CHAINS_READ
                )
                self._chains_due = bool(self._chain_cursor)
                self._accounts_turn = True
        return pruned

    def retry_due(self, lease: Lease, now: int) -> bool:
        """Whether `lease`'s upstream revocation may be tried at `now` (never failed, or its
        retry time came)."""
        return self._store.retry_due(lease.handle, now)

    # -- internals ----------------------------------------------------------------------------

    def _check_standing(
        self,
        credential: VerifiedCredential,
        spec: SecretSpec,
        scope: tuple[str, ...],
        ttl: int,
        now: int,
        *,
        renewal: bool,
    ) -> None:
        # the chain verifier's window rule, `not_before - skew <= now < expires_at + skew`, with
        # no skew here: a lease is dated by this clock and capped at the expiry, and a chain
        # valid only thanks to the skew (`within_skew`, inline: the issue path) leased up to
        # it early (review 50c, not before 1; docs/secrets.md, "Leases")
        if now >= credential.expires_at or now < credential.not_before:
            if now >= credential.expires_at:
                raise SecretError(_F.EXPIRED, "the credential presented has expired")
            raise SecretError(
                _F.DENIED,
                f"the credential presented is not valid before {credential.not_before}",
            )
        # and its issuers' keys, as `ChainVerifier.verify` checks them (no skew either): a
        # held credential was leased under a non-gates policy after a delegator's primary key
        # expired (review 75g, delegation2 1)
        if now >= _keys_end(credential):
            raise SecretError(
                _F.EXPIRED,
                "the credential presented has expired: an issuer's current key was valid until "
                f"{credential.keys_valid_until}",
            )
        self._feeds.check(credential, self._store)  # `_check_feed`, one frame less
        question = LeaseQuestion(
            credential, spec.name, spec.engine, scope, ttl, renewal, now, spec.grantable_by
        )
        try:
            decision = self._policy.decide(question)
        except Exception as exc:  # a policy that fails denies (fail closed)
            raise SecretError(_F.DENIED, f"the policy failed: {type(exc).__name__}") from None
        if not decision.allowed:
            raise SecretError(_F.DENIED, decision.reason)

    def _check_chain(self, credential: VerifiedCredential, lease: Lease) -> None:
        """`credential` is the chain `lease` was issued under (docs/secrets.md, "Leases"): a
        lease is filed, revoked by the feed and counted under that chain, so another chain of
        the same agent neither renews it (its token's `act` would name delegators the lease
        is not filed under) nor uses it (review 30b, leases 1)."""
        if self._chain_hash(credential.chain) != lease.chain_hash:
            raise SecretError(
                _F.EXPIRED,
                f"lease {lease.handle} was issued under another credential than the one "
                "presented, or one no longer current (take a new lease)",
            )

    def _check_feed(self, credential: VerifiedCredential) -> None:
        """The chain is revoked by its authority's newest feed, or its agent by the feed of
        another authority with standing over it (one that justified a chain the agent presented
        here): `revoke_for_feed` ended its leases under every authority, so none is issued,
        renewed or used again under any (review 44b, secrets 1; review 31b, secrets 2)."""
        self._feeds.check(credential, self._store)

    def _own(self, identity: Identifier, lease_id: LeaseId) -> Lease:
        lease = self._store.get_lease(*lease_id.handle_and_proof())
        if lease is None or lease.identity != identity:
            raise SecretError(_F.NO_SUCH_LEASE, str(lease_id.handle))
        return lease

    def _get(self, handle: LeaseHandle) -> Lease:
        lease = self._store.get_lease(handle)
        if lease is None:
            raise SecretError(_F.NO_SUCH_LEASE, str(handle))
        return lease

    def _start_revoke(
        self,
        lease: Lease,
        now: int,
        reason: EndReason,
        detail: str,
        kind: AuditKind = AuditKind.REVOKE,
        *,
        member: Identifier | None = None,
        ending: bool = False,
        counted: bool = True,
    ) -> Lease | None:
        if lease.state is _S.REVOKED:
            return None
        if lease.state is not _S.REVOKING:
            if not self._store.set_state(
                lease.handle, was=LIVE_STATES, to=_S.REVOKING, now=now, end_reason=reason
            ):
                return None
            if counted and reason in _COUNTED:
                self._guard.bump()  # a restored copy must not hold it open (review 51d)
            self._record(kind, now, lease, detail, member=member, ending=ending)
        return self._get(lease.handle)

    def _start_all(
        self,
        leases: Iterable[Lease],
        now: int,
        reason: EndReason,
        detail: str,
        kind: AuditKind = AuditKind.REVOKE,
        *,
        counted: bool = True,
    ) -> list[Lease]:
        started = [
            self._start_revoke(lease, now, reason, detail, kind, ending=True, counted=counted)
            for lease in leases
        ]
        return [lease for lease in started if lease is not None]


def _keys_end(credential: VerifiedCredential) -> int:
    """When `credential`'s issuer keys stop being valid, as a lease's end (a lease is live
    while `now < expires_at`; a key is valid through its `valid_until`): a lease and its
    renewals end then too, not at the chain's expiry alone (review 75g, delegation2 2: a lease
    outlived the keys every verifier refuses the chain by)."""
    return credential.keys_valid_until + 1


def _ended(lease: Lease) -> SecretError:
    """The refusal of a lease no longer active: EXPIRED when it ended by expiring (the sweep
    revoked it), as one not swept yet is; else REVOKED (review 64c2, api 1)."""
    if lease.end_reason is _E.EXPIRED:
        return SecretError(_F.EXPIRED, f"lease {lease.handle} expired at {lease.expires_at}")
    return SecretError(_F.REVOKED, f"lease {lease.handle}")
