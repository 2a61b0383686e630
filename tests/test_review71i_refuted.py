"""Review 71i (the MCP held-weight changes of review 71a, area wave2b): attacks tried that
did not work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.server.mcpserver import MCPServer

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_review45m_refuted import INIT, INITIALIZED
from troth import limits

_INIT = json.dumps(INIT).encode()
_INITIALIZED = json.dumps(INITIALIZED).encode()
_CALL = (
    b'{"jsonrpc":"2.0","id":%d,"method":"tools/call",'
    b'"params":{"name":"lookup_order","arguments":{"order_id":"o1"}}}'
)
_CANCEL = b'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%d}}'


class _Waiting:
    """An orders upstream whose `lookup_order` waits for ever, counting the calls it took."""

    def __init__(self) -> None:
        self.entered = 0
        self.app = MCPServer("orders")

        @self.app.tool()
        async def lookup_order(order_id: str) -> str:
            """Look up an order."""
            self.entered += 1
            await anyio.sleep_forever()
            return order_id


async def _until(done: Any) -> None:
    with anyio.fail_after(10):
        while not done():
            await anyio.sleep(0.01)


def test_wave2b_refuted_the_pool_is_given_back_whole_by_sessions_ended_and_calls_cancelled(
    tmp_path: Path,
) -> None:
    """Tried: a member's sessions ending (by the client, with calls at the upstream, others
    queued behind them, one cancelled by its client first) to leave weight in the server's
    pool (a request let go by its cancellation, its session's end and the shutdown error the
    SDK writes for it: given back twice, or never): the pool is back to exactly zero, no
    authority counted."""
    from tests.test_mcp_channels import install
    from troth.integrations.mcp.frames import McpFrame
    from troth.node.services import call, service_address
    from troth.node.services.mcp import McpService, publish_upstream

    calls = limits.MAX_MCP_CALLS_PER_SESSION + 2  # two wait behind those at the upstream

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        install(net)
        upstream = _Waiting()
        await publish_upstream(hub, "orders", upstream.app)
        service = hub.host.services["mcp.orders"]
        assert isinstance(service, McpService)
        writer = await net.member("writer", **{"orders.access": "read"})
        end = await writer.channel_to(route(HUB))
        address = (end.enc, service_address("mcp.orders"))

        async def send(session: bytes, message: bytes | None) -> None:
            await call(writer.router, address, "send", [McpFrame(session, message).encode(), "w"])

        names = [bytes([n + 1]) * 16 for n in range(limits.MAX_MCP_SESSIONS_PER_PEER)]
        for session in names:
            for message in (_INIT, _INITIALIZED, *(_CALL % (i + 1) for i in range(calls))):
                await send(session, message)
        at_upstream = limits.MAX_MCP_CALLS_PER_SESSION * len(names)
        await _until(lambda: upstream.entered == at_upstream)
        pool = service._held
        assert pool.places > 0
        for n, session in enumerate(names):
            if n % 2:
                await send(session, _CANCEL % 1)  # one at the upstream
                await send(session, _CANCEL % calls)  # one waiting for a slot
            await send(session, None)
        await _until(lambda: not service.sessions)
        assert (pool.places, pool.holders()) == (0, 0)

    run_memnet(test, tmp_path)


def test_wave2b_refuted_snake_case_unserved_params_are_not_parsed() -> None:
    """Tried: a tools/call's `input_responses`/`request_state` (the SDK's field names, its
    models populating by name) in place of the `inputResponses`/`requestState` dropped at
    send (`held.UNSERVED`), to have the SDK parse them into its models (~3 times their
    weight) unweighed: the SDK (mcp 2.3.0, protocol 2026-07-28) validates a request's params
    by alias only (`by_name=False`), so they are ignored, and what is held is weighed."""
    import mcp_types as types

    from tests.test_review71a_mcpheld import _ROOTS, weighed_and_served

    params = {"name": "t", "arguments": {}, "input_responses": _ROOTS, "request_state": "s" * 9}
    typed = types.CallToolRequestParams.model_validate(params, by_name=False)
    assert (typed.input_responses, typed.request_state) == (None, None)
    weight, served = weighed_and_served(params)
    assert weight >= served


def test_wave2b_refuted_the_send_charge_counts_what_the_gate_and_engine_judge() -> None:
    """Tried: shapes where the one walk at `send` (`held.weigh_arguments`: the value charge,
    and the weight cut short past MAX_TOOL_ARGUMENT_VALUES) counts otherwise than the gate's
    `within_value_limit` of the SDK's typed params (whether the call waits for a slot) and the
    engine's: at the limit and one past, a key given twice (the last kept), arguments heavier
    than the session's most (walked on, counting only), null, an array: the count is the
    gate's, so no call is charged as within the limit and judged over it, or the reverse, and
    one over it is weighed by its bytes (`DENSEST`; within the limit's values a frame weighs
    far less than a session's most, so never "past the most" first)."""
    import mcp_types as types
    from pydantic import ValidationError

    from troth.gates.toolschema import argument_values, within_value_limit
    from troth.integrations.mcp.channel import decode_message
    from troth.integrations.mcp.held import DENSEST, HeldRequests, weigh_arguments

    most = limits.MAX_TOOL_ARGUMENT_VALUES

    def items(item: str, count: int) -> str:
        return "[" + ",".join([item] * count) + "]"

    shapes = [
        '{"x":' + items("0", most - 1) + "}",
        '{"x":' + items("[]", most) + "}",
        '{"x":' + items("0", most * 2) + ',"x":[]}',
        '{"x":' + items('{"a":[]}', most // 2) + ',"y":"' + "s" * 50_000 + '"}',
        "null",
        items("0", most * 2),
    ]
    for arguments in shapes:
        call = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":'
        frame = (call + arguments + "}}").encode()
        item = decode_message(frame)
        heavy = HeldRequests(20_000).weigh(item, len(frame)).values  # past its most: counted on
        weighed = HeldRequests(limits.MAX_MCP_SESSION_HELD).weigh(item, len(frame))
        assert heavy == weighed.values
        params = getattr(item.message, "params", None) or {}
        cut = weigh_arguments(params["arguments"], limits.MAX_MCP_SESSION_HELD)[1] is None
        over = cut and weighed.weight >= DENSEST * len(frame)  # weighed by its bytes
        if arguments.startswith("["):  # the SDK refuses it (INVALID_PARAMS): never judged
            assert (weighed.values, over) == (0, True)
            with pytest.raises(ValidationError):
                types.CallToolRequestParams.model_validate(params, by_name=False)
            continue
        typed = types.CallToolRequestParams.model_validate(params, by_name=False)
        assert weighed.values == argument_values(typed.arguments or {})
        assert over == (not within_value_limit(typed.arguments or {}))


def test_wave2b_refuted_one_members_sessions_leave_the_pool_to_others() -> None:
    """Tried: one member's MAX_MCP_SESSIONS_PER_PEER sessions, each with a lone call over
    MAX_TOOL_ARGUMENT_VALUES of a whole frame (the heaviest request, `DENSEST` a byte) and as
    many more requests as it takes, to fill the server's pool and have other members
    refused: they hold at most ~400 MiB, below MAX_MCP_SERVER_HELD, where anyone takes more
    (the pool is split by authority only: what one member holds is bounded by its sessions)."""
    from troth.integrations.mcp.held import DENSEST, MESSAGE_OVERHEAD, HeldRequests
    from troth.node.services.mcp import _SharedHeld
    from troth.node.shares import Shares

    shares = Shares(lambda: 1)
    for _ in range(limits.MAX_MCP_SESSIONS_PER_PEER):
        held = HeldRequests(limits.MAX_MCP_SESSION_HELD, _SharedHeld(shares, frozenset({b"A"})))
        assert held.take(0, MESSAGE_OVERHEAD + DENSEST * limits.MAX_MCP_FRAME)
        ident = 1
        while held.take(ident, 1 << 20):
            ident += 1
    assert shares.places < limits.MAX_MCP_SERVER_HELD
    assert shares.room([b"B"], limits.MAX_MCP_SERVER_HELD, limits.MAX_MCP_SESSION_HELD)
