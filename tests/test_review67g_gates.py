"""Review 67g (gates: Cedar argument handling, tool visibility), findings with their fixes.

Gates 1. (low: a crash where the gate promises a denial) `ToolGate.invoke` takes the tool's
   name and arguments as an agent loop hands them on, often straight from a model's JSON: a
   name that is not a `str` (None, a number, bytes) is denied as a tool the bundle does not
   declare, and arguments that are no JSON object are denied (ARGUMENTS). A name that is a
   JSON array or object (a list, a dict: unhashable) was looked up in the gate's table of
   tools first and raised TypeError out of `invoke`, never decided nor recorded. Now a name
   that is not exactly a `str` is looked up as none: denied, and recorded, as undeclared.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gates import T, export_customers, lookup_order, make_world, refund
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, Tool, ToolGate


@pytest.mark.parametrize("name", [["refund"], {"name": "refund"}, None, 1, b"refund"])
def test_gates_1_a_tool_name_no_str_is_denied_as_undeclared(name: Any) -> None:
    tools = [Tool.from_function(f) for f in (lookup_order, refund, export_customers)]
    world = make_world()
    bundle = world.bundle(tools={t.name: t.input_schema for t in tools})
    recorder = ListRecorder()
    gate = ToolGate(world.point(world.store(bundle), recorder), tools, clock=FixedClock(T + 10))
    caller = world.credential(world.support_chain, world.support)
    result = gate.invoke(caller, name, {"order_id": "o1", "amount": 20})
    assert not result.allowed
    assert result.decision.outcome is Outcome.UNKNOWN_REQUEST
    assert recorder.records[-1].decision.outcome is Outcome.UNKNOWN_REQUEST
