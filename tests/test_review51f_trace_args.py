"""Review 51f, trace 1 (found from the gates; fixed in troth/trace/adapters.py): what a gate
records of a tool call whose arguments are no JSON object.

The tool gate denies arguments that are no object (`ToolGate.invoke(caller, tool, [...])`,
outcome ARGUMENTS: review 47h, gates 2 stopped a list being filled as pairs), and hands the
decision to the recorder with the arguments as given. The trace's decision recorder
(`troth.trace.adapters.decision_content`) reads them with `dict(request.arguments)`:

- a list of pairs is recorded as the object those pairs make: the signed record of the denial
  says the caller sent `{"order_id": "o1", "amount": 20}`, which it did not (a list of two
  pairs), the same arguments as an allowed call's;
- any other non-object (a string, a list of one-element lists) makes the recorder raise, so the
  gate raises instead of returning its denial, and the denied call is not in the trace.

The fix (troth/trace/adapters.py, `decision_content`): the arguments are disclosed as given
(a mapping as a dict, anything else as it is): `disclosed` takes any value (a non-JSON one
as its type).
"""

from __future__ import annotations

from typing import Any

from tests.support.gates import T, lookup_order, make_world, refund
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, Tool, ToolGate
from troth.trace.adapters import decision_content

PAIRS: Any = [["order_id", "o1"], ["amount", 20]]


def _denied_record(arguments: Any) -> tuple[Any, Any]:
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = world.credential(world.support_chain, world.support)
    gate = ToolGate(
        point, [Tool.from_function(f) for f in (lookup_order, refund)], clock=FixedClock(T + 10)
    )
    result = gate.invoke(caller, "refund", arguments)
    assert result.decision.outcome is Outcome.ARGUMENTS
    (record,) = recorder.records
    content, _chain = decision_content(record, world.support.identifier)
    return content.values["args"], record


def test_a_list_of_pairs_is_recorded_as_the_list_sent() -> None:
    recorded, _record = _denied_record(PAIRS)
    assert recorded != {"order_id": "o1", "amount": 20}
    assert recorded == PAIRS


def test_a_string_for_arguments_is_recorded() -> None:
    recorded, _record = _denied_record("o1")
    assert recorded == "o1"
