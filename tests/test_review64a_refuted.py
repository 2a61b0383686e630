"""Review 64a: attacks on the MCP gate's own threads (troth.integrations.mcp.worker, the fix of
review 63x2, exit 3: the gate judged and recorded on anyio's worker threads, not daemons, which
a cancelled caller waited for) that did not work. Each test would fail if the defence it names
broke.

- A call cancelled while its record is being written leaves (after MCP_GATE_GRACE_SECONDS,
  its recorder stuck), and the call recorded allowed is recorded refused after it (never
  forwarded): no acknowledged record lost, the order "decide, record, then call" kept; with a
  recorder that answers, the cancelled call ends with both records written.
- A call whose decision ended as its caller was cancelled (the result not taken) is recorded
  refused after its allowed record too.
- A call cancelled while it waits for a thread is never decided nor recorded.
- A refusal's recorder that never returns holds no cancelled call.
- The gate closed with calls in flight: those waiting for a thread are answered with the gate's
  error, never decided; new ones refused; the refusal of a call it allowed still written.
- 10,000 calls against threads stuck in their recorder: at most MAX_MCP_GATE_THREADS threads,
  the queue bounded (past it the gate's error at once); cancelled, what waits is let go.
- Many concurrent calls: each answered and recorded, on at most MAX_MCP_GATE_THREADS threads;
  idle threads end, so gates made and dropped leave none.
- The work's own exception reaches its caller unchanged.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.server import Server

from tests.support.gates import TOOLS, T, make_world
from troth import limits
from troth.clock import FixedClock
from troth.gates import DecisionRecord, ListRecorder
from troth.integrations.mcp.gate import McpGate, McpGateError
from troth.integrations.mcp.worker import GateWorker

GUARD = 10  # seconds: a guard against a hang, never reached when the defence holds


class HeldRecorder(ListRecorder):
    """Records; a record whose number is in `hold` waits for `release` (a trace log whose
    signer does not answer), after setting `entered`."""

    def __init__(self, hold: set[int]) -> None:
        super().__init__()
        self.hold = hold
        self.seen = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def record(self, record: DecisionRecord) -> None:
        with self._lock:
            self.seen += 1
            held = self.seen in self.hold
        if held:
            self.entered.set()
            self.release.wait(GUARD)
        with self._lock:
            super().record(record)


class Upstream:
    """An upstream serving `lookup_order`, each call counted; it answers when `answer` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = anyio.Event()
        self.answer = anyio.Event()
        self.answer.set()

        async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
            tools = [types.Tool(name=n, input_schema=TOOLS[n]) for n in ("lookup_order", "refund")]
            return types.ListToolsResult(tools=tools)

        async def on_call_tool(ctx: Any, params: Any) -> types.CallToolResult:
            self.calls += 1
            self.started.set()
            await self.answer.wait()
            return types.CallToolResult(content=[types.TextContent(type="text", text="o1")])

        self.server = Server("orders", on_list_tools=on_list_tools, on_call_tool=on_call_tool)


def outcomes(recorder: ListRecorder) -> list[str]:
    return [r.decision.outcome.value for r in recorder.records]


async def until(done: Callable[[], bool]) -> None:
    """Wait (at most GUARD seconds) until `done()`."""
    with anyio.fail_after(GUARD):
        while not done():
            await anyio.sleep(0.005)


def gate_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "troth-mcp-gate")


def run_gate(recorder: ListRecorder, body: Callable[[McpGate, Any, Upstream], Any]) -> None:
    async def main() -> None:
        world = make_world()
        point = world.point(world.store(world.bundle()), recorder)
        caller = world.credential(world.support_chain, world.support)
        upstream = Upstream()
        async with Client(upstream.server, cache=None) as client:
            gate = McpGate(point, client, clock=FixedClock(T + 10))
            await gate.list_tools(caller)  # listed: no listing inside the calls
            await body(gate, caller, upstream)

    anyio.run(main)


def test_a_call_cancelled_mid_record_leaves_and_is_refused_after_its_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "MCP_GATE_GRACE_SECONDS", 0.05)  # then it leaves
    recorder = HeldRecorder({1})

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        with anyio.fail_after(GUARD):  # (on anyio's threads: waited for the recorder)
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(gate.call_tool, caller, "lookup_order", {"order_id": "o1"})
                    await anyio.to_thread.run_sync(recorder.entered.wait, GUARD)
                    scope.cancel()
        assert scope.cancelled_caught
        assert not recorder.release.is_set()
        assert recorder.records == []  # still being written when the caller left
        recorder.release.set()
        await until(lambda: len(recorder.records) == 2)
        assert outcomes(recorder) == ["allowed", "unanswered"]
        assert "not forwarded" in recorder.records[1].decision.reason
        assert recorder.records[1].request == recorder.records[0].request
        assert upstream.calls == 0  # decided, recorded, never called

    run_gate(recorder, body)


