"""Review 23c: arguments nested deeper than Python's JSON encoder reads.

The engine encodes a call's arguments as Cedar's context with `json`, catching TypeError and
ValueError: an argument nested about 1,000 levels deep (a parser with a deeper limit than
`json`'s reads it; a framework hands it to the tool gate as a dict) raised RecursionError out
of `PolicyEngine.decide` and `DecisionPoint.judge`, so the call came back as an exception with
no decision recorded, where every other ill-typed argument is an `arguments` denial in the
trace.
"""

from __future__ import annotations

import pytest

from tests.support.gates import T, lookup_order, make_world, refund
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, Tool, ToolGate

DENIED = "denied: the arguments do not match the tool's input schema"


def _nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("where", ["order_id", "extra"])
def test_arguments_nested_past_the_encoder_are_a_recorded_arguments_denial(where: str) -> None:
    world = make_world()
    recorder = ListRecorder()
    gate = ToolGate(
        world.point(world.store(world.bundle()), recorder),
        [Tool.from_function(lookup_order), Tool.from_function(refund)],
        clock=FixedClock(T + 10),
    )
    caller = world.credential(world.support_chain, world.support)
    arguments = {"order_id": "o1", "amount": 1, where: _nested(1_000)}
    result = gate.invoke(caller, "refund", arguments)
    assert (result.allowed, result.decision.outcome) == (False, Outcome.ARGUMENTS)
    assert result.decision.reason == DENIED
    assert [r.decision.outcome for r in recorder.records] == [Outcome.ARGUMENTS]
