"""Review 53j, gates 1: the signed trace of a tool call did not say whose tool it was.

Since review 53c (gates 1) a tool is its server's: `refund` on the payments server and `refund`
on a mirror are distinct resources (`Tool::"refund"` in `Server::"payments"` or
`Server::"mirror"`), decided apart, the one allowed where the other is not. The decision
recorder (`troth.trace.adapters.decision_content`) still recorded the tool by name only: the
records of two calls, one to each server's `refund`, said the same thing, so an auditor could
not tell which server's tool an agent invoked (nor, for a policy not scoped to a server, show
that a call reached the server the bundle meant). Was a strict xfail until a call of a named
server's tool recorded the server (in `inputs` first; since review 53l, tools 1, in the record's
`tool` member, `tool.server`, signed as the tool's name is: one place, not two).
"""

from __future__ import annotations

from tests.support.gates import T, lookup_order, make_world
from troth.clock import FixedClock
from troth.gates import ListRecorder, Tool, ToolGate
from troth.trace.adapters import decision_content


def test_a_tool_calls_record_names_its_server() -> None:
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = world.credential(world.support_chain, world.support)
    tools = [Tool.from_function(lookup_order)]
    clock = FixedClock(T + 10)
    for server in ("payments", "mirror", None):
        gate = ToolGate(point, tools, clock=clock, server=server)
        assert gate.invoke(caller, "lookup_order", {"order_id": "o1"}).decision.allowed
    servers = []
    for record in recorder.records:
        content, _chain = decision_content(record, world.support.identifier)
        assert content.tool is not None
        servers.append(content.tool.server)
    assert servers == ["payments", "mirror", None]
