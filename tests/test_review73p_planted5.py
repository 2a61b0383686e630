"""Review 73p, planted5: the review of 73h's comparison of a restored copy's tables with troth's
(planted4), and of what its xfail (planted4 3: the tables troth makes lazily, not compared)
leaves to the restore's own writes (docs/storage.md, "Rollback guard")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.traces import Held, tool_call
from tests.test_review72b_release import edit
from tests.test_review73a_planted3 import edited_node_db
from troth.errors import StorageError, TraceError
from troth.storage import SqliteDatabase
from troth.storage.planted import planted
from troth.trace.outbox import TraceOutbox
from troth.trace.outbox_store import OutboxStore

_AGENTS_KEYED_BY_COUNT = (
    "CREATE TABLE trace_outbox_agents (agent BLOB PRIMARY KEY, seq INTEGER, hash BLOB, "
    "time INTEGER, queued INTEGER NOT NULL DEFAULT 0 UNIQUE, "
    "queued_bytes INTEGER NOT NULL DEFAULT 0, refused INTEGER NOT NULL DEFAULT 0, "
    "refused_bytes INTEGER NOT NULL DEFAULT 0)"
)


def test_the_outboxs_count_row_is_not_skipped_by_a_uniqueness_planted(tmp_path: Path) -> None:
    """73p planted5 1: of the writes a restore found makes (in its transaction) to a table
    troth makes lazily, outside its migrations, one only met every uniqueness the table holds:
    the broker's restore revokes every open lease, and each revocation's audit record goes to
    the node's trace outbox (node.db), whose `INSERT OR IGNORE INTO trace_outbox_agents` makes
    the agent's count row. A copy holding that table made with `queued ... UNIQUE` (not
    compared: 73h planted4 3) and a row counting 0 had the agent's row ignored, so no record
    was counted and the outbox took records past its bound (`max_records`), without end while
    the trace service is out of reach. The row is now made by an upsert on the agent
    (`ON CONFLICT (agent) DO NOTHING`, troth's key of it in every version): a uniqueness that
    is not troth's fails the write (StorageError naming the table), never skips it."""
    path = edited_node_db(tmp_path)
    db = SqliteDatabase(path)
    OutboxStore(db)  # the node's outbox tables, as troth makes them
    db.close()
    edit(
        path,
        ("DROP TABLE trace_outbox_agents", ()),
        (_AGENTS_KEYED_BY_COUNT, ()),
        ("INSERT INTO trace_outbox_agents (agent) VALUES (x'00')", ()),
    )
    db = SqliteDatabase(path)
    agent = Held(now=NOW)
    outbox = TraceOutbox(db, agent.identifier, lambda now: agent.signer(now), max_records=1)
    try:
        # lazily made: compared since 74c planted6 1 (a restore found is refused first)
        assert planted(db) == ["table 'trace_outbox_agents' (a UNIQUE or PRIMARY KEY not troth's)"]
        with pytest.raises((StorageError, TraceError), match="trace_outbox_agents"):
            for n in range(3):
                outbox.add(tool_call(args={"n": n}), now=NOW)
        assert db.fetch_one("SELECT count(*) FROM trace_outbox") == (0,)  # none past it
    finally:
        outbox.close()
        db.close()
