"""Review 23c: a gate decision whose arguments an export cannot carry.

A trace record's disclosures must be values an export line carries (`is_canonical_value`:
I-JSON, no noncharacter, at most 29 levels of nesting): `sign_record` refuses the record
otherwise. The gate's recorder disclosed a call's arguments as they came whenever they were
small, so a call with an argument nested 40 deep, or holding U+FDD0 (both JSON the MCP SDK
parses), made the recorder raise: the gate failed closed, but the call — a forbidden tool
tried, say — left no record at all. An agent could probe every tool unrecorded by adding such
an argument. The arguments are now disclosed by their hash and size when an export could not
carry them, and the decision is recorded like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import (
    GatesWorld,
    T,
    export_customers,
    lookup_order,
    make_world,
    refund,
)
from tests.support.parties import make_party
from troth.clock import FixedClock
from troth.credentials import VerifiedCredential
from troth.crypto import sha256
from troth.gates import DecisionPoint, Outcome, Tool, ToolGate
from troth.trace import Kind, TraceLog, TraceRecord, TraceRecorder, verify_log
from troth.trace.adapters import TraceDecisionRecorder
from troth.trace.record import disclosure_value
from troth.trace.signing import open_envelope

NOW = T + 10


def _nested(depth: int) -> Any:
    value: Any = "csv"
    for _ in range(depth):
        value = [value]
    return value


def recorded_point(tmp_path: Path, world: GatesWorld) -> tuple[DecisionPoint, TraceLog]:
    """A decision point over `world`'s bundle whose decisions the support agent records in a
    trace log of its own (at tmp_path/trace.db); and the log."""
    owner = make_party(world.vault, now=T)
    log = TraceLog.open(tmp_path / "trace.db", clock=FixedClock(NOW), signer=lambda n: owner.signer)
    recorder = TraceDecisionRecorder(
        TraceRecorder(log, world.support.signer, clock=FixedClock(NOW))
    )
    return DecisionPoint(world.store(world.bundle()), world.held_feed, recorder=recorder), log


def _gate(tmp_path: Path) -> tuple[ToolGate, TraceLog, VerifiedCredential]:
    """The support agent's tool gate, recording into a trace log; and its credential."""
    world = make_world()
    point, log = recorded_point(tmp_path, world)
    gate = ToolGate(
        point,
        [Tool.from_function(f) for f in (lookup_order, refund, export_customers)],
        clock=FixedClock(NOW),
    )
    return gate, log, world.credential(world.support_chain, world.support)


def _recorded(log: TraceLog) -> tuple[TraceRecord, bytes]:
    """The log's one record and its `args` disclosure."""
    (entry,) = log.stored()
    record = open_envelope(entry.envelope)[0]
    return record, log.disclosures(record.id)["args"].value


@pytest.mark.parametrize(
    ("tool", "arguments", "outcome"),
    [
        ("export_customers", {"fmt": _nested(40)}, Outcome.ARGUMENTS),
        ("export_customers", {"fmt": "csv\ufdd0"}, Outcome.ARGUMENTS),
        ("refund", {"order_id": "o1", "amount": 1, "note": _nested(40)}, Outcome.ARGUMENTS),
        ("lookup_order", {"order_id": "o1\ufdd0"}, Outcome.ALLOWED),
    ],
)
def test_a_decision_on_arguments_no_export_carries_is_recorded_with_their_hash(
    tmp_path: Path, tool: str, arguments: dict[str, Any], outcome: Outcome
) -> None:
    gate, log, caller = _gate(tmp_path)
    result = gate.invoke(caller, tool, arguments)
    hidden = tool == "export_customers"  # told as undeclared, recorded as is (review 47h)
    assert result.decision.outcome is (Outcome.UNKNOWN_REQUEST if hidden else outcome)
    record, disclosed = _recorded(log)
    assert record.decision is not None
    assert record.decision.outcome == outcome.value
    assert record.kind is (Kind.TOOL_INVOCATION if result.allowed else Kind.DENIAL)
    encoded = disclosure_value(arguments)
    assert disclosed == disclosure_value({"sha256": sha256(encoded).hex(), "bytes": len(encoded)})
    assert verify_log(log).size == 1


def test_a_call_nested_past_the_json_encoders_is_a_recorded_denial(tmp_path: Path) -> None:
    gate, log, caller = _gate(tmp_path)
    result = gate.invoke(caller, "export_customers", {"fmt": _nested(1_000)})
    # export_customers is hidden from the caller: told as undeclared (review 47h, gates 1)
    assert (result.allowed, result.decision.outcome) == (False, Outcome.UNKNOWN_REQUEST)
    record, disclosed = _recorded(log)
    assert record.decision is not None
    assert record.decision.outcome == Outcome.ARGUMENTS.value
    assert record.kind is Kind.DENIAL
    assert disclosed == disclosure_value({"not_json": "dict"})  # not even hashable
    assert verify_log(log).size == 1
