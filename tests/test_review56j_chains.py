"""Review 56j, the chain bytes the secrets broker kept for its ended leases (review 56b's
attack).

1. Each issue may come with a fresh delegate chain (up to `limits.MAX_CHAIN_BYTES`, 128 KiB):
   delegates are minted offline for free, a new purpose (or a new delegate) a new chain. The
   store kept every chain's bytes (`secret_lease_chains`) for as long as any lease refers to it,
   ended ones too, until `prune` forgot them 30 days after they ended. Nothing reads those bytes
   (a renewal and a forward present the chain again and are matched by its hash; a feed's
   revocation looks in `secret_lease_members`; a lease's audit records name its identity and
   handle, not the chain), so at a member's issue rate (`LEASE_ISSUE_RATE`, ~2.6 million leases
   in 30 days) one member could make the node keep ~83 GB (chains of `MAX_PRESENTED_CHAIN_BYTES`,
   what a channel carries). The store now keeps a chain's hash and members only, so what an ended
   lease leaves is bounded by `limits.MAX_RETAINED_LEASE_BYTES`, whatever its chain.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import CHAIN_TTL, LeaseWorld, RemoteStub, make_world, open_broker
from troth.credentials import Attributes, CredentialChain, delegate, issue_credential
from troth.identity import Identifier
from troth.limits import MAX_PRESENTED_CHAIN_BYTES, MAX_RETAINED_LEASE_BYTES
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.book import ENDED_LEASE_RETENTION
from troth.secrets.broker import Broker
from troth.storage import SqliteDatabase

_BIG = Attributes({"payments.access": frozenset(f"{i:03d}" + "x" * 237 for i in range(28))})
"""~7 KB of attributes a link (under `MAX_CREDENTIAL_BYTES`): the member's link carries them and
its delegates pass them on (a three-link chain stays under `MAX_PRESENTED_CHAIN_BYTES`, what a
channel carries)."""


def member_chain(world: LeaseWorld, attributes: Attributes, *, depth: int) -> CredentialChain:
    """Agent b's member credential with `attributes`, allowed `depth` delegations."""
    member = issue_credential(
        world.authority.signer,
        subject=world.agent_b.identifier,
        attributes=attributes,
        now=NOW,
        ttl=CHAIN_TTL,
        depth=depth,
    )
    return CredentialChain((member,), (world.authority.identity.history,))


def stored_bytes(db: SqliteDatabase) -> int:
    """The payload bytes of every lease table of the broker (each column's length summed)."""
    total = 0
    tables = db.fetch_all(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'secret_lease%'"
    )
    for (table,) in tables:
        columns = [row[1] for row in db.fetch_all(f"PRAGMA table_info({table})")]
        lengths = " + ".join(f"COALESCE(length({column}), 0)" for column in columns)
        row = db.fetch_one(f"SELECT COALESCE(SUM({lengths}), 0) FROM {table}")  # noqa: S608
        assert row is not None
        total += int(row[0])
    return total


def test_ended_leases_keep_no_chain_bytes(tmp_path: Path) -> None:
    """1: one member (agent b, credentialed with large attributes) delegates to the orchestrator,
    which delegates to agent a under a new purpose before each issue, and revokes each lease:
    every ended lease, kept 30 days, must leave at most `MAX_RETAINED_LEASE_BYTES`, not its ~21
    KB chain."""
    world = make_world(NOW)
    root = delegate(
        world.agent_b.signer,
        member_chain(world, _BIG, depth=2),
        subject=world.orchestrator.identifier,
        attributes=_BIG,
        now=NOW,
        ttl=CHAIN_TTL,
        purpose="run the refunds queue",
    )
    db, broker = _broker(tmp_path, world, world.agent_a.identifier, quota=2)
    before = stored_bytes(db)
    rounds, chain_bytes = 8, 0
    for n in range(rounds):
        chain = delegate(
            world.orchestrator.signer,
            root,
            subject=world.agent_a.identifier,
            attributes=_BIG,
            now=NOW,
            ttl=CHAIN_TTL,
            purpose=f"job {n}",
        ).encode()
        chain_bytes += len(chain)
        credential = world.verifier.verify(
            chain, presenter=world.agent_a.identifier, feeds=world.feeds(), now=NOW
        )
        issued = broker.issue(credential, "s", now=NOW)
        broker.revoke(credential, issued.lease_id, now=NOW)
    grown = stored_bytes(db) - before
    assert rounds * 20_000 < chain_bytes < rounds * MAX_PRESENTED_CHAIN_BYTES  # large, allowed
    # the ended leases (more than the quota of 2 open ones) are all still retained
    assert _ended(broker) == rounds
    assert grown <= rounds * MAX_RETAINED_LEASE_BYTES, (grown, chain_bytes)


