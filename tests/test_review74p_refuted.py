"""Review 74p: attacks on 74k's decision-record fixes that did not work (records2).

- `plain_arguments` giving what runs a value Cedar did not judge: a float stays a float and an
  int past 2**53 stays exact through the copy and the tool's own copy of it; a lone surrogate
  (a string no JSON text holds) and an int past Python's 4300-digit conversion limit (taken by
  the flat fast path, never encoded) are denied as arguments, neither raises nor runs, through
  the tool gate and the MCP gate.
- the copy's cost: arguments nested past the encoder (100,000 lists) are `NotJson` (denied),
  no RecursionError; the copy is one encode and one decode of what the caller already holds
  (the node's MCP service reads a call from a frame of at most MAX_MCP_FRAME bytes).
- `TraceBatcher.add`'s copy: a value nested past the encoder is TraceError MALFORMED.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gates import TOOLS, make_world
from tests.support.traces import NOW as SIGNED
from tests.support.traces import Held
from tests.test_review74f_gates import TAGS
from tests.test_review74k_records import NOW, POLICY, _mcp
from tests.test_review74p_records2 import nested
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.gates import ListRecorder, Outcome, Tool, ToolGate
from troth.gates.toolschema import NotJson, own_arguments, plain_arguments
from troth.trace import Kind, RecordContent, ToolCall
from troth.trace.batcher import TraceBatcher

UNJUDGEABLE: list[dict[str, Any]] = [
    {"order_id": "o\ud800"},
    {"order_id": "o1", "tags": ["\udc00"]},
    {"order_id": "o1", "meta": {"note": "\ud800"}},
    {"order_id": 10**5000},
    {"order_id": "o1", "meta": {"note": 10**5000}},
]


def test_numbers_keep_their_type_and_value_through_both_copies() -> None:
    """Refuted: int vs float, an int past 2**53: the plain copy and the tool's copy of it are
    the values given, of the types given."""
    given = {"n": [1.0, 1, 2**64 + 1, -0.0], "m": 2**64 + 1}
    plain = plain_arguments(given)
    for copy in (plain, own_arguments(plain)):
        assert copy == given
        assert [type(v) for v in copy["n"]] == [float, int, int, float]


@pytest.mark.parametrize("arguments", UNJUDGEABLE)
def test_a_lone_surrogate_or_a_huge_int_is_denied_never_run(arguments: dict[str, Any]) -> None:
    """Refuted: a lone surrogate, an int of 5001 digits (flat: the fast path, never encoded;
    nested: the encoder fails): the tool gate denies them as arguments, the tool never runs."""
    ran: list[Any] = []
    recorder = ListRecorder()
    world = make_world()
    store = world.store(world.bundle(policies=POLICY, tools={**TOOLS, "tag": TAGS}))
    tool = Tool("tag", TAGS, lambda order_id, **rest: ran.append(order_id))
    gate = ToolGate(world.point(store, recorder), [tool], clock=FixedClock(NOW))
    result = gate.invoke(world.credential(world.support_chain, world.support), "tag", arguments)
    assert (result.decision.outcome, ran) == (Outcome.ARGUMENTS, [])
    assert [r.decision.allowed for r in recorder.records] == [False]


def test_the_mcp_gate_forwards_no_lone_surrogate() -> None:
    """Refuted: the MCP gate denies a lone surrogate as arguments, never forwarded."""
    upstream, recorder = _mcp({"order_id": "o1", "tags": ["\udc00"]})
    assert upstream.calls == []
    assert [r.decision.outcome for r in recorder.records] == [Outcome.ARGUMENTS]


def test_arguments_nested_past_the_encoder_are_not_json() -> None:
    """Refuted: 100,000 nested lists: `NotJson`, no RecursionError."""
    assert plain_arguments({"deep": nested(100_000)}) == NotJson("dict")


def test_the_batchers_copy_refuses_a_value_nested_past_the_encoder() -> None:
    """Refuted: `TraceBatcher.add` of a value 5000 lists deep: TraceError MALFORMED."""
    batcher = TraceBatcher(Held().signer)
    batcher.set_head(None)
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), values={"v": nested(5000)})
    with pytest.raises(TraceError) as refused:
        batcher.add(content, now=SIGNED)
    assert refused.value.reason is TraceFailure.MALFORMED
    assert batcher.pending() == 0
