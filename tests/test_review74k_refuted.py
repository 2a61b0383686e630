"""Review 74k, records: attacks on what a decision's record says, and on review 74f's
`own_arguments`, that did not work (kept as passing tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import T, make_world
from tests.support.traces import NOW as SIGNED
from tests.support.traces import Held, open_log, recorder
from tests.test_review74k_records import _mcp
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, Tool, ToolGate
from troth.gates.engine import PolicyDecision, ToolCall
from troth.gates.point import DecisionRecord
from troth.storage import SqliteDatabase
from troth.trace import Kind, RecordContent
from troth.trace.adapters import decision_content
from troth.trace.outbox import TraceOutbox
from troth.trace.record import ToolCall as TracedTool

NOW = T + 10


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_json_numbers_from_the_wire_are_denied_and_recorded(value: float) -> None:
    """NaN and Infinity (which a JSON parser may accept) in an MCP call's nested or flat
    arguments: denied as arguments, recorded, never allowed then failing in `own_arguments`."""
    for arguments in ({"order_id": "o1", "meta": {"note": value}}, {"order_id": value}):
        upstream, recorder_ = _mcp(arguments)
        (record,) = recorder_.records
        assert record.decision.outcome is Outcome.ARGUMENTS
        assert upstream.calls == []


class _Int(int):
    """An int whose own operators lie (always equal, formatted as another number)."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "9999"

    __str__ = __repr__


@pytest.mark.parametrize(
    ("amount", "ran"),
    [
        (_Int(5), [5]),  # JSON writes its value: the tool gets the plain int Cedar judged
        (True, []),  # a bool is no Long: denied
        (5.0, []),  # a float, -0.0 too, is no Long: denied
        (-0.0, []),
        (2**53 + 1, []),  # past I-JSON: denied
        ((1, 2), []),  # a tuple is no Long
    ],
)
def test_values_whose_json_differs_run_as_judged_or_are_denied(amount: Any, ran: list[int]) -> None:
    """`own_arguments` (review 74f) never hands the tool a value other than the one Cedar
    judged: an int subclass runs as its plain value (exactly an `int`), the rest are denied."""
    calls: list[Any] = []

    def refund(order_id: str, amount: int) -> str:
        calls.append(amount)
        return "ok"

    world = make_world()
    gate = ToolGate(
        world.point(world.store(world.bundle())),
        [Tool.from_function(refund)],
        clock=FixedClock(NOW),
    )
    caller = world.credential(world.support_chain, world.support)
    result = gate.invoke(caller, "refund", {"order_id": "o1", "amount": amount})
    assert result.allowed is bool(ran)
    assert calls == ran
    assert all(type(c) is int for c in calls)


def test_a_trace_recorder_signs_before_record_returns(tmp_path: Path) -> None:
    """The node's own log path: `TraceRecorder.record` signs and appends before it returns,
    so the caller changing a value it handed in afterwards leaves the signed record as it was."""
    clock = FixedClock(SIGNED)
    held = Held()
    log = open_log(tmp_path / "trace.db", clock)
    args: dict[str, Any] = {"tags": ["late"]}
    receipt = recorder(log, held, clock).record(
        RecordContent(Kind.TOOL_INVOCATION, tool=TracedTool("tag"), values={"args": args})
    )
    args["tags"].append("vip")
    kept = log.disclosures(receipt.record, held.identifier)["args"]
    assert json.loads(kept.value) == {"tags": ["late"]}
    log.close()


def test_a_node_outbox_signs_and_commits_before_add_returns(tmp_path: Path) -> None:
    """A node's trace service path (`TraceClient` over its `TraceOutbox`): the record is signed
    and committed as it is added; a value changed afterwards is sent as it was recorded."""
    held = Held()
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, held.identifier, held.signer)
    args: dict[str, Any] = {"tags": ["late"]}
    outbox.add(
        RecordContent(Kind.TOOL_INVOCATION, tool=TracedTool("tag"), values={"args": args}),
        now=SIGNED,
    )
    args["tags"].append("vip")
    try:
        assert outbox.claim()
        outbox.set_head(None)
        batch = outbox.next_batch(SIGNED)
        assert batch is not None
        (sent,) = batch.submission.records
        assert json.loads(sent.disclosures["args"].value) == {"tags": ["late"]}
    finally:
        outbox.close()
        db.close()


def test_a_record_shares_no_policy_list_with_the_decision() -> None:
    """The policies, errors and reason of a decision the engine caches and hands again (one
    object for many calls) are copied into each record's content: a sink changing one
    record's `result` changes neither the decision nor the next record."""
    world = make_world()
    decision = PolicyDecision(True, Outcome.ALLOWED, "allowed", ("lookup",), ("e",), 1, "d")
    record = DecisionRecord(NOW, None, ToolCall("lookup_order", {"order_id": "o1"}), decision)
    first, _ = decision_content(record, world.support.identifier)
    first.values["result"]["policies"].append("forged")
    first.values["result"]["errors"].clear()
    second, _ = decision_content(record, world.support.identifier)
    assert second.values["result"]["policies"] == ["lookup"]
    assert second.values["result"]["errors"] == ["e"]
    assert decision.policies == ("lookup",)
    assert second.decision is not None
    assert second.decision.policies == ("lookup",)


def test_a_tool_that_raises_leaves_its_allowed_record_alone() -> None:
    """A tool raising after it was allowed: its exception propagates, and the call's one record
    stays the allowed decision (nothing rewrites its outcome)."""

    def lookup_order(order_id: str) -> str:
        raise RuntimeError("boom")

    world = make_world()
    recorded = ListRecorder()
    gate = ToolGate(
        world.point(world.store(world.bundle()), recorded),
        [Tool.from_function(lookup_order)],
        clock=FixedClock(NOW),
    )
    caller = world.credential(world.support_chain, world.support)
    with pytest.raises(RuntimeError):
        gate.invoke(caller, "lookup_order", {"order_id": "o1"})
    assert [r.decision.outcome for r in recorded.records] == [Outcome.ALLOWED]


@pytest.mark.parametrize(
    "arguments",
    [
        {"order_id": "o1", "tags": [[[["late"]]]]},  # nested past the schema's array of strings
        {"order_id": "o1", "meta": {1: "n"}},  # a key JSON writes as "1", no property's name
        {"order_id": "o1", "tags": ("late", "late")},  # a tuple repeating an item Cedar's Set
    ],
)
def test_arguments_own_arguments_would_rewrite_are_denied(arguments: dict[str, Any]) -> None:
    """Values whose JSON round trip differs in shape from what was given (deeper than the
    schema, a non-`str` key, a repeated item in a tuple) are denied before anything runs:
    never allowed, then handed on as other values or failing in `own_arguments`."""
    upstream, recorded = _mcp(arguments)
    (record,) = recorded.records
    assert record.decision.outcome is Outcome.ARGUMENTS
    assert upstream.calls == []
