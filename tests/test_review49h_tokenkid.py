"""Review 49h, secrets.token.issue (a performance pass: benchmarks/README.md, "Pass 49h").

1. Since review 48f (tokens 1) every token issue reads the current token key's kid in its one
   query (`config_and_live`), and that read, `ORDER BY created_at DESC, kid DESC LIMIT 1` over
   `secret_signing_keys` with no index for it, scanned the table and sorted it in a temporary
   B-tree at every issue (~28 k of the ~66 k instructions an issue gained since 38c8bb5: the
   sorter's pages zeroed, its allocations). A partial index of the unretired keys,
   `secret_signing_keys_current (created_at, kid) WHERE retired_at IS NULL`, gives the newest
   one without a sort; a database made before gets it when a broker opens it.

The first and the third test failed on main at 62104bb (a temporary B-tree in the issue's
query; no such index); the second checks that the kid read is the one the scan and sort gave.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world, open_broker
from tests.test_secrets_tokens import CONFIG
from troth.secrets import AllowListPolicy, Broker
from troth.storage import SqliteDatabase


def _broker(path: Path) -> tuple[SqliteDatabase, Broker, LeaseWorld]:
    """A token broker over a node database at `path`, after its first issue."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    db, broker = open_broker(path, now=NOW, policy=policy)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    broker.issue(world.credential_a(), "payments", now=NOW)
    return db, broker, world


def _issue_statements(path: Path) -> tuple[sqlite3.Connection, list[str]]:
    """The statements one token issue runs (parameters expanded), after a first issue."""
    db, broker, world = _broker(path)
    conn = db.connection()
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        broker.issue(world.credential_a(), "payments", now=NOW + 1)
    finally:
        conn.set_trace_callback(None)
    return conn, seen


def test_a_token_issue_sorts_nothing(tmp_path: Path) -> None:
    conn, statements = _issue_statements(tmp_path / "node.db")
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert any("secret_signing_keys" in s for s in selects)  # the kid is read in the issue
    for sql in selects:
        plan = " / ".join(str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "TEMP B-TREE" not in plan, (sql, plan)
        if "secret_signing_keys" in sql:
            assert "USING INDEX secret_signing_keys_current" in plan, plan


def test_the_current_kid_is_the_newest_unretired_key(tmp_path: Path) -> None:
    db, broker, _world = _broker(tmp_path / "node.db")
    first = broker.store.current_signing_kid()
    broker.keys.rotate_signing_key(NOW + 1, compromised=False)
    second = broker.store.current_signing_kid()
    assert first is not None
    assert second is not None
    assert second != first
    listed = [
        row[0]
        for row in db.connection().execute(
            "SELECT kid FROM secret_signing_keys NOT INDEXED WHERE retired_at IS NULL "
            "ORDER BY created_at DESC, kid DESC LIMIT 1"
        )
    ]
    assert listed == [second]  # the index answers what the table scan and sort answered


def test_a_database_made_before_gets_the_index_when_a_broker_opens_it(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    db, _before, _world = _broker(path)
    db.connection().execute("DROP INDEX secret_signing_keys_current")  # as an older troth made
    db2, _after = open_broker(path, now=NOW)
    names = {
        str(row[0])
        for row in db2.connection().execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    assert "secret_signing_keys_current" in names
