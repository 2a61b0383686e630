"""Review 48e, gates 1: a call allowed under a bundle revision and then refused after all — its
lease refused (gate 3), its lease provider failing, or the MCP upstream never answering
(review 47m) — was recorded a second time, denied, with a decision that named no revision and
no digest: the trace's second record of the call (`Decision.revision` in troth.trace.adapters)
could not say under which bundle the call had been decided, though the allowed record did.
`DecisionPoint.refuse` now gives the refusal the revision and digest of the decision it
refuses: both records of one call name the one revision it was decided under."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import anyio
import pytest
from mcp_types import CallToolResult, ListToolsResult

from tests.support.gates import T, lookup_order, make_world
from troth.clock import FixedClock
from troth.gates import (
    DecisionRecord,
    LeaseDenied,
    ListRecorder,
    Outcome,
    PolicyDecision,
    Tool,
    ToolGate,
)
from troth.integrations.mcp.gate import McpGate, McpGateError


class _Refusing:
    """A lease provider refusing every lease (as troth.secrets.toolgate does: its denial names
    no revision), or failing."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail

    def lease(self, record: DecisionRecord) -> AbstractContextManager[object | None]:
        if self.fail:
            raise RuntimeError("the broker is down")
        raise LeaseDenied(PolicyDecision.deny(Outcome.LEASE_DENIED, "denied: no lease"))


def _pairs(recorder: ListRecorder) -> list[tuple[Outcome, int | None, str | None]]:
    return [(r.decision.outcome, r.decision.revision, r.decision.digest) for r in recorder.records]


@pytest.mark.parametrize("fail", [False, True])
def test_a_refused_lease_is_recorded_under_the_calls_revision(fail: bool) -> None:
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle(revision=3)), recorder)
    gate = ToolGate(
        point,
        [Tool.from_function(lookup_order)],
        clock=FixedClock(T + 10),
        leases=_Refusing(fail=fail),
    )
    caller = world.credential(world.support_chain, world.support)
    if fail:
        with pytest.raises(RuntimeError):
            gate.invoke(caller, "lookup_order", {"order_id": "o1"})
    else:
        assert not gate.invoke(caller, "lookup_order", {"order_id": "o1"}).allowed
    (allowed, refused) = _pairs(recorder)
    assert allowed[:2] == (Outcome.ALLOWED, 3)
    assert allowed[2]
    assert refused == (Outcome.LEASE_DENIED, 3, allowed[2])


class _Failing:
    """An MCP upstream that lists the orders tools and fails every call."""

    def __init__(self) -> None:
        self.tool = Tool.from_function(lookup_order)

    async def list_tools(self, *, cursor: str | None = None) -> ListToolsResult:
        return ListToolsResult.model_validate({"tools": [self.tool.to_json()]})

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        raise OSError("the upstream went away")


def test_an_unanswered_mcp_call_is_recorded_under_the_calls_revision() -> None:
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle(revision=4)), recorder)
    gate = McpGate(point, _Failing(), clock=FixedClock(T + 10))
    caller = world.credential(world.support_chain, world.support)

    async def main() -> None:
        # the gate's own error, the upstream's text logged only (review 54j, mcp 1)
        with pytest.raises(McpGateError, match=r"the upstream failed the call \(OSError\)"):
            await gate.call_tool(caller, "lookup_order", {"order_id": "o1"})

    anyio.run(main)
    (allowed, refused) = _pairs(recorder)
    assert allowed[:2] == (Outcome.ALLOWED, 4)
    assert allowed[2]
    assert refused == (Outcome.UNANSWERED, 4, allowed[2])
