"""Review 48t, gates 1, attacks that failed (the code was right before the fix too): a tool the
bundle declares but the gate does not, and one whose gate schema is not the bundle's, were
already denied before Cedar as a made-up name is, for the same counted work."""

from __future__ import annotations

from collections import Counter

from tests.support.gates import GatesWorld, lookup_order
from tests.test_review47h_hidden import _gate
from tests.test_review48t_hidden_work import MADE_UP, _calls, work, world
from troth.gates import ListRecorder, Tool

__all__ = ["work", "world"]  # the fixtures, shared


def test_a_tool_the_gate_does_not_declare_costs_what_a_made_up_name_does(
    world: GatesWorld, work: Counter[str]
) -> None:
    """A tool the bundle declares but the gate does not (and one whose gate schema is not the
    bundle's) is told as undeclared for the same work as a made-up name."""
    arguments = {"order_id": "o1", "amount": 1}
    only_lookup = Tool.from_function(lookup_order)
    schema = {"type": "object", "properties": {"order_id": {"type": "string"}}}
    other_refund = Tool("refund", schema)
    undeclared = _calls(
        world, work, _gate(world, ListRecorder(), only_lookup), "support", "refund", arguments
    )
    mismatched = _calls(
        world,
        work,
        _gate(world, ListRecorder(), only_lookup, other_refund),
        "support",
        "refund",
        arguments,
    )
    made_up = _calls(
        world, work, _gate(world, ListRecorder(), only_lookup), "support", MADE_UP, arguments
    )
    assert undeclared == mismatched == made_up
