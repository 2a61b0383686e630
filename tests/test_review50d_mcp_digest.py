"""Review 50d, mcp 3: the MCP gate told a connection `notifications/tools/list_changed` when a
request was decided under another bundle *revision* than its last, but a store also swaps in
a bundle of the same revision with another digest (the lower SHA-256 of two signed for one
revision, or any once the held one expired): what a caller may see changed, unannounced. The
gate now compares the revision and the digest that decided."""

from __future__ import annotations

import hashlib

import anyio
from mcp import Client

from tests.support.gates import POLICIES, T, make_world
from tests.support.mcp_orders import names, orders_server
from troth.clock import FixedClock
from troth.integrations.mcp.gate import McpGate, UpstreamChanges, gate_server


def digest(bundle: bytes) -> bytes:
    return hashlib.sha256(bundle).digest()


WITHOUT_REFUND = "\n".join(line for line in POLICIES.splitlines()[:2] + POLICIES.splitlines()[4:])


def test_a_bundle_of_the_same_revision_and_another_digest_tells_the_client() -> None:
    world = make_world()
    # the same revision, all tools, a higher digest: swapped for `lower`. Of 64 signed at
    # other times each, the lowest and the highest: the first lower bundle alone had no higher
    # one among 64 about once in 65 runs (CI stop 48)
    lower = min(
        (world.bundle(revision=1, policies=WITHOUT_REFUND, now=T - k) for k in range(64)),
        key=digest,
    )
    higher = max((world.bundle(revision=1, now=T - k) for k in range(64)), key=digest)
    assert digest(higher) > digest(lower)
    store = world.store(higher)
    point = world.point(store)
    caller = world.credential(world.support_chain, world.support)
    told = UpstreamChanges()
    seen: list[object] = []

    async def main() -> None:
        async with Client(orders_server(), cache=None) as client:
            gate = McpGate(point, client, clock=FixedClock(T + 10))
            server = gate_server(gate, caller)
            async with Client(server, mode="legacy", cache=None, message_handler=told) as agent:
                seen.append(await names(agent))
                store.accept(lower, feeds=world.feeds(), now=T + 6)
                await agent.call_tool("lookup_order", {"order_id": "o1"})
                with anyio.fail_after(5):  # delivered on the client's own task
                    while not told.count:
                        await anyio.sleep(0.01)
                seen.append(told.count)
                seen.append(await names(agent))

    anyio.run(main)
    assert seen == [["lookup_order", "refund"], 1, ["lookup_order"]]
