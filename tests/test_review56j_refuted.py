"""Review 56j, attacks on the secrets broker's stored records that did not work: each a real
attempt (a fresh chain, request id or caller at each request, as review 56b's attack on the
stored chains), which would fail if its defence broke."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import ATTRS, CHAIN_TTL, RemoteStub, make_world, open_broker
from tests.support.parties import make_party
from tests.test_review56j_chains import member_chain, stored_bytes
from troth.credentials import delegate
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy
from troth.secrets.audit import AuditKind
from troth.secrets.broker import Broker
from troth.secrets.denials import DENIALS_PER_ACCOUNT
from troth.secrets.lease import LeaseRequest

F = SecretFailure


def _broker(tmp_path: Path, policy: AllowListPolicy) -> Broker:
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    engine = RemoteStub()
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    return broker


def _count(broker: Broker, table: str) -> int:
    row = broker.store.db.fetch_one(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 (fixed names)
    assert row is not None
    return int(row[0])


def test_a_renewal_under_a_fresh_chain_stores_nothing(tmp_path: Path) -> None:
    """A renewal presenting a fresh chain of the same agent (its credential refreshed) would
    store that chain and its members for each renewal: it is refused (the lease's chain only,
    review 30b, leases 1) before anything is written."""
    world = make_world(NOW)
    broker = _broker(tmp_path, AllowListPolicy({world.agent_b.identifier: {"s": None}}))
    issued = broker.issue(world.member_credential(world.agent_b), "s", now=NOW)
    before = stored_bytes(broker.store.db)
    for n in range(5):
        with pytest.raises(SecretError) as caught:
            broker.renew(world.member_credential(world.agent_b), issued.lease_id, now=NOW + n)
        assert caught.value.reason is F.EXPIRED
    assert stored_bytes(broker.store.db) == before
    assert _count(broker, "secret_lease_chains") == 1


def test_a_request_id_is_stored_as_a_fixed_size_key(tmp_path: Path) -> None:
    """A retried request's id is the agent's to choose and is stored with the lease: a long one
    is refused before it reaches the broker, and what is stored is a 16-byte key."""
    with pytest.raises(SecretError) as caught:
        LeaseRequest(b"\x01" * 1024)
    assert caught.value.reason is F.BAD_REQUEST
    world = make_world(NOW)
    broker = _broker(tmp_path, AllowListPolicy({world.agent_b.identifier: {"s": None}}))
    credential = world.member_credential(world.agent_b)
    broker.issue(credential, "s", now=NOW, request=LeaseRequest.new())
    rows = broker.store.db.fetch_all("SELECT length(request) FROM secret_leases")
    assert [row[0] for row in rows] == [16]


def test_fresh_delegates_refused_record_within_their_members_budget(tmp_path: Path) -> None:
    """One member mints a fresh delegate for each refused request (each a new caller, so the
    per-caller bound of 8 never applies): the records stay within the member's account's bound
    (`DENIALS_PER_ACCOUNT` a window), the rest counted, not written one each."""
    world = make_world(NOW)
    broker = _broker(tmp_path, AllowListPolicy({}))  # the policy allows no one
    root = member_chain(world, ATTRS, depth=1)
    callers = DENIALS_PER_ACCOUNT + 16
    for _ in range(callers):
        fresh = make_party(world.vault, now=NOW)
        chain = delegate(
            world.agent_b.signer,
            root,
            subject=fresh.identifier,
            attributes=ATTRS,
            now=NOW,
            ttl=CHAIN_TTL,
            purpose="one request",
        ).encode()
        credential = world.verifier.verify(
            chain, presenter=fresh.identifier, feeds=world.feeds(), now=NOW
        )
        with pytest.raises(SecretError) as caught:
            broker.issue(credential, "s", now=NOW)
        assert caught.value.reason is F.DENIED
    assert broker.audit_log is not None
    denials = [e for _, e in broker.audit_log.read(limit=1000) if e.kind is AuditKind.DENY]
    assert len(denials) == DENIALS_PER_ACCOUNT
    assert _count(broker, "secret_lease_chains") == 0  # a refused issue stores no chain
