"""Review 71i (the MCP held-weight changes of review 71a, area wave2b): attacks tried that
did not work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth import limits

_INIT = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "agent", "version": "1"},
        },
    }
).encode()
_INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
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
