"""Review 50m (performance of secrets.token.issue, benchmarks/README.md "Pass 50m"): what the
issue path's cheaper forms must keep.

1. A lease's INSERT names only the columns it sets (`store_schema.INSERT_LEASE`): with and
   without an engine_ref and a request, the row stored holds every value (NULL where unset),
   and a lease with an end reason is not written.
2. `SqliteDatabase.transaction()` is a class (`_Transaction`): re-entered, only the outermost
   commits; a failure rolls back and drops the `after_commit` callbacks; a failed BEGIN
   leaves the thread outside any transaction.
3. The issue's query (`config_and_live`) joins the secret's row instead of reading it twice.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from troth.credentials import VerifiedCredential
from troth.errors import StorageError
from troth.identity import Identifier
from troth.secrets import AllowListPolicy, Broker, LeaseState
from troth.secrets.lease import EndReason, LeaseId, LeaseRequest
from troth.secrets.members import lease_account
from troth.storage import SqliteDatabase

TOKEN = {"scopes": ["r"], "ttl": 60, "max_ttl": 600, "audience": "payments"}
DB = {"scopes": ["read"], "ttl": 300, "max_ttl": 600, "server": "db-1"}
_COLUMNS = "end_reason, engine_ref, request, request_attempt, state, proof, secret"


def _broker(tmp_path: Path) -> tuple[Broker, Identifier, VerifiedCredential]:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None, "orders-db": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    engine = RemoteStub()
    broker.engines[engine.kind] = engine
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    broker.put_secret("orders-db", engine.kind, DB, b"admin", now=NOW)
    return broker, world.agent_a.identifier, world.credential_a()


@pytest.mark.parametrize("name", ["payments", "orders-db"])
@pytest.mark.parametrize("asked", [False, True])
def test_a_lease_row_holds_every_value_it_was_written_with(
    tmp_path: Path, name: str, asked: bool
) -> None:
    broker, identity, credential = _broker(tmp_path)
    request = LeaseRequest(bytes(range(16)), 2) if asked else None
    issued = broker.issue(credential, name, now=NOW, request=request)
    row = broker.store.db.fetch_one(
        f"SELECT {_COLUMNS} FROM secret_leases WHERE locator = ?",  # noqa: S608
        (issued.lease.handle.locator,),
    )
    end_reason, engine_ref, key, attempt, state, proof, secret = row
    assert end_reason is None
    assert engine_ref == issued.lease.engine_ref
    assert (engine_ref is None) == (name == "payments")
    if request is None:
        assert (key, attempt) == (None, None)
    else:
        assert (bytes(key), attempt) == (request.key(identity), 2)
    assert (state, secret) == (int(LeaseState.ACTIVE), name)
    assert bytes(proof) == issued.lease_id.handle_and_proof()[1]
    assert broker.store.get_lease(*issued.lease_id.handle_and_proof()) == issued.lease


def test_a_lease_with_an_end_reason_is_not_written(tmp_path: Path) -> None:
    broker, _identity, credential = _broker(tmp_path)
    issued = broker.issue(credential, "payments", now=NOW)
    handle, proof = LeaseId.new(NOW).handle_and_proof()  # a free locator: only the check refuses
    ended = dataclasses.replace(issued.lease, handle=handle, end_reason=EndReason.REVOKED)
    store = broker.store
    with pytest.raises(StorageError, match="end reason"), store.transaction():
        store.config_and_live("payments", issued.lease.identity, NOW, up_to=10)
        store.insert_lease(ended, lease_account(credential), proof, lambda: ())
    assert store.get_lease(handle) is None
    assert store.get_lease(issued.lease.handle) == issued.lease


def _count(db: SqliteDatabase) -> int:
    return int(db.fetch_one("SELECT COUNT(*) FROM t")[0])


def test_a_transaction_commits_once_and_drops_callbacks_on_failure(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    db.execute("CREATE TABLE t (x)")
    ran: list[str] = []
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
        with db.transaction():  # re-entered: counted, not committed here
            db.execute("INSERT INTO t VALUES (2)")
            db.after_commit(lambda: ran.append("inner"))
        assert db.in_transaction
        assert not ran
        db.after_commit(lambda: ran.append("outer"))
    assert ran == ["inner", "outer"]
    assert _count(db) == 2
    assert not db.in_transaction

    with pytest.raises(KeyError), db.transaction():
        db.execute("INSERT INTO t VALUES (3)")
        db.after_commit(lambda: ran.append("dropped"))
        with db.transaction():
            raise KeyError("inner failure")
    assert ran == ["inner", "outer"]
    assert _count(db) == 2
    assert not db.in_transaction

    failures: list[str] = []

    def fail() -> None:
        failures.append("ran")
        raise ValueError("callback")

    with pytest.raises(ValueError, match="callback"), db.transaction():
        db.execute("INSERT INTO t VALUES (4)")
        db.after_commit(fail)
        db.after_commit(lambda: ran.append("after the failing one"))
    assert failures == ["ran"]
    assert ran[-1] == "after the failing one"
    assert _count(db) == 3


def test_a_failed_begin_leaves_no_transaction(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    db.execute("CREATE TABLE t (x)")
    db.busy_timeout = 0.05
    holder = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
    try:
        with pytest.raises(StorageError, match="cannot begin"), db.transaction():
            pytest.fail("entered without the write lock")
        assert not db.in_transaction
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
    assert _count(db) == 1


def test_config_and_live_reads_a_missing_secret_as_none(tmp_path: Path) -> None:
    """3. The issue's one query joins the secret's row (looked up once): a secret not stored
    still gives its one row, the config None and the account's live count."""
    broker, _identity, credential = _broker(tmp_path)
    issued = broker.issue(credential, "payments", now=NOW)
    account = lease_account(credential)
    with broker.store.transaction():
        assert broker.store.config_and_live("nothing", account, NOW, up_to=10) == (None, 1)
        stored, live = broker.store.config_and_live("payments", account, NOW, up_to=10)
    assert stored == broker.store.get_config("payments")
    assert stored is not None
    assert live == 1
    assert issued.lease.secret == "payments"
