"""Review 48e, gates 2: the MCP gate judged every call of a tool it had listed against that
listing for as long as it ran: an upstream that changed a listed tool and announced it
(`notifications/tools/list_changed`, MCP's signal that its listing is stale) kept being judged
by the schema it no longer had. A new version of `lookup_order` taking `fields` (default
"all": customer data included) still matched the bundle's schema as the gate had last listed
it, so `{"order_id": "o1"}` was allowed and forwarded, and the upstream ran it with a `fields`
no policy saw; listed afresh, the tool's schema differs from the bundle's and the call is
denied (as a tool hidden from the caller). The gate now listens: an upstream's
`tools/list_changed` makes its next tools/call or tools/list list the upstream again, so a
listed tool is judged by what the upstream says it is since its last announcement (a real
MCP upstream and client: the SDK delivers the notification to `UpstreamChanges`)."""

from __future__ import annotations

from typing import Any, Literal

import anyio
import pytest
from mcp import Client
from mcp.server import MCPServer
from mcp.server.mcpserver import Context

from tests.support.gates import T, make_world
from tests.support.mcp_orders import text
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, UpstreamChanges

UNKNOWN = DENIED_PREFIX + "denied: the policy bundle declares no such tool"


class Upgrading:
    """An upstream whose `upgrade` (called by its operator, not through the gate) replaces
    `lookup_order` with a version taking `fields` and announces the change."""

    def __init__(self) -> None:
        self.app = MCPServer("orders")
        self.ran: list[dict[str, Any]] = []

        def lookup_order(order_id: str) -> str:
            """Look up an order."""
            self.ran.append({"order_id": order_id})
            return f"order {order_id}"

        def lookup_order_v2(order_id: str, fields: str = "all") -> str:
            """Look up an order (and its customer's data)."""
            self.ran.append({"order_id": order_id, "fields": fields})
            return f"order {order_id}: {fields}"

        async def upgrade(ctx: Context) -> str:
            """Install the new version."""
            self.app.remove_tool("lookup_order")
            self.app.add_tool(lookup_order_v2, name="lookup_order")
            await ctx.session.send_tool_list_changed()  # before 2026-07-28
            await ctx.notify_tools_changed()  # to subscriptions/listen streams
            return "upgraded"

        self.app.add_tool(lookup_order)
        self.app.add_tool(upgrade)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_a_tool_the_upstream_changed_and_announced_is_judged_by_its_new_schema(
    mode: Literal["legacy", "auto"],
) -> None:
    """Legacy: `notifications/tools/list_changed` to the message handler; auto (2026-07-28):
    an event on the `subscriptions/listen` stream `UpstreamChanges.watch` keeps open."""
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = world.credential(world.support_chain, world.support)
    upstream = Upgrading()

    said: list[str] = []

    async def main() -> None:
        changes = UpstreamChanges()
        async with (
            Client(upstream.app, cache=None, message_handler=changes, mode=mode) as client,
            anyio.create_task_group() as group,
        ):
            group.start_soon(changes.watch, client)
            gate = McpGate(point, client, clock=FixedClock(T + 10), changes=changes)
            with anyio.fail_after(5):  # the listen stream acknowledged (auto)
                while mode == "auto" and not changes.count:
                    await anyio.sleep(0.01)
            said.append(text(await gate.call_tool(caller, "lookup_order", {"order_id": "o1"})))
            seen = changes.count
            assert text(await client.call_tool("upgrade", {})) == "upgraded"
            with anyio.fail_after(5):  # delivered on the client's own task
                while changes.count == seen:
                    await anyio.sleep(0.01)
            said.append(text(await gate.call_tool(caller, "lookup_order", {"order_id": "o2"})))
            group.cancel_scope.cancel()

    anyio.run(main)
    before, after = said
    assert before == "order o1"
    assert upstream.ran == [{"order_id": "o1"}]  # the new version never ran
    assert after == UNKNOWN
    outcomes = [r.decision.outcome for r in recorder.records]
    assert outcomes == [Outcome.ALLOWED, Outcome.SCHEMA_MISMATCH]