def test_a_call_cancelled_mid_record_ends_with_its_records_written() -> None:
    """The recorder answers once the call is cancelled: when the cancelled call has ended, its
    allowed record and its refusal are both written (the session's end finds them)."""
    recorder = HeldRecorder({1})
    cancelled = threading.Event()

    def release_once_cancelled() -> None:
        cancelled.wait(GUARD)
        recorder.release.set()

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        threading.Thread(target=release_once_cancelled, daemon=True).start()
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(gate.call_tool, caller, "lookup_order", {"order_id": "o1"})
                await anyio.to_thread.run_sync(recorder.entered.wait, GUARD)
                scope.cancel()
                cancelled.set()
        assert outcomes(recorder) == ["allowed", "unanswered"]
        assert upstream.calls == 0

    run_gate(recorder, body)


def test_a_refusal_whose_recorder_never_returns_holds_no_cancelled_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "MCP_GATE_GRACE_SECONDS", 0.05)
    recorder = HeldRecorder({2})  # the allowed record written, its refusal's stuck

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        upstream.answer = anyio.Event()  # the upstream holds the call
        with anyio.fail_after(GUARD):
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(gate.call_tool, caller, "lookup_order", {"order_id": "o1"})
                    await upstream.started.wait()
                    scope.cancel()
        assert scope.cancelled_caught
        await anyio.to_thread.run_sync(recorder.entered.wait, GUARD)
        assert outcomes(recorder) == ["allowed"]
        assert not recorder.release.is_set()
        recorder.release.set()
        await until(lambda: len(recorder.records) == 2)
        assert outcomes(recorder) == ["allowed", "unanswered"]

    run_gate(recorder, body)


def test_a_decision_whose_caller_left_as_it_ended_is_followed_by_its_refusal() -> None:
    """The work ended (its result set) and the caller cancelled before taking it: the
    follow-up runs with that result (the gate's: the allowed call recorded refused)."""
    worker = GateWorker()
    followed: list[str] = []

    async def main() -> None:
        decided = threading.Event()

        def work() -> str:
            decided.set()
            return "allowed"

        task = asyncio.ensure_future(worker.run(work, left=followed.append))
        await asyncio.sleep(0)  # submitted
        # the loop held: the result comes while nobody can take it
        decided.wait(GUARD)
        for _ in range(1000):
            if worker._idle:  # its thread idle again: the result is its caller's to take
                break
            threading.Event().wait(0.002)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: worker.busy() == 0 and followed != [])

    asyncio.run(main())
    assert followed == ["allowed"]


def test_a_call_cancelled_while_it_waits_for_a_thread_is_never_decided() -> None:
    recorder = HeldRecorder(set(range(1, limits.MAX_MCP_GATE_THREADS + 1)))

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        args = {"order_id": "o1"}
        async with anyio.create_task_group() as stuck:
            for _ in range(limits.MAX_MCP_GATE_THREADS):
                stuck.start_soon(gate.call_tool, caller, "lookup_order", args)
            await until(lambda: recorder.seen == limits.MAX_MCP_GATE_THREADS)
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as waiting:
                    waiting.start_soon(gate.call_tool, caller, "refund", args)
                    await anyio.sleep(0.01)
                    scope.cancel()
            recorder.release.set()
        await until(lambda: len(recorder.records) == limits.MAX_MCP_GATE_THREADS)
        assert recorder.seen == limits.MAX_MCP_GATE_THREADS  # the refund never judged
        assert {getattr(r.request, "tool", "") for r in recorder.records} == {"lookup_order"}

    run_gate(recorder, body)


