"""Review 55e: attacks on offline trace verification, export and the OTel bridge that did not
work (each a real attempt, which fails if the defence breaks)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace.export import bundle_text, export_jsonl, verify_export
from troth.trace.export_memo import Memo


def _bundles(tmp_path: Path, records: int = 5) -> list[dict[str, Any]]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent = recorder(log, Held(), clock)
    for _ in range(records):
        agent.record(tool_call())
    out = io.StringIO()
    export_jsonl(log, out)
    log.close()
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _refused(bundles: list[dict[str, Any]]) -> TraceError:
    with pytest.raises(TraceError) as refused:
        verify_export([bundle_text(b).encode() for b in bundles])
    return refused.value


def test_a_later_line_s_forged_signature_is_refused_though_its_signer_was_verified(
    tmp_path: Path,
) -> None:
    """Review 55e, exports 1's memo keeps the signer's history and key, never a record's
    signature: a line after good lines of the same signer, its signature's first byte
    changed, is refused at its index."""
    bundles = _bundles(tmp_path)
    envelope = bundles[3]["envelope"]
    at = envelope.index('"sig":"') + len('"sig":"')
    first = envelope[at]
    bundles[3]["envelope"] = envelope[:at] + ("B" if first != "B" else "C") + envelope[at + 1 :]
    fault = _refused(bundles)
    assert (fault.reason, fault.index) == (TraceFailure.BAD_SIGNATURE, 3)


def test_a_later_line_without_the_log_s_attestation_is_refused_though_its_note_was_verified(
    tmp_path: Path,
) -> None:
    """The checkpoint is kept by its note with the log's history and attestations: a line
    carrying the same note without the log key's attestation is judged again, and refused."""
    bundles = _bundles(tmp_path)
    bundles[2]["log"] = {**bundles[2]["log"], "attestations": []}
    fault = _refused(bundles)
    assert (fault.reason, fault.index) == (TraceFailure.CHECKPOINT_INVALID, 2)


def test_the_export_memo_forgets_the_least_recently_used() -> None:
    memo: Memo[int, str] = Memo(2)
    memo.put(1, "one")
    memo.put(2, "two")
    assert memo.get(1) == "one"  # 2 is now the least recently used
    memo.put(3, "three")
    assert (memo.get(2), memo.get(1), memo.get(3), len(memo)) == (None, "one", "three", 2)
