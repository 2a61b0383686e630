"""A small world for the secrets broker tests: an authority, a user who delegates to an
orchestrator who delegates to agent A (a 3-link chain), agent B with a credential straight from
the authority, their verified credentials, and a broker over a node-like database."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.backups import copy_db, restore_db
from tests.support.parties import Party, delegated, make_party, verified_feed
from tests.support.traces import unreachable_outbox
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
    issue_credential,
)
from troth.crypto import KeyType
from troth.errors import SecretError
from troth.identity import Identifier
from troth.secrets import AllowListPolicy, AuditSink, Broker, LeasePolicy
from troth.secrets.broker import IssuedLease
from troth.secrets.engine import Grant, SecretSpec
from troth.secrets.lease import LeaseCredential, LeaseHandle, SecretValue
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.storage.rollback import guard_path
from troth.trace.adapters import TraceAuditSink
from troth.vault import SoftwareVault

KEK = bytes(range(32))
ATTRS = Attributes({"payments.access": frozenset({"refund", "read"})})
CHAIN_TTL = 86_400
CANARY = "sk_live_CANARY_" + "7f3a9c2e41d8b6"  # an upstream secret that must never leak


@dataclass
class LeaseWorld:
    now: int
    vault: SoftwareVault
    authority: Party
    user: Party
    orchestrator: Party
    agent_a: Party
    agent_b: Party
    chain_a: bytes
    chain_b: bytes
    verifier: ChainVerifier
    feed: VerifiedFeed

    def feeds(self) -> dict[Identifier, VerifiedFeed]:
        return {self.authority.identifier: self.feed}

    def credential_a(self, now: int | None = None) -> VerifiedCredential:
        return self.verifier.verify(
            self.chain_a, presenter=self.agent_a.identifier, feeds=self.feeds(), now=now or self.now
        )

    def credential_b(self, now: int | None = None) -> VerifiedCredential:
        return self.verifier.verify(
            self.chain_b, presenter=self.agent_b.identifier, feeds=self.feeds(), now=now or self.now
        )

    def member_credential(self, party: Party) -> VerifiedCredential:
        """A fresh member credential of `party` straight from the authority (another chain at
        each call; its account is `party`), verified at `now`."""
        member = issue_credential(
            self.authority.signer,
            subject=party.identifier,
            attributes=ATTRS,
            now=self.now,
            ttl=CHAIN_TTL,
            depth=0,
        )
        chain = CredentialChain((member,), (self.authority.identity.history,)).encode()
        return self.verifier.verify(
            chain, presenter=party.identifier, feeds=self.feeds(), now=self.now
        )

    def feed_revoking(self, entries: list[tuple[int, bytes]], now: int) -> VerifiedFeed:
        """A fresh feed of the authority revoking (kind, target) pairs (1: credential, 2: id)."""
        return verified_feed(self.authority, entries, now=now)


def make_world(
    now: int, *, chain_ttl: int = CHAIN_TTL, orchestrator_valid_for: int | None = None
) -> LeaseWorld:
    """The world at `now`. With `orchestrator_valid_for`, the orchestrator's primary key is
    valid that many seconds and its link to agent a, signed by hand, still lasts `chain_ttl`
    (as troth signed it before review 75g, delegation2 3: a chain outliving its keys)."""
    vault = SoftwareVault()
    authority, user, orchestrator, agent_a, agent_b = (make_party(vault, now=now) for _ in range(5))
    if orchestrator_valid_for is not None:
        orchestrator = make_party(vault, now=now, valid_for=orchestrator_valid_for)

    def from_authority(subject: Party, depth: int) -> CredentialChain:
        credential = issue_credential(
            authority.signer,
            subject=subject.identifier,
            attributes=ATTRS,
            now=now,
            ttl=chain_ttl,
            depth=depth,
        )
        return CredentialChain((credential,), (authority.identity.history,))

    to_orchestrator = delegated(
        user,
        from_authority(user, 3),
        orchestrator.identifier,
        ATTRS,
        now=now,
        ttl=chain_ttl,
        purpose="run the refunds queue",
    )
    to_a = delegated(
        orchestrator,
        to_orchestrator,
        agent_a.identifier,
        ATTRS,
        now=now,
        ttl=chain_ttl,
        purpose="refund order 4471",
        past_keys=orchestrator_valid_for is not None,
    )
    chain_b = from_authority(agent_b, 0)
    verifier = ChainVerifier(TrustPolicy(frozenset({authority.identifier})))
    return LeaseWorld(
        now,
        vault,
        authority,
        user,
        orchestrator,
        agent_a,
        agent_b,
        to_a.encode(),
        chain_b.encode(),
        verifier,
        verified_feed(authority, now=now),
    )


def open_broker(
    path: Path,
    *,
    now: int,
    policy: LeasePolicy | None = None,
    audit: AuditSink | None = None,
    key_type: KeyType = KeyType.ED25519,
    quota: int = 100,
    kek: bytes = KEK,
) -> tuple[SqliteDatabase, Broker]:
    """A broker over a node-like database at `path` (node.db), its vault sealed under `kek`."""
    db = SqliteDatabase(path)
    vault = SoftwareVault(SqliteKeyStore(db), kek)
    broker = Broker(db, vault, now=now, policy=policy, audit=audit, key_type=key_type, quota=quota)
    return db, broker


@contextmanager
def broker_at(path: Path, *, now: int, policy: LeasePolicy | None = None) -> Iterator[Broker]:
    """`open_broker` for a block: the broker and its database closed after it."""
    db, broker = open_broker(path, now=now, policy=policy)
    try:
        yield broker
    finally:
        broker.close()
        db.close()


def first_lease(
    path: Path, *, now: int, config: Mapping[str, Any]
) -> tuple[LeaseWorld, LeasePolicy, IssuedLease]:
    """A broker at `path` given secret `api` (`config`) and agent a's lease of it at `now`
    (closed after): the world, the policy letting a take it, the lease."""
    world = make_world(now)
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    with broker_at(path, now=now, policy=policy) as broker:
        broker.put_secret("api", "token", dict(config), b"", now=now)
        issued = broker.issue(world.credential_a(), "api", now=now, scope=["read"])
    return world, policy, issued


def revoked_then_restored_unguarded(
    path: Path, *, at: int, policy: LeasePolicy, issued: IssuedLease
) -> None:
    """Copy `path`, revoke `issued` at `at`, put the copy back with its rollback guard deleted:
    the broker opened then finds the restore and `issued`'s token does not validate (reviews
    52c rollback 4, 56d rollback 2)."""
    copy = path.with_name(path.name + ".copy")
    copy_db(path, copy)
    with broker_at(path, now=at, policy=policy) as broker:
        broker.revoke_lease(issued.lease.handle, now=at)
    restore_db(path, copy)
    guard_path(path).unlink()
    with broker_at(path, now=at + 1, policy=policy) as broker:
        if broker.restored is None:
            raise AssertionError("the restored copy was not found")
        token = str(issued.credential.reveal()["token"])
        with pytest.raises(SecretError):
            broker.validate_token(token, audience="x", now=at + 2)


class RemoteStub:
    """A remote engine (it issues between the PENDING write and the ACTIVE one, like postgres);
    `during_issue` runs where the real one would be talking to its server."""

    kind = "upstream"
    local = False

    def __init__(self) -> None:
        self.during_issue: Callable[[], None] = lambda: None
        self.revoked: list[str | None] = []

    def check_settings(
        self, settings: Mapping[str, Any], scopes: tuple[str, ...]
    ) -> dict[str, Any]:
        return dict(settings)

    def engine_ref(self, spec: SecretSpec, handle: LeaseHandle) -> str | None:
        return f"role_{handle}"

    def issue(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        self.during_issue()
        return LeaseCredential({"user": grant.engine_ref or ""}, b"password")

    def renew(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        return self.issue(grant, upstream)

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        self.revoked.append(ref)

    def upstream_refs(self, spec: SecretSpec, upstream: SecretValue) -> set[str]:
        return set()

    def location(self, settings: Mapping[str, Any]) -> tuple[object, ...]:
        return (settings.get("server"),)


@dataclass
class Leaks:
    """Everything a test produced that a secret must not appear in: log records, exception
    texts and tracebacks, responses."""

    texts: list[str] = field(default_factory=list)

    def add(self, *items: object) -> None:
        for item in items:
            if isinstance(item, BaseException):
                self.texts.append("".join(traceback.format_exception(item)))
                self.texts.append(repr(item))
            elif isinstance(item, bytes | bytearray):
                self.texts.append(bytes(item).decode("latin-1"))
            else:
                self.texts.append(str(item))
                self.texts.append(repr(item))

    def assert_clean(self, *secrets: str) -> None:
        assert self.texts, "nothing was captured: the scan cannot fail"
        for secret in secrets:
            for text in self.texts:
                assert secret not in text, f"secret leaked into: {text[:200]!r}"


@contextmanager
def captured_logs(leaks: Leaks) -> Iterator[None]:
    """Capture every log record (all loggers, DEBUG) into `leaks` while the block runs."""

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            leaks.texts.append(self.format(record))
            if record.exc_info:
                leaks.texts.append("".join(traceback.format_exception(*record.exc_info)))

    handler = _Collect(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def audited_broker(
    path: Path, world: LeaseWorld, policy: LeasePolicy, *, max_records: int
) -> Broker:
    """A broker over `path` (node.db) whose audit goes to the node's trace outbox (`max_records`
    at most) while the trace service is out of reach (nothing drains), signed by the
    orchestrator's identity (the node's); a `payments` token secret is stored."""
    from tests.support.brokers import PAYMENTS  # (brokers imports the node layer: on use)

    db = SqliteDatabase(path)
    vault = SoftwareVault(SqliteKeyStore(db), KEK)
    client = unreachable_outbox(db, world.orchestrator, max_records=max_records, now=world.now)
    broker = Broker(db, vault, now=world.now, policy=policy, audit=TraceAuditSink(client))
    broker.put_secret("payments", "token", PAYMENTS, b"", now=world.now)
    return broker
