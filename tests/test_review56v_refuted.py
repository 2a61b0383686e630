"""Review 56v: what a failing trace.db statement did NOT do (the attempts that found the trace
log holding): an append in whose transaction a statement fails acknowledges nothing and
leaves nothing of its batch behind (its failure is StorageError already: the commit leader
maps what it does not know), and `troth trace verify` reads the log through the store's
mapped helpers (exit 4). Nothing in a trace transaction catches a failed statement and goes
on, so the autocommit hazard of review 56d (storage 1) does not arise there: its commit finds
a transaction SQLite rolled back itself (`SqliteDatabase._commit`)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.traces import NOW, Held, log_of, record_on_node, recorder, tool_call
from tests.test_review56v_trace import _DENIED, _FAILED, deny  # noqa: F401 - `deny` is a fixture
from troth.clock import FixedClock
from troth.errors import StorageError


@pytest.mark.usefixtures("deny")
@pytest.mark.parametrize("table", ["histories", "leaves", "agents", "attestations"])
def test_an_append_whose_statement_fails_acknowledges_nothing(tmp_path: Path, table: str) -> None:
    log = log_of(tmp_path / "trace.db", 0)  # its commit leader's connection not opened yet
    agent = recorder(log, Held(), FixedClock(NOW))
    _DENIED.add((sqlite3.SQLITE_INSERT, table))
    with pytest.raises(StorageError, match=_FAILED):
        agent.record(tool_call())
    _DENIED.clear()
    assert (log.size(), log.histories(), log.attestations()) == (0, {}, {})
    assert agent.record(tool_call()).index == 0  # the log goes on where it was


def test_troth_trace_verify_on_a_failing_trace_db_exits_4(
    troth_home: Path,
    deny: Callable[[int, str], None],  # noqa: F811 - the fixture of test_review56v_trace
) -> None:
    run("identity", "create", "support")
    record_on_node(troth_home, 1)
    deny(sqlite3.SQLITE_READ, "leaves")
    assert re.search(_FAILED, run("trace", "verify", code=4).stderr)
