"""Review 65b2: attacks on the local gate's reader of its agent that did not work.

- An agent that sends requests and cancels each (`notifications/cancelled`: MCP answers none
  of them) does not grow the gate's count of requests to answer before it ends: a cancelled
  request is no longer waited for (`AgentStdio`, troth.integrations.mcp.agent_stdio).
"""

from __future__ import annotations

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage

from troth.integrations.mcp.agent_stdio import AgentStdio


def test_requests_the_agent_cancelled_are_not_waited_for() -> None:
    async def main() -> None:
        agent = AgentStdio()
        for n in range(1000):
            agent.read(SessionMessage(types.JSONRPCRequest(jsonrpc="2.0", id=n, method="ping")))
            cancel = {"requestId": n, "reason": "gone"}
            agent.read(
                SessionMessage(
                    types.JSONRPCNotification(
                        jsonrpc="2.0", method="notifications/cancelled", params=cancel
                    )
                )
            )
        agent.read(SessionMessage(types.JSONRPCRequest(jsonrpc="2.0", id="last", method="ping")))
        assert agent.pending == {"last"}
        agent.stop()
        assert not agent.answered.is_set()  # "last" is still to be answered
        agent.written(SessionMessage(types.JSONRPCResponse(jsonrpc="2.0", id="last", result={})))
        assert agent.answered.is_set()

    anyio.run(main)
