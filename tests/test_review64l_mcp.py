"""Review 64l: findings against the MCP gate's own threads (troth.integrations.mcp.worker,
review 64a), each with its fix.

- mcp 1: a call allowed while the gate was being closed was forwarded to the upstream after
  `McpGate.close` returned (which says the gate decides no more calls, and after which the
  trace log is closed): its decision ended on the gate's thread during the drain, the drain
  ended with it, and the call went on to the upstream, where its answer, or its `unanswered`
  record, came after the close (a record into a closed trace log: the call left recorded as
  allowed only). A decision handed over once the gate is closed is now answered with the
  gate's error and, allowed, recorded refused after its allowed record (`not forwarded`),
  on the gate's thread, within the drain: the drain waits for each decision's caller to take
  it (or leave it), so no result handed out races the close.
- mcp 2: a follow-up (`left`) of a job its caller left that raised a BaseException (not an
  Exception) ended its thread without counting it ended: the worker believed it still ran, and
  with its MAX_MCP_GATE_THREADS so lost, calls queued for ever with no thread to take them.
  A thread now counts itself ended however it ends.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from tests.test_review64a_refuted import (
    GUARD,
    HeldRecorder,
    Upstream,
    outcomes,
    run_gate,
    until,
)
from troth.integrations.mcp.gate import McpGate, McpGateError
from troth.integrations.mcp.worker import GateWorker


def test_mcp_1_a_call_decided_as_the_gate_closes_is_not_forwarded() -> None:
    recorder = HeldRecorder({1})  # the call's allowed record is being written as it closes
    answers: list[object] = []
    closed: list[bool] = []

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        async def call() -> None:
            try:
                answers.append(await gate.call_tool(caller, "lookup_order", {"order_id": "o1"}))
            except McpGateError as exc:
                answers.append(exc)

        async def close() -> None:
            closed.append(await gate.close())

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as group:
                group.start_soon(call)
                await anyio.to_thread.run_sync(recorder.entered.wait, GUARD)
                group.start_soon(close)
                await until(lambda: gate._worker.closed)
                recorder.release.set()  # the decision ends during the drain
        assert closed == [True]  # its records written within the drain
        assert upstream.calls == 0  # never forwarded after the close
        assert len(answers) == 1
        assert isinstance(answers[0], McpGateError)
        assert "closed" in str(answers[0])
        assert outcomes(recorder) == ["allowed", "unanswered"]
        assert "not forwarded" in recorder.records[1].decision.reason

    run_gate(recorder, body)


def test_mcp_1_a_decision_handed_over_as_the_gate_closes_is_not_forwarded() -> None:
    """The decision ended (its result waiting for its caller's task) before `close`: the
    drain still waits for the caller to take it, which finds the gate closed."""
    recorder = HeldRecorder({1})

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        answers: list[object] = []

        async def call() -> None:
            try:
                answers.append(await gate.call_tool(caller, "lookup_order", {"order_id": "o1"}))
            except McpGateError as exc:
                answers.append(exc)

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as group:
                group.start_soon(call)
                await anyio.to_thread.run_sync(recorder.entered.wait, GUARD)
                recorder.release.set()
                _ended(gate)  # the event loop blocked: its caller cannot take it yet
                gate._worker.close()
                assert await gate.close()
                assert outcomes(recorder) == ["allowed", "unanswered"]  # within the drain
        assert upstream.calls == 0
        assert isinstance(answers[0], McpGateError)

    run_gate(recorder, body)


def _ended(gate: McpGate) -> None:
    """Wait, blocking the event loop, until the gate's decision ended on its thread (which is
    idle again)."""
    deadline = time.monotonic() + GUARD
    while not gate._worker._idle and time.monotonic() < deadline:
        time.sleep(0.001)


class _Stop(BaseException):
    """Not an Exception (as SystemExit or KeyboardInterrupt are not)."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_mcp_2_a_follow_up_raising_a_base_exception_loses_no_thread() -> None:
    async def main() -> None:
        worker = GateWorker(threads=1, idle=GUARD)
        started = anyio.Event()
        release = anyio.Event()
        soon = anyio.lowlevel.current_token()

        def work() -> int:
            anyio.from_thread.run_sync(started.set, token=soon)
            anyio.from_thread.run(release.wait, token=soon)
            return 1

        def left(result: int) -> None:
            raise _Stop

        with anyio.fail_after(GUARD):
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(lambda: worker.run(work, left=left))
                    await started.wait()
                    scope.cancel()
            release.set()
            await until(lambda: worker.busy() == 0)
            assert await worker.run(lambda: 2) == 2  # a thread takes it
        worker.close()

    anyio.run(main)
