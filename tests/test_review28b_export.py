"""Review 28b, export 1: a crafted log file makes `troth trace export` and `troth trace prove`
crash with a KeyError where `troth trace verify` names what is missing.

Review 27t (verify 1-3) made the verifier read every stored column by type and name a crafted
row; the proof bundles (`troth.trace.export._Bundler`, behind `export_jsonl`, `prove` and the
trace service's `prove`) still look the signer's history, the log's own history and the
signing-key attestation up by `dict[...]`: a log whose `histories` or `attestations` row was
deleted (whoever can write `<node>/trace.db`, or a disk) raised KeyError, a traceback at the
CLI (which reports TrothError, ValueError and OSError) and an unexplained failure at the
service. The verifier refuses the same log as `no change history for the signer` / `signing
key not in the bundle`.

Was a strict xfail until `_Bundler` raised TraceError (MISSING_HISTORY, UNKNOWN_KEY) naming the
missing row, located at its record, as `verify_log` does (`_Bundler._signer`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import NOW, Held, db, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog
from troth.trace.export import export_jsonl, prove
from troth.trace.verify import verify_log

F = TraceFailure


@pytest.fixture
def log(tmp_path: Path) -> Iterator[tuple[TraceLog, str]]:
    """A log of two records of one agent and a checkpoint; the first record's id."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    rec = recorder(log, Held(), clock)
    first = rec.record(tool_call()).record
    rec.record(tool_call())
    log.checkpoint()
    yield log, first
    log.close()


def _edit(log: TraceLog, sql: str) -> None:
    conn = db(log)
    conn.execute(sql)
    conn.close()


_AGENT_ROWS = (  # every signer's but the log's own (the checkpoint's)
    "DELETE FROM histories WHERE identifier != "
    "(SELECT CAST(value AS BLOB) FROM meta WHERE name = 'log_identity')"
)
_LOG_ROW = (
    "DELETE FROM histories WHERE identifier = "
    "(SELECT CAST(value AS BLOB) FROM meta WHERE name = 'log_identity')"
)
_KEY_ROWS = (
    "DELETE FROM attestations WHERE identifier != "
    "(SELECT CAST(value AS BLOB) FROM meta WHERE name = 'log_identity')"
)


def _bundles(log: TraceLog, first: str) -> dict[str, Callable[[], Any]]:
    return {
        "export": lambda: export_jsonl(log, io.StringIO()),
        "prove": lambda: prove(log, first),
    }


@pytest.mark.parametrize("made", ["export", "prove"])
@pytest.mark.parametrize(
    ("sql", "reason"),
    [(_AGENT_ROWS, F.MISSING_HISTORY), (_LOG_ROW, F.MISSING_HISTORY), (_KEY_ROWS, F.UNKNOWN_KEY)],
    ids=["signer-history", "log-history", "attestation"],
)
def test_a_missing_row_is_named_not_a_key_error(
    log: tuple[TraceLog, str], made: str, sql: str, reason: TraceFailure
) -> None:
    trace_log, first = log
    _edit(trace_log, sql)
    with pytest.raises(TraceError):  # the verifier refuses it too
        verify_log(trace_log)
    with pytest.raises(TraceError) as caught:
        _bundles(trace_log, first)[made]()
    assert caught.value.reason is reason
    if sql != _LOG_ROW:  # a signer's row: named at the record bundled first
        assert (caught.value.index, caught.value.record) == (0, first)


@pytest.mark.parametrize(
    "sql",
    ["DELETE FROM leaves WHERE idx = 0", "UPDATE leaves SET idx = -5 WHERE idx = 0"],
    ids=["deleted", "negative"],
)
def test_a_gap_before_the_first_record_is_named_at_export(
    log: tuple[TraceLog, str], sql: str
) -> None:
    """Export 2: the first record deleted (its index left empty) or moved to index -5: the log
    still reads as two records (its size, its last index), and `verify_log` names record 1 as
    `expected record 0 next`; `export_jsonl` built the tree of the records it read (one) and
    asked it for the root of the checkpoint's two, an IndexError.

    Was a strict xfail until `export_jsonl` read the records it proves as `verify_log` does,
    each at the next index (MALFORMED `expected record N next` at the one out of place)."""
    trace_log, _first = log
    _edit(trace_log, sql)
    with pytest.raises(TraceError) as verified:
        verify_log(trace_log)
    assert (verified.value.reason, verified.value.index) == (F.MALFORMED, 1)
    with pytest.raises(TraceError) as caught:
        export_jsonl(trace_log, io.StringIO())
    assert (caught.value.reason, caught.value.index) == (F.MALFORMED, 1)
    assert caught.value.detail == verified.value.detail == "expected record 0 next"
