"""Review 61m (performance of secrets.token.issue, benchmarks/README.md "Pass 61m"): what the
issue path's cheaper forms must keep.

1. The quota's four counts in the issue's one query (`CONFIG_AND_LIVE`) are the arms of one
   `UNION ALL` under one LIMIT instead of four counted subqueries summed: every held state
   still counts, each lease once, the total bounded by the quota, each arm an index range.
2. `SqliteDatabase.data_version` inside a transaction asks on a cursor of its own, kept with
   the connection: it leaves no statement open past the commit.
3. `SqliteSecretStore._one` reads through `run_rows` (no `in_transaction` then `run`): inside a
   transaction and outside one the same row, and a failure is a StorageError naming the file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from tests.test_secrets_tokens import CONFIG
from troth.credentials import VerifiedCredential
from troth.errors import SecretError, SecretFailure, StorageError
from troth.secrets import AllowListPolicy, Broker, LeaseState
from troth.secrets.members import lease_account
from troth.secrets.store import sql_blob
from troth.secrets.store_schema import CONFIG_AND_LIVE
from troth.storage import SqliteDatabase

# (state, expired at the count's time, an upstream object): whether the quota holds it
_HELD = [
    (LeaseState.PENDING, True, False, True),
    (LeaseState.REVOKING, False, False, True),
    (LeaseState.ACTIVE, False, False, True),
    (LeaseState.ACTIVE, True, True, True),  # an upstream object left (review 48f)
    (LeaseState.ACTIVE, True, False, False),
    (LeaseState.REVOKED, False, True, False),
]


def _mixed(tmp_path: Path, quota: int) -> tuple[SqliteDatabase, Broker, VerifiedCredential]:
    """A broker whose agent holds one lease in each row of `_HELD` (4 of them counted)."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=quota)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    credential = world.credential_a()
    for state, expired, engine_ref, _ in _HELD:
        handle = broker.issue(credential, "payments", ttl=5, now=NOW).lease.handle
        db.execute(
            "UPDATE secret_leases SET state = ?, engine_ref = ?, expires_at = ? "
            "WHERE locator = ? AND handle = ?",
            (
                int(state),
                "role" if engine_ref else None,
                NOW + 5 if expired else NOW + 50,
                handle.locator,
                sql_blob(handle.digest),
            ),
        )
    return db, broker, credential


def test_every_held_state_counts_once_in_the_one_count(tmp_path: Path) -> None:
    db, broker, credential = _mixed(tmp_path, quota=10)
    account = lease_account(credential)
    with db.transaction():
        stored, live = broker.store.config_and_live("payments", account, NOW + 5, up_to=10)
    assert stored is not None
    assert live == sum(counted for *_, counted in _HELD) == 4
    with db.transaction():  # the total bounded by the quota, across the arms
        _, bounded = broker.store.config_and_live("payments", account, NOW + 5, up_to=3)
    assert bounded == 3


def test_an_agent_holding_leases_in_every_state_is_refused_at_the_quota(tmp_path: Path) -> None:
    _, broker, credential = _mixed(tmp_path, quota=10)
    broker.book.quota = 4  # the four held (at NOW + 5): a fifth is one too many
    with pytest.raises(SecretError) as refused:
        broker.issue(credential, "payments", ttl=5, now=NOW + 5)
    assert refused.value.reason is SecretFailure.QUOTA_EXCEEDED
    broker.book.quota = 5  # and the fifth is issued under a quota of five
    broker.issue(credential, "payments", ttl=5, now=NOW + 5)


def test_each_arm_of_the_count_is_an_index_range(tmp_path: Path) -> None:
    db, _, _ = _mixed(tmp_path, quota=10)
    plan = [
        row[3]
        for row in db.fetch_all(
            "EXPLAIN QUERY PLAN " + CONFIG_AND_LIVE, (b"a" * 32, NOW, 10, "payments", "epoch")
        )
    ]
    leases = [step for step in plan if "secret_leases" in step]
    assert len(leases) == 4
    assert all(step.startswith("SEARCH") and "account=?" in step for step in leases), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_data_version_in_a_transaction_leaves_no_statement_open(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    db.execute("CREATE TABLE t (v INTEGER)")
    with db.transaction():
        first = db.data_version()
        assert db.data_version() == first
        db.execute("INSERT INTO t VALUES (1)")
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    try:
        other.execute("INSERT INTO t VALUES (2)")
        busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0  # no read of this connection held past its commit
        with db.transaction():
            assert db.data_version() != first  # the other connection's commit is seen
            assert db.fetch_one("SELECT COUNT(*) FROM t") == (2,)
    finally:
        other.close()
        db.close()


def test_one_reads_the_same_row_inside_and_outside_a_transaction(tmp_path: Path) -> None:
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=AllowListPolicy({}))
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    outside = broker.store.get_config("payments")
    with db.transaction():
        assert broker.store.get_config("payments") == outside
        assert broker.store.get_config("absent") is None
        with pytest.raises(StorageError, match=r"node\.db"):  # names the file (review 44d)
            broker.store._one("SELECT nothing FROM secret_store", ())
    with pytest.raises(StorageError, match=r"node\.db"):
        broker.store._one("SELECT nothing FROM secret_store", ())