def test_a_gate_closed_with_calls_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closed: calls waiting for a thread answered with the gate's error (never decided), new
    ones refused; those under way written; a call it allowed, then cancelled, still recorded
    refused (kept work)."""
    monkeypatch.setattr(limits, "MCP_GATE_DRAIN_SECONDS", 0.05)
    most = limits.MAX_MCP_GATE_THREADS
    recorder = HeldRecorder(set(range(2, most + 2)))  # the first call's allowed record passes
    errors: list[BaseException] = []

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        args = {"order_id": "o1"}
        upstream.answer = anyio.Event()

        async def call(tool: str) -> None:
            try:
                await gate.call_tool(caller, tool, args)
            except McpGateError as exc:
                errors.append(exc)

        first = anyio.CancelScope()

        async def first_call() -> None:
            with first:
                await call("lookup_order")

        async with anyio.create_task_group() as group:
            group.start_soon(first_call)
            await upstream.started.wait()  # allowed, recorded, at the upstream
            for _ in range(most):  # every thread stuck in a record
                group.start_soon(call, "refund")
            await until(lambda: recorder.seen == most + 1)
            group.start_soon(call, "refund")  # waits for a thread
            await anyio.sleep(0.01)
            assert not await gate.close()  # records under way: not all written
            assert len(errors) == 1
            assert "closed" in str(errors[0])
            await call("refund")  # a new one: refused
            assert len(errors) == 2
            first.cancel()  # the call at the upstream cancelled: its refusal kept
            await anyio.sleep(0.01)
            upstream.answer.set()
            recorder.release.set()
        await until(lambda: len(recorder.records) == most + 2)
        assert recorder.seen == most + 2  # the refused calls never judged
        assert outcomes(recorder)[0] == "allowed"
        refused = [r for r in recorder.records if r.decision.outcome.value == "unanswered"]
        assert len(refused) == 1
        assert getattr(refused[0].request, "tool", "") == "lookup_order"

    run_gate(recorder, body)


def test_ten_thousand_calls_on_stuck_threads_are_bounded() -> None:
    worker = GateWorker(threads=2, queued=16)
    release = threading.Event()
    refused: list[McpGateError] = []

    async def call() -> None:
        try:
            await worker.run(lambda: release.wait(GUARD))
        except McpGateError as exc:
            refused.append(exc)

    async def main() -> None:
        calls = [asyncio.ensure_future(call()) for _ in range(10_000)]
        await until(lambda: len(refused) == 10_000 - 18)
        assert (worker.busy(), worker.threads()) == (18, 2)
        for task in calls:  # every caller gone: the queued let go
            task.cancel()
        await asyncio.wait(calls)
        assert (worker.busy(), worker.threads()) == (2, 2)
        release.set()
        await until(lambda: worker.busy() == 0)

    asyncio.run(main())
    assert "16 calls wait to be decided" in str(refused[0])
    worker.close()


def test_many_concurrent_calls_each_answered_and_recorded_on_few_threads() -> None:
    recorder = HeldRecorder(set())
    answers: list[Any] = []
    most: list[int] = []
    before = gate_threads()  # other gates' idle threads, ending on their own

    async def body(gate: McpGate, caller: Any, upstream: Upstream) -> None:
        async def call(i: int) -> None:
            tool, args = (
                ("refund", {"order_id": "o1", "amount": i})
                if i % 2
                else (
                    "lookup_order",
                    {"order_id": f"o{i}"},
                )
            )
            answers.append(await gate.call_tool(caller, tool, args))
            most.append(gate_threads())

        async with anyio.create_task_group() as group:
            for i in range(300):
                group.start_soon(call, i)
        assert await gate.close()

    run_gate(recorder, body)
    assert len(answers) == len(recorder.records) == 300
    assert max(most) <= before + limits.MAX_MCP_GATE_THREADS


def test_idle_threads_end_and_a_closed_worker_keeps_none() -> None:
    async def main() -> None:
        idle = GateWorker(idle=0.01)
        assert await idle.run(lambda: 1) == 1
        await until(lambda: idle.threads() == 0)  # ended on its own
        closed = GateWorker()
        assert await closed.run(lambda: 2) == 2
        assert await closed.drain(1.0)
        await until(lambda: closed.threads() == 0)
        with pytest.raises(McpGateError, match="the gate is closed"):
            await closed.run(lambda: 3)
        assert await closed.run(lambda: 4, keep=True) == 4  # kept work: run once closed too

    anyio.run(main)


def test_the_works_own_exception_reaches_its_caller() -> None:
    def fails() -> None:
        raise KeyError("the recorder's own")

    async def main() -> None:
        worker = GateWorker()
        with pytest.raises(KeyError, match="the recorder's own"):
            await worker.run(fails)
        worker.close()

    anyio.run(main)
