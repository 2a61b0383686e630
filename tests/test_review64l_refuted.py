"""Review 64l: attacks on the MCP gate's own threads (troth.integrations.mcp.worker, review
64a) that did not work. Each test would fail if the defence it names broke.

- A call allowed whose record fails (StorageError) is never forwarded: answered with the
  gate's error (deny when in doubt), the recorder's text not echoed.
- Concurrent calls, allowed and denied: each recorded exactly once, every forwarded call
  after its allowed record (decided, recorded, then forwarded).
- A call's task group cancelled by a failing sibling as the call's record is written: the
  call recorded allowed, then refused after it, never forwarded.
- A call in a shielded scope whose outer scope is cancelled: decided, recorded once and
  forwarded as any other (the worker's wait is not cut by a cancellation it is shielded from).
- A call refused because the queue is full is never decided, recorded nor forwarded; and the
  queue's bound is one a published server's sessions cannot reach (MAX_MCP_SESSIONS x
  MAX_MCP_CALLS_PER_SESSION), so one member filling its sessions refuses no other member's call.
- Idle threads ending (an idle time of 0) as calls are submitted: every call taken by a thread
  (none queued with no thread to take it).
- A BaseException (not an Exception) raised by the work reaches its caller; the thread stays
  counted and the worker serves the next call.
"""

from __future__ import annotations

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
from troth import limits
from troth.errors import StorageError
from troth.gates import DecisionRecord, ListRecorder
from troth.integrations.mcp.gate import McpGate, McpGateError
from troth.integrations.mcp.worker import GateWorker

ARGS = {"order_id": "o1"}


class FailingAllowed(ListRecorder):
    """A recorder whose storage fails every allowed record."""

    def record(self, record: DecisionRecord) -> None:
        if record.decision.allowed:
            raise StorageError("disk full at /secret/path")
        super().record(record)


def test_an_allowed_call_whose_record_fails_is_not_forwarded() -> None:
    recorder = FailingAllowed()

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        with pytest.raises(McpGateError) as raised:
            await gate.call_tool(caller, "lookup_order", ARGS)
        assert "/secret/path" not in str(raised.value)
        assert upstream.calls == 0
        assert recorder.records == []

    run_gate(recorder, body)


class Ordered(ListRecorder):
    """Counts the allowed records, so the upstream can check each call came after its own."""

    def __init__(self) -> None:
        super().__init__()
        self.allowed = 0

    def record(self, record: DecisionRecord) -> None:
        super().record(record)
        if record.decision.allowed:
            self.allowed += 1


def test_concurrent_calls_each_recorded_once_before_forwarded() -> None:
    recorder = Ordered()
    seen: list[bool] = []

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:

        original = gate.upstream.call_tool

        async def checked(name: str, arguments: dict[str, Any] | None = None) -> Any:
            seen.append(recorder.allowed > upstream.calls)  # its record is already written
            return await original(name, arguments)

        gate.upstream = _Proxy(gate.upstream, checked)

        async def call(tool: str) -> None:
            result = await gate.call_tool(caller, tool, ARGS)
            assert result.is_error == (tool == "refund")

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as group:
                for i in range(40):
                    group.start_soon(call, "refund" if i % 3 == 0 else "lookup_order")
        assert len(recorder.records) == 40
        assert outcomes(recorder).count("allowed") == upstream.calls == len(seen) == 26
        assert all(seen)

    run_gate(recorder, body)


class _Proxy:
    """The upstream client with its `call_tool` replaced."""

    def __init__(self, inner: Any, call_tool: Any) -> None:
        self._inner = inner
        self.call_tool = call_tool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Sibling(Exception):
    pass


def test_a_call_cancelled_by_a_failing_sibling_mid_record_is_refused_after_it() -> None:
    recorder = HeldRecorder({1})

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        async def sibling() -> None:
            await anyio.to_thread.run_sync(recorder.entered.wait, GUARD)
            recorder.release.set()  # the record ends as the group is cancelled
            raise _Sibling

        with anyio.fail_after(GUARD), pytest.raises(BaseExceptionGroup) as raised:
            async with anyio.create_task_group() as group:
                group.start_soon(gate.call_tool, caller, "lookup_order", ARGS)
                group.start_soon(sibling)
        assert raised.group_contains(_Sibling)
        await until(lambda: len(recorder.records) == 2)
        assert outcomes(recorder) == ["allowed", "unanswered"]
        assert upstream.calls == 0

    run_gate(recorder, body)


def test_a_shielded_call_in_a_cancelled_scope_is_decided_and_forwarded_once() -> None:
    recorder = HeldRecorder({1})

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        answers: list[Any] = []

        async def shielded() -> None:
            with anyio.CancelScope(shield=True):
                answers.append(await gate.call_tool(caller, "lookup_order", ARGS))

        with anyio.fail_after(GUARD):
            with anyio.CancelScope() as outer:
                async with anyio.create_task_group() as group:
                    group.start_soon(shielded)
                    await anyio.to_thread.run_sync(recorder.entered.wait, GUARD)
                    outer.cancel()
                    recorder.release.set()
        assert len(answers) == 1
        assert not answers[0].is_error
        assert outcomes(recorder) == ["allowed"]
        assert upstream.calls == 1

    run_gate(recorder, body)


def test_a_call_refused_by_a_full_queue_is_never_decided_nor_forwarded() -> None:
    # one member's sessions cannot fill it: every published server's calls fit in it
    assert limits.MAX_MCP_GATE_QUEUE >= limits.MAX_MCP_SESSIONS * limits.MAX_MCP_CALLS_PER_SESSION
    recorder = HeldRecorder(set(range(1, limits.MAX_MCP_GATE_THREADS + 1)))

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        gate._worker.queued = 2
        most = limits.MAX_MCP_GATE_THREADS
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as group:
                for _ in range(most + 2):  # the threads stuck, then the queue full
                    group.start_soon(gate.call_tool, caller, "lookup_order", ARGS)
                await until(lambda: recorder.seen == most and gate._worker.busy() == most + 2)
                with pytest.raises(McpGateError, match="wait to be decided"):
                    await gate.call_tool(caller, "lookup_order", ARGS)
                recorder.release.set()
        assert recorder.seen == most + 2  # the refused call never judged
        assert upstream.calls == most + 2

    run_gate(recorder, body)


def test_idle_threads_ending_as_calls_come_leave_none_unserved() -> None:
    async def main() -> None:
        worker = GateWorker(threads=2, idle=0.0)
        with anyio.fail_after(GUARD):
            for i in range(200):
                assert await worker.run(lambda i=i: i) == i  # type: ignore[misc]
            got: list[int] = []

            async def one(i: int) -> None:
                got.append(await worker.run(lambda: i))

            async with anyio.create_task_group() as group:
                for i in range(100):
                    group.start_soon(one, i)
            assert sorted(got) == list(range(100))
            await until(lambda: worker.threads() == 0 and worker.busy() == 0)
        worker.close()

    anyio.run(main)


class _Stop(BaseException):
    pass


def test_a_base_exception_of_the_work_reaches_its_caller_and_keeps_the_thread() -> None:
    def stop() -> None:
        raise _Stop

    async def main() -> None:
        worker = GateWorker(threads=1, idle=GUARD)
        with anyio.fail_after(GUARD):
            with pytest.raises(_Stop):
                await worker.run(stop)
            assert worker.threads() == 1
            assert worker.busy() == 0
            assert await worker.run(lambda: 3) == 3
        worker.close()

    anyio.run(main)
