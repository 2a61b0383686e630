"""Review 56v, trace 1: the trace log ran its transactions' statements straight on the sqlite3
connection (`TraceLog.checkpoint`, `redact` and the end of a redaction, the signer histories
it keeps), so a failure of trace.db (a full disk, an I/O error, a damaged page, a locked
file, a constraint) came out as a bare sqlite3 error: no troth error, and `troth trace
checkpoint/redact` (or a node answering a request) exited 70, "internal error", logged as a
bug, where every other storage failure is StorageError (exit 4). A failing statement is made
with SQLite's authorizer (a statement it denies fails as "not authorized", a DatabaseError)
or a page cap (`max_page_count`: the SQLITE_FULL a full disk gives)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.traces import NOW, Held, log_of, record_on_node, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import StorageError
from troth.trace.log import TraceLog

_FAILED = "not authorized|prohibited"  # SQLite's words for a statement denied
_DENIED: set[tuple[int, str]] = set()


def _authorize(action: int, arg1: str | None, *_: Any) -> int:
    return sqlite3.SQLITE_DENY if (action, arg1 or "") in _DENIED else sqlite3.SQLITE_OK


@pytest.fixture
def deny(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int, str], None]]:
    """deny(action, table): every trace.db connection opened from now on fails that
    statement (SQLITE_INSERT / SQLITE_UPDATE / SQLITE_READ on `table`)."""
    connect = sqlite3.connect

    def connecting(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(*args, **kwargs)
        if Path(str(args[0])).name.endswith("trace.db"):
            conn.set_authorizer(_authorize)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connecting)
    yield lambda action, table: _DENIED.add((action, table))
    _DENIED.clear()


def _failing(log: TraceLog, action: int, table: str) -> None:
    """`log`'s statements `action` on `table` fail from now on."""
    _DENIED.add((action, table))
    log.store.connection().set_authorizer(_authorize)  # expires its prepared statements


@pytest.mark.usefixtures("deny")
@pytest.mark.parametrize("table", ["checkpoints", "histories", "attestations"])
def test_trace1_a_failing_statement_of_a_checkpoint_is_a_storage_error(
    tmp_path: Path, table: str
) -> None:
    log = log_of(tmp_path / "trace.db", 2)
    _failing(log, sqlite3.SQLITE_INSERT, table)
    with pytest.raises(StorageError, match=_FAILED):
        log.checkpoint()
    _DENIED.clear()
    assert log.checkpoints() == []  # nothing of it written


def _disclosed(tmp_path: Path) -> tuple[TraceLog, str]:
    log = log_of(tmp_path / "trace.db", 0)
    receipt = recorder(log, Held(), FixedClock(NOW)).record(tool_call(args="x"))
    return log, receipt.record


@pytest.mark.usefixtures("deny")
@pytest.mark.parametrize(
    ("action", "table"),
    [(sqlite3.SQLITE_UPDATE, "leaves"), (sqlite3.SQLITE_DELETE, "meta")],  # the value; the mark
)
def test_trace1_a_failing_statement_of_a_redaction_is_a_storage_error(
    tmp_path: Path, action: int, table: str
) -> None:
    log, record = _disclosed(tmp_path)
    _failing(log, action, table)
    with pytest.raises(StorageError, match=_FAILED):
        log.redact(record, "args")
    _DENIED.clear()
    assert bool(log.disclosures(record)) == (table == "leaves")  # held unless committed


def test_trace1_troth_trace_checkpoint_on_a_failing_trace_db_exits_4(
    troth_home: Path, deny: Callable[[int, str], None]
) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 1)
    deny(sqlite3.SQLITE_INSERT, "checkpoints")
    said = run("trace", "checkpoint", code=4)
    assert re.search(_FAILED, said.stderr)


@pytest.mark.usefixtures("deny")
def test_trace1_a_failing_read_of_a_proof_is_a_storage_error(tmp_path: Path) -> None:
    log = log_of(tmp_path / "trace.db", 40)  # 16 records make a stored subtree (level 4)
    _failing(log, sqlite3.SQLITE_READ, "nodes")
    with pytest.raises(StorageError, match=_FAILED):
        log.inclusion_proof(0, 40)
    with pytest.raises(StorageError, match=_FAILED):
        log.consistency_proof(17, 40)


def test_trace1_troth_trace_export_on_a_failing_trace_db_exits_4(
    troth_home: Path, deny: Callable[[int, str], None]
) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 1)
    deny(sqlite3.SQLITE_READ, "leaves")
    assert re.search(_FAILED, run("trace", "export", code=4).stderr)


def test_trace1_troth_trace_redact_on_a_failing_trace_db_exits_4(
    troth_home: Path, deny: Callable[[int, str], None]
) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 1)
    record = json.loads(run("trace", "export").stdout)["record"]["id"]
    deny(sqlite3.SQLITE_UPDATE, "leaves")
    said = run("trace", "redact", record, "--field", "args", code=4)
    assert re.search(_FAILED, said.stderr)
