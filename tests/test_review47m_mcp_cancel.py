"""Review 47m, mcp 1: a tools/call the agent cancels (notifications/cancelled) or abandons (its
connection goes away) after the gate allowed it and before the upstream answered is recorded
as not answered after its allowed record (as `DecisionPoint.refuse` records a refused lease):
the trace never leaves a call whose result never came as only allowed. A call the upstream
answered stays recorded as allowed only (it ran), whatever happens to its answer after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server import MCPServer

from tests.support.gates import GatesWorld, T, make_world
from troth.clock import FixedClock
from troth.gates import ListRecorder
from troth.integrations.mcp.gate import McpGate, McpGateError, gate_server


class Blocking:
    """An upstream whose `lookup_order` waits for `release` (after setting `started`)."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.release = anyio.Event()
        self.answered = 0
        self.app = MCPServer("orders")

        @self.app.tool()
        async def lookup_order(order_id: str) -> str:
            """Look up an order."""
            self.started.set()
            await self.release.wait()
            self.answered += 1
            return f"order {order_id}"

        @self.app.tool()
        def refund(order_id: str, amount: int) -> str:
            """Refund part of an order."""
            return f"refunded {amount} on {order_id}"


@asynccontextmanager
async def gate_of(
    world: GatesWorld, upstream: Blocking, recorder: ListRecorder
) -> AsyncIterator[Any]:
    point = world.point(world.store(world.bundle()), recorder)
    async with Client(upstream.app, cache=None) as client:
        yield McpGate(point, client, clock=FixedClock(T + 10))


def outcomes(recorder: ListRecorder) -> list[tuple[str, str]]:
    return [(getattr(r.request, "tool", ""), r.decision.outcome.value) for r in recorder.records]


def test_a_call_the_agent_cancels_is_recorded_as_not_answered() -> None:
    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        recorder, upstream = ListRecorder(), Blocking()
        async with (
            gate_of(world, upstream, recorder) as gate,
            Client(gate_server(gate, support), mode="legacy", cache=None) as agent,
        ):
            async with anyio.create_task_group() as tg:
                tg.start_soon(agent.call_tool, "lookup_order", {"order_id": "o1"})
                await upstream.started.wait()
                tg.cancel_scope.cancel()  # the client sends notifications/cancelled
            with anyio.move_on_after(10):  # the gate records it once the cancel arrives
                while len(recorder.records) < 2:
                    await anyio.sleep(0.01)
            after = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert not after.is_error
        assert upstream.answered == 0
        assert outcomes(recorder) == [
            ("lookup_order", "allowed"),
            ("lookup_order", "unanswered"),
            ("refund", "allowed"),
        ]
        refused = recorder.records[1]
        assert refused.request == recorder.records[0].request
        assert refused.at == recorder.records[0].at
        assert not refused.decision.allowed
        assert "cancelled" in refused.decision.reason

    anyio.run(main)


def test_a_call_whose_agent_goes_away_is_recorded_as_not_answered() -> None:
    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        recorder, upstream = ListRecorder(), Blocking()
        async with gate_of(world, upstream, recorder) as gate:
            server = gate_server(gate, support)
            with anyio.move_on_after(30):
                async with anyio.create_task_group() as tg:

                    async def agent_call() -> None:
                        async with Client(server, mode="legacy", cache=None) as agent:
                            tg.start_soon(agent.call_tool, "lookup_order", {"order_id": "o1"})
                            await upstream.started.wait()
                            tg.cancel_scope.cancel()  # the connection closes mid-call

                    tg.start_soon(agent_call)
            assert upstream.answered == 0
        assert outcomes(recorder) == [
            ("lookup_order", "allowed"),
            ("lookup_order", "unanswered"),
        ]

    anyio.run(main)


def test_a_call_the_upstream_answered_stays_allowed() -> None:
    """The upstream answered: the tool ran, recorded as allowed only (a cancellation of the
    request after it does not make it a call that did not run)."""

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        recorder, upstream = ListRecorder(), Blocking()
        upstream.release.set()
        async with gate_of(world, upstream, recorder) as gate:
            result = await gate.call_tool(support, "lookup_order", {"order_id": "o1"})
            assert not result.is_error
        assert upstream.answered == 1
        assert outcomes(recorder) == [("lookup_order", "allowed")]

    anyio.run(main)


def test_an_upstream_that_fails_is_recorded_as_not_answered() -> None:
    class Broken:
        async def list_tools(self, *, cursor: str | None = None) -> Any:
            raise NotImplementedError

        async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
            raise OSError("the upstream went away")

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        recorder, upstream = ListRecorder(), Blocking()
        async with gate_of(world, upstream, recorder) as gate:
            await gate.list_tools(support)  # listed by the real upstream
            gate.upstream = Broken()
            # the gate's own error, the upstream's text logged only (review 54j, mcp 1)
            with pytest.raises(McpGateError, match=r"the upstream failed the call \(OSError\)"):
                await gate.call_tool(support, "lookup_order", {"order_id": "o1"})
        assert outcomes(recorder) == [
            ("lookup_order", "allowed"),
            ("lookup_order", "unanswered"),
        ]
        assert "OSError" in recorder.records[1].decision.reason

    anyio.run(main)


def test_a_cancellation_after_the_upstream_answered_leaves_the_call_allowed() -> None:
    """The agent's cancellation arrives as the upstream's answer returns: the tool ran, so its
    record stays allowed only (the cancellation lands after the gate's call, which returned)."""

    class AnswerThenCancel:
        def __init__(self, inner: Any, scope: anyio.CancelScope) -> None:
            self.inner, self.scope = inner, scope

        async def list_tools(self, *, cursor: str | None = None) -> Any:
            return await self.inner.list_tools(cursor=cursor)

        async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
            result = await self.inner.call_tool(name, arguments)
            self.scope.cancel()  # no checkpoint before the answer is returned
            return result

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        recorder, upstream = ListRecorder(), Blocking()
        upstream.release.set()
        answers: list[Any] = []
        async with gate_of(world, upstream, recorder) as gate:
            await gate.list_tools(support)
            with anyio.CancelScope() as scope:
                gate.upstream = AnswerThenCancel(gate.upstream, scope)
                answers.append(await gate.call_tool(support, "lookup_order", {"order_id": "o1"}))
                await anyio.sleep(0)  # the cancellation lands here, after the call
            assert scope.cancelled_caught
        assert (upstream.answered, len(answers)) == (1, 1)
        assert outcomes(recorder) == [("lookup_order", "allowed")]

    anyio.run(main)
