"""Review 71c (rows): attacks tried that did not work, kept as tests of the behaviour that
stopped them: the trace log's schema 3 -> 4 migration (`troth.trace.store._ids_per_agent`)
killed midway, re-run, met by a log of a schema from the future, and by schema 3 rows it
cannot file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.traces import Held, as_schema_3, db, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import ConfigError, StorageError
from troth.trace import store as trace_store
from troth.trace import verify_log
from troth.trace.store import open_trace_store

_LOOSE = (  # schema 3's `leaves` as a crafted file may hold it: no constraint on any column
    "BEGIN; CREATE TABLE old (idx INTEGER PRIMARY KEY, record_id, leaf, envelope, disclosures); "
    "INSERT INTO old SELECT * FROM leaves; DROP TABLE leaves; "
    "ALTER TABLE old RENAME TO leaves; COMMIT;"
)


def _schema_3_log(path: Path, records: int, *edits: str) -> tuple[FixedClock, Held]:
    """A log at `path` of `records` records of one agent, put back to schema 3, `edits` run."""
    clock, owner, agent = FixedClock(NOW), Held(), Held()
    with open_log(path, clock, owner) as log:
        writer = recorder(log, agent, clock)
        for _ in range(records):
            writer.record(tool_call())
        raw = db(log)
        as_schema_3(raw)
        for edit in edits:
            raw.executescript(edit)
        raw.close()
    return clock, owner


def _state(path: Path) -> tuple[object, ...]:
    with sqlite3.connect(path) as raw:
        version = raw.execute("PRAGMA user_version").fetchone()[0]
        columns = [row[1] for row in raw.execute("PRAGMA table_info(leaves)")]
        rows = raw.execute("SELECT * FROM leaves ORDER BY idx").fetchall()
    raw.close()
    return version, columns, rows


def test_a_migration_killed_midway_leaves_schema_3_and_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: the schema 4 migration killed between its statements (the second envelope's
    agent read raises as a kill would, after leaves_4 was made and rows copied into it). The
    migration is one transaction with the version bump: the file is left at schema 3 as it
    was, and the next opening migrates it whole (the verifier finds every record)."""
    path = tmp_path / "log.db"
    clock, owner = _schema_3_log(path, 3)
    before = _state(path)
    read = trace_store.envelope_agent
    calls: list[bytes] = []

    def killed(envelope: bytes) -> bytes:
        calls.append(envelope)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return read(envelope)

    monkeypatch.setattr(trace_store, "envelope_agent", killed)
    with pytest.raises(KeyboardInterrupt):
        open_trace_store(path)
    monkeypatch.undo()
    assert _state(path) == before
    with open_log(path, clock, owner) as log:
        assert verify_log(log).size == 3
    assert _state(path)[:2] == (4, ["idx", "record_id", "leaf", "envelope", "disclosures", "agent"])


def test_a_log_from_a_future_schema_is_refused_untouched(tmp_path: Path) -> None:
    """Tried: a trace.db at schema 5 (a newer troth's, or a header edited). It is refused with
    ConfigError naming both schemas, nothing migrated nor written."""
    path = tmp_path / "log.db"
    _schema_3_log(path, 1, "PRAGMA user_version = 5;")
    before = _state(path)
    with pytest.raises(ConfigError, match="has schema 5; this troth knows 4"):
        open_trace_store(path)
    assert _state(path) == before


_UNFILED = {  # rows of a schema 3 log (its constraints dropped) schema 4 cannot hold
    "same id and agent": "INSERT INTO leaves SELECT 1, record_id, leaf, envelope, NULL FROM leaves",
    "two ids of no agent": "INSERT INTO leaves VALUES (1, 'z', x'00', x'00', NULL); "
    "INSERT INTO leaves VALUES (2, 'z', x'00', 'text', NULL);",
    "no record id": "INSERT INTO leaves SELECT 1, NULL, leaf, envelope, NULL FROM leaves",
    "no leaf": "INSERT INTO leaves SELECT 1, 'y', NULL, envelope, NULL FROM leaves",
    "no envelope": "INSERT INTO leaves SELECT 1, 'y', leaf, NULL, NULL FROM leaves",
    "idx of text": "INSERT INTO leaves VALUES ('one', 'y', x'00', x'00', NULL)",
}


@pytest.mark.parametrize("what", sorted(_UNFILED))
def test_schema_3_rows_the_migration_cannot_file_are_refused_untouched(
    tmp_path: Path, what: str
) -> None:
    """Tried: a schema 3 log whose `leaves` lost its constraints, holding rows schema 4 cannot
    file (one record id twice under one agent, or under none; a NULL column; an `idx` that is
    no integer, in a table whose `idx` is no rowid). The migration fails on schema 4's
    constraint and is refused with StorageError (ConflictError: the constraint) naming the
    file, never a bare sqlite3 error; the file is left at schema 3 as it was, nothing filed
    and nothing dropped."""
    path = tmp_path / "log.db"
    loose = _LOOSE.replace("idx INTEGER PRIMARY KEY", "idx") if what == "idx of text" else _LOOSE
    _schema_3_log(path, 1, loose, _UNFILED[what])
    before = _state(path)
    with pytest.raises(StorageError, match=str(path)):
        open_trace_store(path)
    assert _state(path) == before
