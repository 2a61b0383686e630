"""Review 46d, the secrets broker's residuals from the last closing note.

1. The lease chain tables were never pruned. `Broker.prune` forgets ended leases 30 days after
   they ended (review 45b), but the chain each lease was issued under (`secret_lease_chains`,
   up to `limits.MAX_CHAIN_BYTES` each) and its members (`secret_lease_members`) stayed for
   good: an agent leasing continuously, its credential refreshed (a new chain each time), grew
   them without bound. The same maintenance pass now deletes the chains no remaining lease
   refers to, with their members, in the transaction that deletes the leases; each chain's
   standing row (`ROOT_MEMBER` || authority || actor) is kept once per (authority, actor), so
   an authority keeps its standing over an agent that presented its chain here (review 31b,
   secrets 3).

2. First revocation attempts were not budgeted, only retries (review 45i): a burst of leases
   expiring at once had every upstream revocation tried in one sweep, however long they took,
   the accounts in expiry order. They are now taken in turn across accounts within their own
   budget (`MAX_SWEEP_FIRST_ATTEMPTS`, `SWEEP_FIRST_SECONDS`); the rest stay REVOKING, due,
   for the next sweeps.

Each test was a strict xfail until its fix (the second one of 1 guards that fix: a chain
pruned while another broker remembers it as stored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from troth.errors import StorageError
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.book import ENDED_LEASE_RETENTION
from troth.secrets.broker import Broker
from troth.secrets.engine import SecretSpec
from troth.secrets.lease import SecretValue
from troth.secrets.members import standing_member

LATER = NOW + ENDED_LEASE_RETENTION + 30  # every lease ended at NOW is past its retention


def _count(broker: Broker, table: str) -> int:
    row = broker.store.db.fetch_one(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 (fixed names)
    assert row is not None
    return int(row[0])


def _stub_broker(tmp_path: Path) -> tuple[Any, AllowListPolicy, Broker, RemoteStub]:
    """Agent b allowed secret "s" of a RemoteStub engine, on a broker over tmp_path/node.db:
    the world, the policy, the broker and the engine."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"s": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    engine = RemoteStub()
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    return world, policy, broker, engine


# -- 1. the chain tables are pruned -------------------------------------------------------------


def test_chains_no_lease_refers_to_are_pruned_with_the_leases(tmp_path: Path) -> None:
    """1: an agent leasing under a fresh chain each time (its credential refreshed), each
    lease ended: once its leases are pruned, its chains and their members are too; the chain
    of its live lease stays, and so does its authority's standing over it (one row). Was a
    strict xfail until `LeaseBook.prune` pruned the chains."""
    world, _policy, broker, _engine = _stub_broker(tmp_path)
    refreshes = 30
    for _ in range(refreshes):
        credential = world.member_credential(world.agent_b)
        issued = broker.issue(credential, "s", now=NOW)
        broker.revoke(credential, issued.lease_id, now=NOW)
    live_credential = world.member_credential(world.agent_b)
    live = broker.issue(live_credential, "s", now=NOW)
    assert _count(broker, "secret_lease_chains") == refreshes + 1
    assert broker.prune(LATER) == refreshes
    assert _count(broker, "secret_lease_chains") == 1
    chain_rows = broker.store.db.fetch_all("SELECT DISTINCT chain_hash FROM secret_lease_members")
    assert {bytes(row[0]) for row in chain_rows} <= {live.lease.chain_hash, b""}
    standing = standing_member(world.authority.identifier, world.agent_b.identifier)
    assert broker.store.has_member(standing)
    rows = broker.store.db.fetch_one(
        "SELECT COUNT(*) FROM secret_lease_members WHERE member = ?", (standing,)
    )
    assert rows is not None
    assert rows[0] <= 2  # the live chain's row and one kept for standing
    # the live lease is still revoked by its chain's revocation
    link = live_credential.links[0].hash
    ended = broker.revoke_for_feed(world.feed_revoking([(1, link)], now=NOW + 1), now=NOW + 1)
    assert [lease.handle for lease in ended] == [live.lease.handle]
    # the standing outlives the chains: a feed revoking agent b is still heeded
    broker.revoke(live_credential, live.lease_id, now=NOW + 1)
    assert broker.prune(LATER + 10) == 1
    broker.prune(LATER + 20)  # the chains' turn (review 47d: the account rows' pass took this one)
    assert _count(broker, "secret_lease_chains") == 0
    assert broker.store.has_member(standing)


