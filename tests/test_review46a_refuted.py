"""Review 46a, trace collection: attacks that failed (the code holds), kept as tests.

1. A proof bundle handed to an operator with absurd numbers (an index past 2^64, a negative
   one), more proof hashes than MAX_TRACE_PROOF_HASHES, hashes of 100,000 bytes, a record or a
   disclosure nested past MAX_JSON_DEPTH, a checkpoint note of 100 KB: each is refused with a
   TraceError naming it (what `troth trace verify --file` reports, exit 1), never a crash or a
   RecursionError.
2. An export whose middle line is 100,000 brackets deep: refused at that line (MALFORMED),
   the lines before it verified, nothing recursed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace.export import bundle_text, prove, verify_bundle, verify_export

F = TraceFailure
_DEEP = "[" * 100_000 + "]" * 100_000


def _bundles(tmp_path: Path) -> list[dict[str, Any]]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    sink = recorder(log, Held(), clock)
    receipts = [sink.record(tool_call()) for _ in range(3)]
    return [prove(log, receipt.record) for receipt in receipts]


def _changed(name: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(bundle: dict[str, Any]) -> dict[str, Any]:
        return {**bundle, name: value(bundle) if callable(value) else value}

    return change


CHANGES: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], TraceFailure]] = {
    "index past 2^64": (_changed("index", 2**64), F.MALFORMED),
    "negative index": (_changed("index", -1), F.PROOF_INVALID),
    "65 proof hashes": (_changed("proof", ["00" * 32] * 65), F.MALFORMED),
    "huge proof hashes": (_changed("proof", ["00" * 100_000] * 10), F.PROOF_INVALID),
    "nested record": (_changed("record", json.loads("[" * 30 + "]" * 30)), F.MALFORMED),
    "nested disclosure": (
        _changed(
            "disclosures", {"args": {"salt": "00" * 16, "value": json.loads("[" * 40 + "]" * 40)}}
        ),
        F.MALFORMED,
    ),
    "huge checkpoint": (
        _changed("checkpoint", lambda b: b["checkpoint"] + "x" * 100_000),
        F.OVER_LIMIT,  # the note is over MAX_TRACE_CHECKPOINT_BYTES
    ),
}


@pytest.mark.parametrize("attack", sorted(CHANGES))
def test_an_absurd_proof_bundle_is_refused_by_name(tmp_path: Path, attack: str) -> None:
    """Refuted 1."""
    (bundle, *_) = _bundles(tmp_path)
    assert verify_bundle(bundle_text(bundle).encode()).index == 0
    change, reason = CHANGES[attack]
    with pytest.raises(TraceError) as refused:
        verify_bundle(json.dumps(change(bundle)).encode())
    assert refused.value.reason is reason


def test_an_export_with_a_line_nested_past_the_limit_is_refused_at_it(tmp_path: Path) -> None:
    """Refuted 2."""
    lines = [bundle_text(bundle).encode() for bundle in _bundles(tmp_path)]
    assert verify_export(iter(lines)).records == 3
    with pytest.raises(TraceError) as refused:
        verify_export(iter([lines[0], _DEEP.encode(), lines[2]]))
    assert refused.value.reason is F.MALFORMED
    assert "nested deeper" in str(refused.value)
