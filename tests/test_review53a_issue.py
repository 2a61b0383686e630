"""Review 53a (performance of secrets.token.issue, benchmarks/README.md "Pass 53a"): what the
issue path's cheaper forms must keep.

1. The issue's one query (`config_and_live`) has the lease states it counts written into its
   text instead of bound at each issue: each state still counts, or not, as before.
2. The issue's statements run on one reusable cursor of the thread's connection
   (`SqliteDatabase.run`) instead of a new cursor each: a statement's result is its own, a
   clash is still a ConflictError (a taken locator is drawn again), and outside a
   transaction `run` is `execute`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from tests.test_secrets_tokens import CONFIG
from troth.errors import ConflictError
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.members import lease_account
from troth.secrets.store import sql_blob
from troth.storage import SqliteDatabase


@pytest.mark.parametrize(
    ("state", "expired", "engine_ref", "counted"),
    [
        (LeaseState.PENDING, False, False, True),
        (LeaseState.PENDING, True, False, True),
        (LeaseState.REVOKING, True, False, True),
        (LeaseState.ACTIVE, False, False, True),
        (LeaseState.ACTIVE, True, False, False),
        (LeaseState.ACTIVE, True, True, True),  # an upstream object left (review 48f)
        (LeaseState.REVOKED, False, False, False),
        (LeaseState.REVOKED, True, True, False),
    ],
)
def test_the_quota_count_takes_each_state_as_before(
    tmp_path: Path, state: LeaseState, expired: bool, engine_ref: bool, counted: bool
) -> None:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=10)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", ttl=5, now=NOW)
    handle = issued.lease.handle
    db.execute(
        "UPDATE secret_leases SET state = ?, engine_ref = ? WHERE locator = ? AND handle = ?",
        (int(state), "role" if engine_ref else None, handle.locator, sql_blob(handle.digest)),
    )
    at = NOW + 5 if expired else NOW + 4  # the lease expires at NOW + 5
    with db.transaction():
        stored, live = broker.store.config_and_live(
            "payments", lease_account(credential), at, up_to=10
        )
    assert stored is not None
    assert stored[0] == "token"
    assert live == (1 if counted else 0)


def _table(tmp_path: Path) -> SqliteDatabase:
    db = SqliteDatabase(tmp_path / "t.db")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    db.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    return db


def test_run_reads_each_statement_on_one_cursor_in_a_transaction(tmp_path: Path) -> None:
    db = _table(tmp_path)
    with db.transaction():
        first = db.run("SELECT v FROM t WHERE k = ?", (1,))
        assert first.fetchone() == ("one",)
        second = db.run("SELECT v FROM t WHERE k = ?", (2,))
        assert second is first  # the thread's cursor, not a new one
        assert second.fetchone() == ("two",)
        assert db.run("INSERT INTO t VALUES (3, 'three')").rowcount == 1
        assert db.run("SELECT v FROM t WHERE k = ?", (9,)).fetchone() is None
    assert db.fetch_one("SELECT v FROM t WHERE k = 3") == ("three",)


def test_run_outside_a_transaction_is_execute(tmp_path: Path) -> None:
    db = _table(tmp_path)
    first = db.run("SELECT v FROM t ORDER BY k")
    second = db.run("SELECT v FROM t WHERE k = ?", (2,))
    assert second is not first  # each its own cursor: both results can be held
    assert first.fetchall() == [("one",), ("two",)]
    assert second.fetchone() == ("two",)


def test_run_maps_a_clash_to_conflict_and_goes_on(tmp_path: Path) -> None:
    db = _table(tmp_path)
    with db.transaction():
        with pytest.raises(ConflictError, match=r"t\.k"):
            db.run("INSERT INTO t VALUES (1, 'again')")
        db.run("INSERT INTO t VALUES (4, 'four')")
        assert db.run("SELECT v FROM t WHERE k = 1").fetchone() == ("one",)
    assert db.fetch_one("SELECT COUNT(*) FROM t") == (3,)


def test_the_issue_reads_leave_no_statement_open_past_the_commit(tmp_path: Path) -> None:
    # a query left unfinished on the reused cursor would keep the connection on its snapshot:
    # blind to later commits, and holding every checkpoint back
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=10)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    credential = world.credential_a()
    broker.issue(credential, "payments", now=NOW)
    with db.transaction():  # the store's one-row reads, each the last statement run
        broker.store.config_and_live("payments", lease_account(credential), NOW, up_to=10)
    other = sqlite3.connect(tmp_path / "node.db", isolation_level=None)
    try:
        other.execute("INSERT INTO secret_meta VALUES ('53a', x'01')")
        assert db.fetch_one("SELECT value FROM secret_meta WHERE name = '53a'") == (b"\x01",)
        with db.transaction():
            assert broker.store.get_config("payments") is not None
        busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        other.close()
