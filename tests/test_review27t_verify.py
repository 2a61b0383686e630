"""Review 27t, verify 1-3: a crafted log file makes `troth trace verify` read without end or
crash instead of naming the bad record.

Whoever can write the log file (`<node>/trace.db`) must get a verifier's verdict that names
what is wrong, never a hang, an unbounded allocation or a traceback:

1. `TraceLog.stored` read the log in windows of 4096 indices up to the largest stored index: a
   record moved to index 2**40 made it query 2**28 empty windows before the verifier saw it
   (a CPU-bound loop, effectively without end), where a gap closer by is named at once.
2. The stored columns were read with `bytes(value)`: a column SQLite holds as TEXT raised
   TypeError (a crash), one it holds as an INTEGER n made `bytes(n)`, n zero bytes (2**40: a
   terabyte asked for).
3. The stored histories, attestations, chains and checkpoints (`log_material`) the same: an
   identifier that is not 32 bytes raised ValueError.

Was a strict xfail until `troth.trace.stored.stored_bytes`/`stored_identifier` (a value of
another type is TraceError MALFORMED, located) and `TraceLog.stored` reading on from the last
index it returned (one query per chunk of rows, whatever the gaps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog
from troth.trace.verify import verify_log

F = TraceFailure


class TooManyReads(Exception):
    """More reads of the log than its rows can need (the verifier does not stop)."""


@pytest.fixture
def log(tmp_path: Path) -> Iterator[TraceLog]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    rec = recorder(log, Held(), clock)
    for _ in range(3):
        rec.record(tool_call())
    yield log
    log.close()


def _bounded(log: TraceLog, monkeypatch: pytest.MonkeyPatch, reads: int = 100) -> None:
    """Count the log's reads: past `reads` (three records need a handful), stop the verifier
    with TooManyReads rather than let it loop."""
    count = 0
    fetch_all: Callable[..., Any] = log.store.fetch_all

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        if count > reads:
            raise TooManyReads(f"{count} reads of a log of 3 records")
        return fetch_all(*args, **kwargs)

    monkeypatch.setattr(log.store, "fetch_all", counted)


def _edit(log: TraceLog, sql: str, *params: Any) -> None:
    conn = db(log)
    conn.execute(sql, params)
    conn.close()


def _failure(log: TraceLog) -> TraceError:
    with pytest.raises(TraceError) as caught:
        verify_log(log)
    return caught.value


def test_a_record_moved_far_away_is_named_at_once(
    log: TraceLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit(log, "UPDATE leaves SET idx = ? WHERE idx = 2", 2**40)
    _bounded(log, monkeypatch)
    failure = _failure(log)
    assert (failure.reason, failure.index) == (F.MALFORMED, 2**40)
    assert "expected record 2 next" in failure.detail


@pytest.mark.parametrize(
    ("column", "sql"),
    [
        ("envelope", "UPDATE leaves SET envelope = CAST(envelope AS TEXT) WHERE idx = 1"),
        ("leaf", "UPDATE leaves SET leaf = CAST(leaf AS TEXT) WHERE idx = 1"),
        ("disclosures", "UPDATE leaves SET disclosures = CAST(disclosures AS TEXT) WHERE idx = 1"),
    ],
)
def test_a_column_stored_as_text_is_named(log: TraceLog, column: str, sql: str) -> None:
    _edit(log, sql)
    failure = _failure(log)
    assert (failure.reason, failure.index) == (F.MALFORMED, 1)
    assert f"the stored {column} is not bytes" in failure.detail


def test_a_column_stored_as_a_number_is_named_not_allocated(log: TraceLog) -> None:
    _edit(log, "UPDATE leaves SET envelope = ? WHERE idx = 1", 2**20)  # 2**40 would allocate
    failure = _failure(log)
    assert (failure.reason, failure.index) == (F.MALFORMED, 1)
    assert "the stored envelope is not bytes" in failure.detail


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("UPDATE histories SET identifier = x'01'", "the stored history identifier"),
        ("UPDATE meta SET value = x'0102' WHERE name = 'log_identity'", "the stored log identity"),
    ],
)
def test_a_malformed_identifier_row_is_named(log: TraceLog, sql: str, named: str) -> None:
    _edit(log, sql)
    failure = _failure(log)
    assert failure.reason is F.MALFORMED
    assert named in failure.detail


@pytest.mark.parametrize(
    ("column", "sql"),
    [
        ("attestation", "UPDATE attestations SET attestation = CAST(attestation AS TEXT)"),
        ("history", "UPDATE histories SET history = CAST(history AS TEXT)"),
        ("note", "UPDATE checkpoints SET note = CAST(note AS TEXT)"),
    ],
)
def test_a_material_row_stored_as_text_is_named(log: TraceLog, column: str, sql: str) -> None:
    log.checkpoint()
    _edit(log, sql)
    failure = _failure(log)
    assert failure.reason is F.MALFORMED
    assert f"the stored {column} is not bytes" in failure.detail
