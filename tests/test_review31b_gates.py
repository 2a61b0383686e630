"""Review 31b, gates: a tool runs with the arguments its call was judged with, whatever
Mapping the caller handed the gate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.support.gates import T, make_world, refund
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, Tool, ToolCall, ToolGate


class Shifting(dict[str, Any]):
    """A dict whose keys are read through `keys()` (its own `__iter__`, so CPython's `dict()`
    and `**` read it key by key) and whose amount grows after the first full read."""

    def __init__(self) -> None:
        super().__init__(order_id="o1", amount=20)
        self.reads = 0

    def keys(self) -> Any:
        self.reads += 1
        if self.reads > 1:
            dict.__setitem__(self, "amount", 50_000)
        return dict.keys(self)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())


def test_a_tool_runs_with_the_arguments_judged() -> None:
    """Review 31b, gates 1 (was a strict xfail until `ToolGate.invoke` read a Mapping that is
    not a dict once, into the dict it judges, records and runs the tool with).
    `ToolGate.invoke` of a tool without defaults handed the caller's Mapping to the decision
    point, whose engine judged a copy (`dict(args)`: amount 20, within `refund-cap`), then ran
    the tool with `**arguments`, a second read of that Mapping (amount 50,000, which
    `refund-cap` forbids); the record kept the Mapping too. The engine's own check and
    encoding read one copy (its fast path, `type(args) is not dict`, judges a dict subclass
    and a Mapping exactly as before); the gate around it did not run what it judged."""
    world = make_world()
    recorder = ListRecorder()
    gate = ToolGate(
        world.point(world.store(world.bundle()), recorder),
        [Tool.from_function(refund)],
        clock=FixedClock(T + 10),
    )
    member = world.credential(world.support_chain, world.support)
    result = gate.invoke(member, "refund", Shifting())
    assert result.decision.outcome is Outcome.ALLOWED
    assert result.value == "refunded 20 on o1"
    (record,) = recorder.records
    assert isinstance(record.request, ToolCall)
    assert record.request.arguments == {"order_id": "o1", "amount": 20}
