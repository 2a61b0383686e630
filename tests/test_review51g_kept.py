"""Review 51g, kept 1: a damaged kept checkpoint (`troth trace verify --checkpoint FILE`: a
truncated write, a file of something else) was blamed on what it was checked against:
`verify --file EXPORT` answered `checkpoint invalid (line 1: not a signed note ...)`, naming
the export's first line as the bad one, when every line was sound; `verify` of the log itself
said `checkpoint invalid (not a signed note ...)`, which reads as the log's own checkpoints
damaged. The kept checkpoint is read first and its faults say so (`the kept checkpoint: ...`),
naming no record or line of the log or export; so does a kept note of another log, or one the
log's keys did not sign.
"""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog
from troth.trace.export import export_jsonl, prove, verify_bundle, verify_export
from troth.trace.verify import verify_log

_GARBAGE = b"garbage\n"


def _log(tmp_path: Path, name: str = "trace.db") -> tuple[TraceLog, str]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / name, clock)
    receipt = recorder(log, Held(), clock).record(tool_call())
    recorder(log, Held(), clock).record(tool_call())
    return log, receipt.record


def _kept_fault(call: Callable[[], object]) -> TraceError:
    with pytest.raises(TraceError) as caught:
        call()
    fault = caught.value
    assert fault.reason is TraceFailure.CHECKPOINT_INVALID, fault
    assert (fault.index, fault.record) == (None, None), fault
    assert "line 1" not in str(fault), fault
    assert fault.detail.startswith("the kept checkpoint: "), fault
    return fault


def test_a_damaged_kept_checkpoint_is_named_not_the_export(tmp_path: Path) -> None:
    log, _ = _log(tmp_path)
    out = StringIO()
    export_jsonl(log, out)
    lines = out.getvalue().encode().splitlines()
    assert verify_export(lines).records == 2  # every line sound
    _kept_fault(lambda: verify_export(lines, anchor=_GARBAGE))
    _kept_fault(lambda: verify_bundle(lines[0], anchor=_GARBAGE))
    _kept_fault(lambda: verify_log(log, anchor=_GARBAGE))
    log.close()


def test_a_kept_checkpoint_of_another_log_is_named(tmp_path: Path) -> None:
    ours, _ = _log(tmp_path)
    theirs, _ = _log(tmp_path, "theirs.db")
    ours.checkpoint()
    kept = theirs.checkpoint().note
    fault = _kept_fault(lambda: verify_log(ours, anchor=kept))
    assert "is not the log" in fault.detail
    ours.close()
    theirs.close()


def test_a_sound_kept_checkpoint_still_anchors(tmp_path: Path) -> None:
    log, record_id = _log(tmp_path)
    kept = log.checkpoint().note
    assert verify_log(log, anchor=kept).status.value == "valid"
    bundle = prove(log, record_id)
    assert verify_bundle(bundle, anchor=kept).status.value == "valid"
    log.close()