def test_a_broker_that_remembers_a_pruned_chain_stores_it_again(tmp_path: Path) -> None:
    """1: a broker's store remembers the chains it stored (it skips writing them again).
    Another broker on the same database (the daemon, a CLI command) prunes that chain: the
    first broker's next lease under it stores the chain and its members again, so the feed
    still finds that lease. Was a strict xfail until the chains were pruned (the store's
    cache now empties when the chains' epoch moved on)."""
    world, policy, broker, engine = _stub_broker(tmp_path)
    credential = world.member_credential(world.agent_b)
    issued = broker.issue(credential, "s", now=NOW)
    broker.revoke(credential, issued.lease_id, now=NOW)
    _db2, other = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    other.engines[engine.kind] = engine
    assert other.prune(LATER) == 1
    assert _count(broker, "secret_lease_chains") == 0
    again = broker.issue(credential, "s", now=NOW)  # its store still remembers the chain
    assert _count(broker, "secret_lease_chains") == 1
    link = credential.links[0].hash
    ended = broker.revoke_for_feed(world.feed_revoking([(1, link)], now=NOW + 1), now=NOW + 1)
    assert [lease.handle for lease in ended] == [again.lease.handle]
    other.close()
    broker.close()
    broker.store.db.close()


def test_a_prune_that_fails_midway_keeps_the_leases_and_their_chains(tmp_path: Path) -> None:
    """1: the leases and the chains are forgotten in one transaction: a failure after the
    chains' deletion (a crash, the disk full) keeps every lease row and every chain, so a
    chain is never deleted while a lease that refers to it stays, and the next round does it
    all."""
    world, _policy, broker, _engine = _stub_broker(tmp_path)
    for _ in range(3):
        credential = world.member_credential(world.agent_b)
        issued = broker.issue(credential, "s", now=NOW)
        broker.revoke(credential, issued.lease_id, now=NOW)
    store = broker.store
    prune_chains = store.prune_chains

    def failing(after: bytes, *, limit: int) -> tuple[int, bytes]:
        prune_chains(after, limit=limit)
        raise StorageError("disk full")

    store.prune_chains = failing  # type: ignore[method-assign]
    with pytest.raises(StorageError):
        broker.prune(LATER)
    assert (_count(broker, "secret_leases"), _count(broker, "secret_lease_chains")) == (3, 3)
    store.prune_chains = prune_chains  # type: ignore[method-assign]
    assert broker.prune(LATER) == 3
    assert (_count(broker, "secret_leases"), _count(broker, "secret_lease_chains")) == (0, 0)


# -- 2. first revocation attempts are budgeted --------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Slow(RemoteStub):
    """Each upstream revocation costs `cost` seconds of `clock` (a remote server's round trip)."""

    def __init__(self, clock: _Clock, cost: float) -> None:
        super().__init__()
        self.clock = clock
        self.cost = cost

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        self.clock.now += self.cost
        super().revoke(spec, ref, upstream)


def test_a_burst_of_expiring_leases_is_revoked_within_a_budget_fairly(tmp_path: Path) -> None:
    """2: account A's 100 leases and account B's one expire at once, each upstream revocation
    costing 0.1 s: the first sweep tries a bounded number (not all 101), B's among them; the
    rest stay REVOKING (none lost, none live) and the next sweeps revoke each exactly once.
    Was a strict xfail until the sweep budgeted first attempts."""
    from troth.secrets.sweep import MAX_SWEEP_FIRST_ATTEMPTS, SWEEP_FIRST_SECONDS

    world = make_world(NOW)
    policy = AllowListPolicy(
        {world.agent_a.identifier: {"s": None}, world.agent_b.identifier: {"s": None}}
    )
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    clock = _Clock()
    broker.monotonic = clock
    cost = 0.1
    engine = _Slow(clock, 0.0)
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    a, b = world.credential_a(), world.credential_b()
    burst = [broker.issue(a, "s", now=NOW, ttl=10).lease for _ in range(100)]
    other = broker.issue(b, "s", now=NOW + 1, ttl=9).lease  # expires with them, issued last
    engine.cost = cost
    report = broker.sweep(NOW + 20)
    tried = len(engine.revoked)
    assert tried <= min(MAX_SWEEP_FIRST_ATTEMPTS, SWEEP_FIRST_SECONDS / cost + 1), tried
    assert report.deferred == 101 - tried
    assert broker.book.lease(other.handle).state is LeaseState.REVOKED  # type: ignore[union-attr]
    states = {broker.book.lease(lease.handle).state for lease in burst}  # type: ignore[union-attr]
    assert states == {LeaseState.REVOKED, LeaseState.REVOKING}
    for n in range(1, 60):
        if not broker.sweep(NOW + 20 + n).deferred:
            break
    assert sorted(engine.revoked) == sorted(  # type: ignore[type-var]
        lease.engine_ref for lease in [*burst, other]
    )
    for lease in [*burst, other]:
        assert broker.book.lease(lease.handle).state is LeaseState.REVOKED  # type: ignore[union-attr]
