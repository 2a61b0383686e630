"""Review 47h, attacks that failed (the code was right): denials that do not depend on the
tool, the caller's credential refused or no bundle in force, already read alike for a hidden
tool and a name the bundle does not declare; so does an upstream tool the bundle lacks."""

from __future__ import annotations

import anyio
from mcp import Client

from tests.support.gates import T, export_customers, lookup_order, make_world, refund
from tests.support.mcp_orders import orders_server, text
from troth.clock import FixedClock
from troth.credentials import CredentialChain, RevocationKind
from troth.gates import ListRecorder, Outcome, Tool, ToolGate
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server

TOOLS = (lookup_order, refund, export_customers)
UNKNOWN = "denied: the policy bundle declares no such tool"


def test_a_revoked_caller_is_told_the_same_for_every_name() -> None:
    world = make_world()
    sub = world.credential(world.sub_chain, world.sub)
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    gate = ToolGate(point, [Tool.from_function(f) for f in TOOLS], clock=FixedClock(T + 10))
    link = CredentialChain.decode(world.sub_chain).credentials[-1].hash
    world.revoke(RevocationKind.CREDENTIAL, link, now=T + 5)
    answers = {
        name: gate.invoke(sub, name, {"order_id": "o", "amount": 1})
        for name in ("refund", "lookup_order", "not_a_tool")
    }
    assert len(set(map(repr, answers.values()))) == 1
    assert answers["refund"].decision.outcome is Outcome.CREDENTIAL
    assert {r.decision.outcome for r in recorder.records} == {Outcome.CREDENTIAL}


def test_no_bundle_in_force_reads_the_same_for_every_name() -> None:
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    late = T + 2 * 86_400  # the bundle lived a day
    world.refresh_feed(late)
    point = world.point(world.store(world.bundle()))
    gate = ToolGate(point, [Tool.from_function(f) for f in TOOLS], clock=FixedClock(late))
    answers = {name: gate.invoke(support, name, {}) for name in ("export_customers", "nope")}
    assert len(set(map(repr, answers.values()))) == 1
    assert answers["nope"].decision.outcome is Outcome.NOT_IN_FORCE


def test_an_upstream_tool_the_bundle_lacks_reads_as_a_made_up_name() -> None:
    from mcp.server import MCPServer

    upstream: MCPServer = orders_server()

    @upstream.tool()
    def wipe_orders() -> str:  # the upstream has it, the bundle declares no such tool
        return "wiped"

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        point = world.point(world.store(world.bundle()))
        async with Client(upstream, cache=None) as client:
            gate = McpGate(point, client, clock=FixedClock(T + 10))
            async with Client(gate_server(gate, support), mode="legacy", cache=None) as agent:
                wiped = await agent.call_tool("wipe_orders", {})
                made_up = await agent.call_tool("not_a_tool", {})
                assert wiped.model_dump(mode="json") == made_up.model_dump(mode="json")
                assert (
                    text(wiped) == DENIED_PREFIX + "denied: the policy bundle declares no such tool"
                )

    anyio.run(main)
