"""Review 57l, mcp: a hostile upstream MCP server and a hostile client against the MCP gate.

mcp 1: a published server's tools (`McpService.tools`: its `status`, `troth node status --json`,
and `troth mcp publish`'s answer) were the upstream's first page of tools/list read by the MCP
SDK's client, not the gate's bounded listing (troth.integrations.mcp.listing): any number of
tools within a 64 MiB line (past MAX_UPSTREAM_TOOLS, whose listing the gate refuses; a node's
status answer over MAX_CONTROL_ANSWER failed `troth node status` for the whole node), with
names the gate never offers (a newline, an escape sequence, one listed twice), all kept for
the life of the publication.

mcp 2: the MCP SDK logs what a peer sent it that it cannot read, every time, and the node logs
at INFO into node.log: each line of an upstream's stdout that is not JSON-RPC was an ERROR with
its traceback (some 880 bytes of node.log for each empty line: one byte of the upstream's), and
each notification whose params do not validate a WARNING with its traceback (some 1.3 KiB for
80 bytes); a member's malformed notifications to a published server a WARNING each. The
project's rule for what others make a node log (troth.transport.ratelog: a few lines a minute)
did not hold for the SDK's loggers: an upstream, or a member within its MCP budget, filled the
node's disk.

Real MCP clients and servers (the SDK's), in process.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.shared.message import SessionMessage

from tests.support.gates import TOOLS
from tests.support.nodes import MemNet, run_memnet
from tests.test_review54j_mcp import _gate
from troth import limits
from troth.errors import TrothError
from troth.integrations.mcp.channel import decode_message, new_session, run_session
from troth.integrations.mcp.gate import gate_server
from troth.integrations.mcp.quiet import SdkThrottle
from troth.integrations.mcp.upstream import connectable, upstream_stdio
from troth.node.services.mcp import publish_upstream

FLOOD = 200
BAD_PROGRESS = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": "x"}}


def listing(tools: list[types.Tool]) -> Server[Any]:
    """An upstream listing `tools` in one page."""

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    return Server("hostile", on_list_tools=on_list_tools)


def _tool(name: str) -> types.Tool:
    return types.Tool(name=name, input_schema=TOOLS["lookup_order"])


def test_a_published_servers_tools_are_the_gates_offer(tmp_path: Path) -> None:
    """Names no bundle could declare, and one listed twice, are not the server's tools."""
    odd = ["evil\n\x1b[2Jforged: line", "é", "x" * (limits.MAX_TOOL_NAME + 1), "twice", "twice"]

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        tools = [_tool(name) for name in [*odd, "lookup_order"]]
        published = await publish_upstream(net.hub, "orders", listing(tools))
        assert published["tools"] == ["lookup_order"]
        status = net.hub.status()["services"]["mcp.orders"]
        assert status["tools"] == ["lookup_order"]

    run_memnet(test, tmp_path)


def test_a_listing_the_gate_refuses_is_not_published(tmp_path: Path) -> None:
    """An upstream listing more tools than the gate reads is refused at publication, as the
    gate refuses its listing: no node status holding its names."""
    tools = [_tool(f"t{i}") for i in range(limits.MAX_UPSTREAM_TOOLS + 1)]

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        with pytest.raises(TrothError, match=r"mcp\.orders: the upstream.s tools are refused"):
            await publish_upstream(net.hub, "orders", listing(tools))
        assert "mcp.orders" not in net.hub.status()["services"]

    run_memnet(test, tmp_path)


def _sdk_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the MCP SDK's loggers wrote at WARNING or above."""
    sdk = ("mcp.", "client")
    return [r for r in caplog.records if r.name.startswith(sdk) and r.levelno >= logging.WARNING]


def test_an_upstreams_junk_lines_are_logged_a_few_times_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """FLOOD empty lines on the upstream's stdout: each is read (the session is told), a few
    logged."""
    caplog.set_level(logging.INFO)
    junk = f"import sys; sys.stdout.write('\\n' * {FLOOD}); sys.stdout.flush()"
    told: list[object] = []

    async def main() -> None:
        parameters = StdioServerParameters(command=sys.executable, args=["-c", junk])
        async with upstream_stdio(parameters) as (read, _write):
            told.extend([item async for item in read])

    anyio.run(main)
    assert len(told) == FLOOD
    assert all(isinstance(item, Exception) for item in told)
    assert len(_sdk_lines(caplog)) <= limits.MCP_SDK_LOG_LINES_PER_MINUTE


