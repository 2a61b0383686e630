"""The MCP gate with a real MCP client in process (JSON-RPC framed: mode="legacy"): tools/list
filtered, every tools/call decided, a hidden tool called by name denied, denials that never
echo argument values, upstream schemas checked against the bundle's, a revocation mid-task
denying the next call; and MCP frames refused when malformed or over the limit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import mcp_types as types
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client
from mcp.server import MCPServer

from tests.support.gates import GatesWorld, T, make_world
from tests.support.mcp_orders import names, orders_server, text
from troth import limits
from troth.clock import FixedClock
from troth.credentials import CredentialChain, RevocationKind
from troth.errors import DecodeError, DecodeProblem
from troth.gates import ListRecorder, PresentedChain
from troth.integrations.mcp.channel import frames_of
from troth.integrations.mcp.frames import McpFrame
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server

CANARY = "c4n4ry-7f3e"


@asynccontextmanager
async def gated(
    world: GatesWorld,
    caller: Any,
    *,
    upstream: Any = None,
    recorder: ListRecorder | None = None,
    clock: FixedClock | None = None,
) -> AsyncIterator[Client]:
    point = world.point(world.store(world.bundle()), recorder)
    async with Client(upstream or orders_server(), cache=None) as client:
        gate = McpGate(point, client, clock=clock or FixedClock(T + 10))
        async with Client(gate_server(gate, caller), mode="legacy", cache=None) as agent:
            yield agent


def test_tools_list_is_filtered_and_every_call_decided() -> None:
    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        recorder = ListRecorder()
        async with gated(world, support, recorder=recorder) as agent:
            assert await names(agent) == ["lookup_order", "refund"]
            allowed = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert (allowed.is_error, text(allowed)) == (False, "refunded 20 on o1")
            capped = await agent.call_tool("refund", {"order_id": "o1", "amount": 5000})
            assert capped.is_error
            assert text(capped) == DENIED_PREFIX + "denied by policy refund-cap"
        assert [r.decision.allowed for r in recorder.records] == [True, False]

    anyio.run(main)


def test_a_hidden_tool_called_by_name_is_denied() -> None:
    async def main() -> None:
        world = make_world()
        sub = world.credential(world.sub_chain, world.sub)
        async with gated(world, sub) as agent:
            assert await names(agent) == ["lookup_order"]
            for name, args in (
                ("refund", {"order_id": "o1", "amount": 1}),
                ("export_customers", {"fmt": "csv"}),
                ("not_a_tool", {}),
            ):
                result = await agent.call_tool(name, args)
                assert result.is_error, name
                assert text(result).startswith(DENIED_PREFIX)

    anyio.run(main)


@pytest.mark.parametrize(
    "arguments",
    [
        {"order_id": CANARY, "amount": CANARY},  # ill-typed
        {"order_id": CANARY, "amount": 20, "note": CANARY},  # an extra argument
        {"order_id": CANARY},  # a missing one
    ],
)
def test_denials_never_echo_argument_values(arguments: dict[str, Any]) -> None:
    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        async with gated(world, support) as agent:
            result = await agent.call_tool("refund", arguments)
            assert result.is_error
            assert CANARY not in result.model_dump_json()
            assert text(result) == (
                DENIED_PREFIX + "denied: the arguments do not match the tool's input schema"
            )

    anyio.run(main)


def test_a_tool_whose_upstream_schema_differs_is_not_offered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream = MCPServer("orders")

    @upstream.tool()
    def lookup_order(order_id: str) -> str:
        return f"order {order_id}"

    @upstream.tool()
    def refund(order_id: str, amount: int, reason: str) -> str:  # one argument more
        return "refunded"

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        recorder = ListRecorder()
        async with gated(world, support, upstream=upstream, recorder=recorder) as agent:
            with caplog.at_level(logging.WARNING, logger="troth.mcp"):
                assert await names(agent) == ["lookup_order"]
                assert await names(agent) == ["lookup_order"]
            args = {"order_id": "o1", "amount": 1, "reason": "x"}
            result = await agent.call_tool("refund", args)
            # not offered: told as undeclared (review 47h, gates 1), recorded as it is
            assert text(result) == DENIED_PREFIX + "denied: the policy bundle declares no such tool"
        assert recorder.records[-1].decision.outcome.value == "schema-mismatch"
        reports = [r for r in caplog.records if "input schema differs" in r.getMessage()]
        assert len(reports) == 1  # once per tool and revision
        assert "tool refund" in reports[0].getMessage()

    anyio.run(main)


def test_a_revocation_mid_task_denies_the_next_call() -> None:
    async def main() -> None:
        world = make_world()
        source = PresentedChain(
            world.sub_chain, world.sub.identifier, world.verifier, world.held_feed
        )
        clock = FixedClock(T + 10)
        async with gated(world, source, clock=clock) as agent:
            first = await agent.call_tool("lookup_order", {"order_id": "o1"})
            assert not first.is_error
            link = CredentialChain.decode(world.sub_chain).credentials[-1].hash
            world.revoke(RevocationKind.CREDENTIAL, link, T + 20)
            clock.advance(10)
            second = await agent.call_tool("lookup_order", {"order_id": "o1"})
            assert second.is_error
            assert text(second) == DENIED_PREFIX + "denied: the caller's credential is revoked"
            assert await names(agent) == []  # gate 1 hides everything from it too

    anyio.run(main)


def test_no_bundle_in_force_denies_every_call() -> None:
    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        late = FixedClock(T + 2 * 86_400)  # the bundle lived a day
        world.refresh_feed(late.now())
        async with gated(world, support, clock=late) as agent:
            assert await names(agent) == []
            result = await agent.call_tool("lookup_order", {"order_id": "o1"})
            assert text(result) == DENIED_PREFIX + "denied: the bundle expired"

    anyio.run(main)


# -- frames -----------------------------------------------------------------------------------


def test_frames_round_trip_and_refuse_what_is_not_one() -> None:
    frame = McpFrame(b"s" * 16, b'{"jsonrpc":"2.0","method":"ping","id":1}')
    assert McpFrame.decode(frame.encode()) == frame
    assert McpFrame.decode(McpFrame(b"s" * 16, None).encode()).message is None
    with pytest.raises(DecodeError) as wrong:
        McpFrame.decode(frame.encode().replace(b"troth.mcp.frame", b"troth.mcp.frams"))
    assert wrong.value.problem is DecodeProblem.UNKNOWN_TYPE
    with pytest.raises(DecodeError) as raised:  # a session id is 16 bytes
        McpFrame.decode(McpFrame(b"short", None).encode())
    assert raised.value.problem is DecodeProblem.MALFORMED
    with pytest.raises(DecodeError) as big:
        McpFrame(b"s" * 16, b"x" * limits.MAX_MCP_FRAME).encode()
    assert big.value.problem is DecodeProblem.OVER_LIMIT


@given(st.binary(max_size=256))
def test_frame_decoding_raises_only_decode_errors(data: bytes) -> None:
    with suppress(DecodeError):
        McpFrame.decode(data)


def test_a_message_over_the_limit_is_answered_with_an_error() -> None:
    from mcp.shared.message import SessionMessage

    huge = types.JSONRPCRequest(
        jsonrpc="2.0",
        id=7,
        method="tools/call",
        params={"name": "x", "arguments": {"a": "y" * limits.MAX_MCP_FRAME}},
    )
    frame, answer = frames_of(b"s" * 16, SessionMessage(huge))
    assert frame is None
    assert answer is not None
    assert isinstance(answer.message, types.JSONRPCError)
    assert answer.message.id == 7


def test_a_refused_request_is_an_error_no_sdk_code_could_mean_otherwise() -> None:
    from mcp.shared.message import SessionMessage

    from troth.integrations.mcp.channel import refusal

    request = types.JSONRPCRequest(jsonrpc="2.0", id=7, method="tools/list")
    answer = refusal(SessionMessage(request), "denied: no policy permits this request")
    assert answer is not None
    error = answer.message
    assert isinstance(error, types.JSONRPCError)
    assert error.error.message == DENIED_PREFIX + "denied: no policy permits this request"
    sdk_codes = {types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT, types.INTERNAL_ERROR}
    assert error.error.code not in sdk_codes
    assert -32099 <= error.error.code <= -32000
