"""What an upstream MCP server announces of changes of its tools, for the `McpGate` in front of
it (review 48e, gates 2): its listing is stale once the count moves (troth.integrations.mcp.gate).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.lowlevel
import mcp_types as types

from troth import limits
from troth.integrations.mcp.answers import upstream_said

__all__ = ["UpstreamChanges"]

log = logging.getLogger("troth.mcp")


class UpstreamChanges:
    """Counts the changes of its tools the upstream announces, for the `McpGate` in front of
    it, whose listing is stale once the count moves (review 48e, gates 2): an MCP client's
    message handler (`mcp.Client(..., message_handler=changes)`: the
    `notifications/tools/list_changed` of protocol versions before 2026-07-28), and `watch`
    (a `subscriptions/listen` stream, 2026-07-28)."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.count += 1
        await anyio.lowlevel.checkpoint()

    async def watch(self, client: Any) -> None:
        """Count the tool-list changes `client`'s upstream announces on a listen stream,
        listening again after a stream lost (limits.MCP_RELISTEN_SECONDS later); each stream's start
        counts as a change (what changed before it is not known). Returns when the negotiated
        version has no such stream (its notifications reach the message handler), or the
        upstream refuses, ends or fails it (logged: the gate then lists on unknown names and
        tools/list only, as an upstream announcing nothing)."""
        from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost

        while True:
            try:
                async with client.listen(tools_list_changed=True) as events:
                    self.count += 1
                    async for _event in events:
                        self.count += 1
                return
            except ListenNotSupportedError:
                return
            except SubscriptionLost:
                self.count += 1
                await anyio.sleep(limits.MCP_RELISTEN_SECONDS)
            except Exception as exc:  # MCPError (refused), a timeout before its answer, ...
                log.warning(
                    "the upstream's tool-list changes are not followed: %s", upstream_said(exc)
                )
                return
