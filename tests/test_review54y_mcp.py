"""Review 54y, gates.mcp.call: the gate's server answers a request's failure that is not
already the gate's own error with its own (`McpGateError`, "the gate failed the request",
the failure's type named, its text never sent; review 54j, mcp 1) through a context manager
class kept once (`_OWN_ERRORS`), not a `contextlib.contextmanager` generator made per request.
These pin what it does for each kind of failure, for tools/call and tools/list; real MCP
clients (the SDK's), in process, with a gate that fails as told.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from troth.integrations.mcp.gate import gate_server

SECRET = "password=hunter2 at /srv/orders/db.conf"


class _Failing:
    """A gate whose every request fails with `exc`."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def list_tools(self, caller: Any, **_: Any) -> types.ListToolsResult:
        raise self.exc  # (decided, and a page's cursor and pages: review 63p, mcp 1)

    async def call_tool(
        self, caller: Any, name: str, arguments: Any, *, decided: Any = None
    ) -> types.CallToolResult:
        raise self.exc


def _errors(exc: BaseException) -> list[types.ErrorData]:
    """The errors tools/call and tools/list are answered with by a gate failing with `exc`."""
    errors: list[types.ErrorData] = []

    async def main() -> None:
        server = gate_server(_Failing(exc), object())  # type: ignore[arg-type]
        async with Client(server, mode="legacy", cache=None) as agent:
            for request in (agent.call_tool("refund", {}), agent.list_tools()):
                with pytest.raises(MCPError) as raised:
                    await request
                errors.append(raised.value.error)

    anyio.run(main)
    return errors


def test_a_failure_of_the_gate_is_answered_as_its_own_error() -> None:
    for error in _errors(RuntimeError(SECRET)):
        assert error.message == "troth: the gate failed the request (RuntimeError)"
        assert SECRET not in str(error)
        assert error.code != 0
        assert error.data is None


def test_a_json_rpc_error_passes_as_raised() -> None:
    given = types.ErrorData(code=-32602, message="the gate's own words")
    for error in _errors(MCPError.from_error_data(given)):
        assert error.code == -32602
        assert error.message == "the gate's own words"
