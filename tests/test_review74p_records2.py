"""Review 74p, records2: 74k's decision-record fixes, attacked.

records2 1: `TraceDecisionRecorder.last` (74k, records 5) was the last decision the reading
thread recorded and, in a thread that recorded none, the last decision ANY thread recorded. A
lease provider that takes its lease off the deciding thread (`asyncio.to_thread`, an executor:
a broker called without blocking the agent's loop) reads `last` in a thread that recorded
nothing: with two calls decided at once, the lease step's record linked to the other call's
decision. Now `last` is the last decision recorded in the reading context (`contextvars`: it
travels into `asyncio.to_thread` and the tasks a call starts), never another context's: a
context that recorded none reads None (no link rather than a wrong one).

records2 2: signing a record whose value is nested past the encoder (`TraceRecorder.record`,
the node outbox, the batcher's signing) raised a bare RecursionError, where a value that is no
JSON raises ValueError and `TraceBatcher.add` MALFORMED: `disclosure_value` now raises
ValueError ("not a JSON value") for it, as for any value it cannot encode.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import TOOLS, make_world
from tests.support.traces import NOW as SIGNED
from tests.support.traces import Held, open_log, recorder, tool_call
from tests.test_review74f_gates import TAGS
from tests.test_review74k_records import ALLOWED, NOW, POLICY, _Sink
from troth.clock import FixedClock
from troth.gates import Tool, ToolGate
from troth.gates.engine import ToolCall as EngineCall
from troth.gates.point import Caller, DecisionRecord, DecisionRecorder, LeaseProvider
from troth.trace import Kind, RecordContent, ToolCall
from troth.trace.adapters import TraceDecisionRecorder
from troth.trace.disclosure import disclosure_value


def nested(depth: int) -> list[Any]:
    """A list `depth` lists deep (built without recursion)."""
    top: list[Any] = []
    inner = top
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return top


class OffThread:
    """A lease provider that takes its lease off the deciding thread, as `asyncio.to_thread`
    runs a blocking broker call: the lease step reads `decisions.last` there. The first call's
    lease waits until the second call is decided."""

    def __init__(self, decisions: TraceDecisionRecorder) -> None:
        self.decisions = decisions
        self.linked: dict[str, str | None] = {}
        self.first_decided = threading.Event()
        self.second_decided = threading.Event()

    @contextmanager
    def _leased(self, record: DecisionRecord) -> Iterator[None]:
        order = record.request.arguments["order_id"]  # type: ignore[union-attr]
        if order == "first":
            self.first_decided.set()
            self.second_decided.wait(5)
        else:
            self.second_decided.set()
        self.linked[order] = asyncio.run(asyncio.to_thread(lambda: self.decisions.last))
        yield None

    def lease(self, record: DecisionRecord) -> Any:
        return self._leased(record)


def tag_gate(decisions: DecisionRecorder, leases: LeaseProvider) -> tuple[ToolGate, Caller]:
    """A tool gate over tool `tag` (its decisions to `decisions`, its leases from `leases`)
    and a caller it allows."""
    world = make_world()
    store = world.store(world.bundle(policies=POLICY, tools={**TOOLS, "tag": TAGS}))
    tool = Tool("tag", TAGS, lambda order_id: order_id)
    gate = ToolGate(world.point(store, decisions), [tool], clock=FixedClock(NOW), leases=leases)
    return gate, world.credential(world.support_chain, world.support)


def test_a_lease_taken_off_the_deciding_thread_links_to_its_own_call() -> None:
    """74p records2 1: two calls decided at once on two threads, each lease taken in
    `asyncio.to_thread`: each links to its own call's decision (the first linked to the
    second's: the thread running the lease had recorded none, and read any thread's last)."""
    decisions = TraceDecisionRecorder(_Sink())
    leases = OffThread(decisions)
    gate, caller = tag_gate(decisions, leases)
    thread = threading.Thread(target=gate.invoke, args=(caller, "tag", {"order_id": "first"}))
    thread.start()
    assert leases.first_decided.wait(5)
    assert gate.invoke(caller, "tag", {"order_id": "second"}).allowed
    thread.join(5)
    assert leases.linked == {"first": "r1", "second": "r2"}


def test_a_thread_that_recorded_no_decision_links_to_none() -> None:
    """74p records2 1: a decision recorded on one thread; a thread that recorded none (an
    executor's, which no context reached) reads no decision, never another call's."""
    decisions = TraceDecisionRecorder(_Sink())
    record = DecisionRecord(NOW, None, EngineCall("tag", {"order_id": "o1"}), ALLOWED)
    seen: list[str | None] = []
    thread = threading.Thread(target=lambda: seen.append(decisions.last))
    decisions.record(record)
    thread.start()
    thread.join(5)
    assert (seen, decisions.last) == ([None], "r1")


def test_a_value_nested_past_the_encoder_is_refused_as_no_json(tmp_path: Path) -> None:
    """74p records2 2: `TraceRecorder.record` of a value nested 5000 lists deep raised a
    bare RecursionError: now ValueError (what a value that is no JSON raises), nothing
    appended, and the next record is appended."""
    who, clock = Held(), FixedClock(SIGNED)
    log = open_log(tmp_path / "trace.db", clock, who)
    agent = recorder(log, who, clock)
    deep = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), values={"args": nested(5000)})
    with pytest.raises(ValueError, match="not a JSON value"):
        agent.record(deep)
    with pytest.raises(ValueError, match="not a JSON value"):
        disclosure_value(nested(5000))
    assert agent.record(tool_call()).index == 0


def test_a_pooled_thread_links_the_call_it_serves_by_its_record() -> None:
    """74p records2 1: a pooled thread that decided an earlier call holds that decision as its
    `last`; a lease provider serving another call there links by the record it is handed
    (`recorded`): that call's decision, never the earlier one."""
    decisions = TraceDecisionRecorder(_Sink())
    earlier = DecisionRecord(NOW, None, EngineCall("tag", {"order_id": "o1"}), ALLOWED)
    served = DecisionRecord(NOW, None, EngineCall("tag", {"order_id": "o1"}), ALLOWED)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(decisions.record, earlier).result(5)
        decisions.record(served)  # decided on this thread, its lease taken on the pool's
        linked = pool.submit(lambda: (decisions.last, decisions.recorded(served))).result(5)
    assert linked == ("r1", "r2")
    assert decisions.recorded(earlier) == "r1"
    assert decisions.recorded(DecisionRecord(NOW, None, earlier.request, ALLOWED)) is None
