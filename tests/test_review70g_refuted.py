"""Review 70g (area: perf): attacks on the cuts of identity.rotate that did not work.

- The outbox hook remembers no miss: a node.db whose rotation found no outbox, then given one
  (by another handle, as another process makes it), has its agent's queued rows signed again
  by the next rotation.
- The outbox hook's table, found once, then gone (a copy without an outbox put in place, its
  tables dropped by another connection): the next rotation reads no rows, does not fail, and
  makes no outbox.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.test_review69a_outbox import _keys
from tests.test_trace_service import NOW, tool
from troth.node import init_node, open_node
from troth.storage import SqliteDatabase
from troth.trace.outbox import TraceOutbox
from troth.trace.outbox_store import outbox_exists


def test_a_rotation_after_an_outbox_was_made_elsewhere_signs_its_rows_again(
    tmp_path: Path,
) -> None:
    """No miss remembered: the first rotation finds no outbox; another handle of node.db makes
    one and queues two records signed by the key then current; the next rotation signs both
    again with its new key."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        agent = node.identities.create(name="agent", now=NOW - 100)
        node.identities.rotate("agent", now=NOW - 50)
        assert not outbox_exists(node.db)
        other = SqliteDatabase(tmp_path / "nodes" / "n" / "node.db")
        try:
            outbox = TraceOutbox(
                other, agent.identifier, lambda now: node.identities.signer("agent", now=now)
            )
            for n in (1, 2):
                outbox.add(tool("refund", n=n), now=NOW + n)
            node.identities.rotate("agent", now=NOW + 10)
            assert _keys(outbox, node, NOW + 20) == [True, True]
            outbox.close()
        finally:
            other.close()


def test_a_rotation_after_the_outbox_table_went_reads_none(tmp_path: Path) -> None:
    """The table found by a rotation, then dropped by another connection (a copy without an
    outbox put in place): the next rotation is stored, reads no rows, makes no outbox."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        agent = node.identities.create(name="agent", now=NOW - 100)
        outbox = TraceOutbox(
            node.db, agent.identifier, lambda now: node.identities.signer("agent", now=now)
        )
        outbox.close()
        node.identities.rotate("agent", now=NOW)  # the table found
        path = node.db.path
        conn = sqlite3.connect(path)
        try:
            names = [
                str(row[0])
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name LIKE 'trace_outbox%'"
                )
            ]
            for name in names:
                conn.execute(f"DROP TABLE {name}")
            conn.commit()
        finally:
            conn.close()
        node.identities.rotate("agent", now=NOW + 1)
        assert node.identities.get("agent", now=NOW + 2).identity.change_count == 3
        assert not outbox_exists(node.db)