class _Malformed:
    """A transport to an upstream that answers the handshake, then sends FLOOD notifications
    whose params do not validate."""

    async def __aenter__(self) -> Any:
        self.to_client, read = anyio.create_memory_object_stream[Any](FLOOD + 1)
        write, self.from_client = anyio.create_memory_object_stream[Any](FLOOD + 1)
        self.group = anyio.create_task_group()
        await self.group.__aenter__()
        self.group.start_soon(self._serve)
        return read, write

    async def __aexit__(self, *exc: Any) -> bool | None:
        self.group.cancel_scope.cancel()
        try:
            return await self.group.__aexit__(*exc)
        finally:  # the upstream's ends of both streams: no stream left unclosed
            self.to_client.close()
            self.from_client.close()

    async def _serve(self) -> None:
        async for message in self.from_client:
            inner = message.message
            if not isinstance(inner, types.JSONRPCRequest):
                continue
            if inner.method != "initialize":  # a ping: answered
                pong: dict[str, Any] = {"jsonrpc": "2.0", "id": inner.id, "result": {}}
                parsed = types.jsonrpc_message_adapter.validate_python(pong, by_name=False)
                await self.to_client.send(SessionMessage(parsed))
                continue
            info = {"name": "upstream", "version": "1"}
            result = {"protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": info}
            for wire in [{"jsonrpc": "2.0", "id": inner.id, "result": result}] + [
                BAD_PROGRESS
            ] * FLOOD:
                parsed = types.jsonrpc_message_adapter.validate_python(wire, by_name=False)
                await self.to_client.send(SessionMessage(parsed))


def test_an_upstreams_malformed_notifications_are_logged_a_few_times_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """FLOOD notifications/progress whose progress is no number, to the gate's client."""
    caplog.set_level(logging.INFO)

    async def main() -> None:
        with anyio.fail_after(30):
            async with Client(connectable(_Malformed()), mode="legacy", cache=None) as client:  # type: ignore[arg-type]
                with warnings.catch_warnings():  # ping is legacy-only, as this client is
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    await client.send_ping()  # after the flood: each was read

    anyio.run(main)
    assert len(_sdk_lines(caplog)) <= limits.MCP_SDK_LOG_LINES_PER_MINUTE


def test_a_members_malformed_notifications_are_logged_a_few_times_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A published server's session (`run_session`) read FLOOD notifications/progress whose
    progress is no number, after the handshake: a WARNING each from the SDK's server."""
    caplog.set_level(logging.INFO)
    gate, caller = _gate(object())
    info = {"name": "agent", "version": "1"}
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": info}
    wires: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        *[BAD_PROGRESS] * FLOOD,
        {"jsonrpc": "2.0", "id": 2, "method": "ping"},
    ]
    sent: list[bytes] = []

    async def send(frame: bytes) -> bool:
        sent.append(frame)
        return True

    async def main() -> None:
        inbound, read = anyio.create_memory_object_stream[Any](len(wires))
        for wire in wires:
            inbound.send_nowait(decode_message(json.dumps(wire).encode()))
        async with anyio.create_task_group() as group:
            group.start_soon(run_session, gate_server(gate, caller), read, new_session(), send)
            with anyio.fail_after(30):
                while len(sent) < 2:  # initialize and ping answered: every message read
                    await anyio.sleep(0.01)
            inbound.close()

    anyio.run(main)
    assert len(_sdk_lines(caplog)) <= limits.MCP_SDK_LOG_LINES_PER_MINUTE


def test_the_throttle_says_how_many_lines_it_left_out() -> None:
    """Past `per_minute`, records are counted; the first written a minute later names them."""
    now = [0.0]
    throttle = SdkThrottle(2, clock=lambda: now[0])
    logger = logging.getLogger("tests.review57l.throttle")

    def record(level: int = logging.WARNING) -> logging.LogRecord:
        return logger.makeRecord(logger.name, level, __file__, 1, "dropped %r", ("x",), None)

    assert [throttle.filter(record()) for _ in range(5)] == [True, True, False, False, False]
    assert throttle.filter(record(logging.INFO))  # below WARNING: never counted
    now[0] = 60.0
    later = record()
    assert throttle.filter(later)
    assert later.getMessage() == "dropped 'x' (and 3 similar lines left out)"
    assert throttle.suppressed == 3