def _ended(broker: Broker) -> int:
    row = broker.store.db.fetch_one("SELECT COUNT(*) FROM secret_leases")
    assert row is not None
    return int(row[0])


def _broker(
    tmp_path: Path, world: LeaseWorld, allowed: Identifier, *, quota: int = 100, put: bool = True
) -> tuple[SqliteDatabase, Broker]:
    """A broker over tmp_path/node.db allowing `allowed` secret "s" of a RemoteStub engine
    (stored there unless `put` is False: a broker opened again)."""
    policy = AllowListPolicy({allowed: {"s": None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=quota)
    engine = RemoteStub()
    broker.engines[engine.kind] = engine
    if put:
        broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    return db, broker


def _hashes(db: SqliteDatabase) -> set[bytes]:
    return {bytes(row[0]) for row in db.fetch_all("SELECT chain_hash FROM secret_lease_chains")}


def test_an_older_store_keeping_chain_bytes_is_migrated(tmp_path: Path) -> None:
    """1: a database whose `secret_lease_chains` keeps each chain's bytes (before review 56j)
    opens: the table is rewritten as the hashes alone, an open lease under a stored chain is
    still renewed under it and revoked by a feed revoking its link, and the chains are still
    pruned with their leases."""
    world = make_world(NOW)
    db, broker = _broker(tmp_path, world, world.agent_b.identifier)
    live_credential = world.member_credential(world.agent_b)
    live = broker.issue(live_credential, "s", now=NOW)
    ended_credential = world.member_credential(world.agent_b)
    ended = broker.issue(ended_credential, "s", now=NOW)
    broker.revoke(ended_credential, ended.lease_id, now=NOW)
    chains = {
        live.lease.chain_hash: live_credential.chain,
        ended.lease.chain_hash: ended_credential.chain,
    }
    assert _hashes(db) == set(chains)
    broker.close()
    old = SqliteDatabase(tmp_path / "node.db")  # the layout before review 56j, with the bytes
    old.execute("DROP TABLE secret_lease_chains")
    old.execute(
        "CREATE TABLE secret_lease_chains (chain_hash BLOB PRIMARY KEY, chain BLOB NOT NULL)"
    )
    for chain_hash, chain in chains.items():
        old.execute("INSERT INTO secret_lease_chains VALUES (?, ?)", (chain_hash, chain))
    old.close()
    for _ in range(2):  # migrated once, then opened as it is
        db, broker = _broker(tmp_path, world, world.agent_b.identifier, put=False)
        columns = [row[1] for row in db.fetch_all("PRAGMA table_info(secret_lease_chains)")]
        assert columns == ["chain_hash"]
        assert _hashes(db) == set(chains)
        broker.close()
    db, broker = _broker(tmp_path, world, world.agent_b.identifier, put=False)
    renewed = broker.renew(live_credential, live.lease_id, now=NOW + 5)
    assert renewed[0].state is LeaseState.ACTIVE
    link = live_credential.links[0].hash
    revoked = broker.revoke_for_feed(world.feed_revoking([(1, link)], now=NOW + 6), now=NOW + 6)
    assert [lease.handle for lease in revoked] == [live.lease.handle]
    later = NOW + ENDED_LEASE_RETENTION + 60
    assert broker.prune(later) == 2
    broker.prune(later + 10)  # the chains' pass or the account rows' first: both run
    broker.prune(later + 20)
    assert _hashes(db) == set()
    broker.close()
