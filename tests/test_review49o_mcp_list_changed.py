"""Review 49o, mcp 2: a new policy bundle can change which tools a caller of the MCP gate may
see (gate 1), but the gate never told its clients: an agent kept offering its model the tools
of its last tools/list (a tool now withdrawn, or none of the ones just granted) until it
happened to list again. The gate decides every request under a bundle revision; a request of
one connection decided under another revision than its last is now followed by
`notifications/tools/list_changed` to that client (protocol versions before 2026-07-28, to
which the gate declares `tools.listChanged`). A real MCP client session, its message handler
counting the notifications, as review 48e's tests do."""

from __future__ import annotations

import anyio
from mcp import Client

from tests.support.gates import POLICIES, T, make_world
from tests.support.mcp_orders import names, orders_server, text
from troth.clock import FixedClock
from troth.integrations.mcp.gate import McpGate, UpstreamChanges, gate_server

WITHOUT_REFUND = "\n".join(line for line in POLICIES.splitlines()[:2] + POLICIES.splitlines()[4:])


def test_a_call_decided_under_a_new_revision_tells_the_client_its_tools_changed() -> None:
    world = make_world()
    store = world.store(world.bundle())
    point = world.point(store)
    caller = world.credential(world.support_chain, world.support)
    told = UpstreamChanges()  # a message handler counting tools/list_changed
    seen: list[object] = []

    async def main() -> None:
        async with Client(orders_server(), cache=None) as client:
            gate = McpGate(point, client, clock=FixedClock(T + 10))
            server = gate_server(gate, caller)
            async with Client(server, mode="legacy", cache=None, message_handler=told) as agent:
                seen.append(agent.server_capabilities.tools.list_changed)  # type: ignore[union-attr]
                seen.append(await names(agent))
                said = await agent.call_tool("lookup_order", {"order_id": "o1"})
                seen.append((text(said), told.count))  # the same revision: nothing to tell
                store.accept(
                    world.bundle(revision=2, policies=WITHOUT_REFUND),
                    feeds=world.feeds(),
                    now=T + 6,
                )
                said = await agent.call_tool("lookup_order", {"order_id": "o2"})
                with anyio.fail_after(5):  # delivered on the client's own task
                    while not told.count:
                        await anyio.sleep(0.01)
                seen.append((said.is_error, told.count))
                seen.append(await names(agent))  # listed again: refund withdrawn
                await agent.call_tool("lookup_order", {"order_id": "o3"})
                seen.append(told.count)  # told once per change

    anyio.run(main)
    assert WITHOUT_REFUND.count("@id") == 3
    assert '"refund"' not in WITHOUT_REFUND
    assert seen == [
        True,
        ["lookup_order", "refund"],
        ("order o1: 2 items, paid", 0),
        (False, 1),
        ["lookup_order"],
        1,
    ]
