"""Review 55b, service 1 and 2: what a member's submission costs the node's storage thread.

1. The collector verified a submission's signer history, every change (up to 64 changes: 127
   signatures, ~10-40 ms here), before it compared the history's identity with the member
   that sent it: a member sent another identity's long history (a throwaway identity rotated
   63 times, minted once) again and again, each refused "a member submits only the records it
   signs" only after the work, on the node's one storage thread. The identity is now read
   from the history and compared first: another identity's history costs no signature.
2. A submission is charged TRACE_SUBMIT_CHARGE, about one commit of the log, and as much again
   per history window it carries ("up to 64 signatures to verify": review 47l, windows 1), but
   its signer history, as long as a window, was not charged at all: a member rotated 63 times
   (rotating is free) made each one-record submission cost the storage thread a commit and
   127 signatures for the price of a commit. The history is now charged as the windows are,
   in proportion to its changes (TRACE_SUBMIT_CHARGE for MAX_IDENTITY_CHANGES of them).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.traces import Held
from tests.test_review27t_collect import NOW, _batch, _collector
from tests.test_review46a_traces import _member_context, _service
from troth import limits
from troth.errors import RemoteError, TraceFailure
from troth.identity import history as history_module
from troth.trace.record import Kind, ToolCall
from troth.trace.signing import RecordContent

_CHANGES = 64


def _rotated(changes: int) -> Held:
    """An identity with `changes` changes, every one dated before NOW."""
    held = Held(now=NOW - 10_000)
    for n in range(changes - 1):
        held.rotate(NOW - 5_000 + n)
    return held


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The signatures `verify_history` checks from now on (one entry each)."""
    calls: list[int] = []
    real = getattr(history_module, "verify_signature")  # noqa: B009 - (not re-exported)

    def counted(*args: object) -> None:
        calls.append(1)
        real(*args)

    monkeypatch.setattr(history_module, "verify_signature", counted)
    return calls


def test_another_identitys_history_is_refused_before_any_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, log, collector = _collector(tmp_path)
    throwaway = _rotated(_CHANGES)
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("x"))
    submission = _batch(collector, throwaway.signer(NOW), content)
    calls = _counting(monkeypatch)
    (result,) = collector.submit(submission, submitter=world.support.identifier, now=NOW).results
    assert result.reason is TraceFailure.SIGNER_INVALID
    assert "a member submits only the records it signs" in result.detail
    assert calls == []
    log.close()


def test_a_long_signer_history_is_charged_as_a_window_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    burst = 4 * limits.TRACE_SUBMIT_CHARGE
    monkeypatch.setattr(limits, "TRACE_SUBMIT_BURST_BYTES", burst)
    world, log, collector = _collector(tmp_path)
    service = _service(collector)
    context = _member_context(world, NOW)
    long = _rotated(_CHANGES)
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("x"))
    submission = _batch(collector, long.signer(NOW), content).to_cbor()
    served = 0
    with pytest.raises(RemoteError, match="trace byte rate"):
        for _ in range(4):  # each its own history's work (refused: not the member's own)
            asyncio.run(service.submit(submission, context))
            served += 1
    assert served == 2  # a commit and a window's worth each: 2 x TRACE_SUBMIT_CHARGE
    short = _batch(collector, world.support.signer, content).to_cbor()
    fresh = _service(collector)
    for _ in range(4):  # a one-change history costs (about) the least, as before
        asyncio.run(fresh.submit(short, _member_context(world, NOW + 1)))
    log.close()
