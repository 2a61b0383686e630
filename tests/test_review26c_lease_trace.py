"""Review 26c, gate 3 and the trace: a call allowed whose lease is refused is recorded again,
denied, with the provider's reason (`DecisionPoint.refuse`, leftovers 2). The reason is the
provider's text: a remote broker's refusal detail (`SecretError` from its answer, any text
up to MAX_SERVICE_MESSAGE) goes into the call's denial as it came. A reason a trace record
cannot carry (a noncharacter such as U+FDD0, which an export refuses; more than
MAX_TRACE_DISCLOSURE_BYTES) made the trace recorder raise on the refusal: the gate raised
instead of answering the denial, and the trace kept only the call's `tool_invocation` (review
23c's hole, for the reason instead of the arguments).

The test is review 23c's gate (a TraceDecisionRecorder over a trace log) with a provider
refusing with such a reason: the log holds the allowed record and the denial, and the gate
answers denied, the reason disclosed by its hash and size (a strict xfail until then).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.gates import make_world, refund
from tests.test_leftovers_lease_record import Refusing
from tests.test_review23c_trace import NOW, recorded_point
from troth import limits
from troth.clock import FixedClock
from troth.gates import Outcome, PolicyDecision, Tool, ToolGate
from troth.trace import Kind
from troth.trace.signing import open_envelope


@pytest.mark.parametrize(
    "detail",
    ["sealed \ufdd0", "x" * (limits.MAX_TRACE_DISCLOSURE_BYTES + 1)],
    ids=["noncharacter", "long"],
)
def test_a_lease_refusal_no_record_can_carry_is_still_recorded(tmp_path: Path, detail: str) -> None:
    world = make_world()
    point, log = recorded_point(tmp_path, world)
    refusal = PolicyDecision.deny(Outcome.LEASE_DENIED, f"denied: no lease of secret s: {detail}")
    gate = ToolGate(
        point, [Tool.from_function(refund)], clock=FixedClock(NOW), leases=Refusing(refusal)
    )
    caller = world.credential(world.support_chain, world.support)
    result = gate.invoke(caller, "refund", {"order_id": "o1", "amount": 20})
    assert (result.allowed, result.decision.outcome) == (False, Outcome.LEASE_DENIED)
    records = [open_envelope(entry.envelope)[0] for entry in log.stored()]
    assert [record.kind for record in records] == [Kind.TOOL_INVOCATION, Kind.DENIAL]
    result = json.loads(log.disclosures(records[1].id)["result"].value)
    assert set(result) == {"sha256", "bytes"}
