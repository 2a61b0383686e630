"""Review 74k, records: what a decision's record says, and what runs, against what was judged.

records 1: the MCP gate judged the caller's own argument objects (`dict(arguments)`: the top
level copied, every nested list and object the caller's), and took the upstream's copy
(`own_arguments`, review 74f) only after the decision, from those objects again. A caller
changing a nested list once the call is decided (its `decided` hook, another task while the
decision runs on the gate's thread) had the upstream run values Cedar never judged, and the
record say them; a nested mapping whose `items()` answers differently each time it is read was
judged by one reading and forwarded by the next. Now the gate judges, records and forwards its
own plain JSON copy, made once before the decision (`toolschema.plain_arguments`, as the tool
gate's review 34f copy), and arguments that are no JSON are judged as such: denied.

records 2: the tool gate left arguments it could not copy as plain JSON (the first encoding
raised) as the caller gave them, "the engine denies it": a nested mapping that fails its first
reading and answers its next ones was judged by its second reading and run (through
`own_arguments`) with its third. Now such arguments are judged, and recorded, as arguments
that are no JSON (`NotJson`): denied, never run.

records 4: the tool gate and the MCP gate took the tool's (the upstream's) copy of the
arguments after the call was recorded and its lease taken, from the values the record holds: a
recorder (or a lease provider) that changes the record it is handed in place (one that redacts
a value, another's mistake) changed what the tool ran with, the upstream was sent. Now what
runs gets its copy before the record is handed to anyone.

records 5: `TraceDecisionRecorder.last`, "the id of the last decision recorded (a lease
taken for the call links to it)", was one attribute for every thread: with calls decided on
several threads at once (the MCP gate's threads, a tool gate shared by an agent's workers), a
call's lease read another call's decision and its signed record linked to that one. Now `last`
is the last decision recorded by the thread that reads it.

records 3: an in-memory `TraceBatcher` signs a record when its batch is sent, from the values
it was handed: a caller (a gate's recorder handing it the call's arguments, a span processor)
changing a value after `record` returned changed what the signed record says. Now the batcher
keeps each value as the canonical JSON it checked when the record was queued.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import anyio
import mcp_types as types

from tests.support.gates import TOOLS, T, make_world
from tests.support.traces import NOW as SIGNED
from tests.support.traces import Held
from tests.test_review74f_gates import POLICY as TAGGED
from tests.test_review74f_gates import TAGS, _Rewriting
from troth.clock import FixedClock
from troth.gates import ListRecorder, Outcome, Tool, ToolGate
from troth.gates.engine import PolicyDecision
from troth.gates.engine import ToolCall as EngineCall
from troth.gates.point import DecisionRecord
from troth.integrations.mcp.gate import McpGate
from troth.trace import Kind, RecordContent, ToolCall
from troth.trace.adapters import TraceDecisionRecorder
from troth.trace.batcher import TraceBatcher

NOW = T + 10
ALLOWED = PolicyDecision(True, Outcome.ALLOWED, "allowed")
POLICY = TAGGED + (
    '@id("no-evil") forbid(principal, action == Action::"invoke:tag", resource)\n'
    "  when { context.args has meta && context.args.meta has note &&\n"
    '         context.args.meta.note == "evil" };\n'
)


class Flipping(dict[str, Any]):
    """A nested mapping whose readings differ: the first `fail` raise, the next one answers
    `{"note": "n"}`, every later one `{"note": "evil"}` (which `no-evil` forbids)."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__(note="n")
        self.fail, self.read = fail, 0

    def items(self) -> Any:
        self.read += 1
        if self.read <= self.fail:
            raise TypeError("not now")
        if self.read > self.fail + 1:
            return {"note": "evil"}.items()
        return super().items()

    def __iter__(self) -> Iterator[str]:
        return iter(["note"])


class _Upstream(_Rewriting):
    """An upstream of the tool `tag` that keeps the arguments of every call it is handed."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        self.calls.append(dict(arguments or {}))
        return types.CallToolResult(content=[])


class Redacting(ListRecorder):
    """A recorder that redacts the record it is handed in place: `order_id` blanked, "vip"
    (which `no-vip` forbids) added to `tags`."""

    def record(self, record: Any) -> None:
        arguments = record.request.arguments
        if record.decision.allowed and isinstance(arguments, dict):
            arguments["order_id"] = "(redacted)"
            arguments.setdefault("tags", []).append("vip")
        super().record(record)


def _mcp(
    arguments: dict[str, Any], decided: Any = None, recorder: ListRecorder | None = None
) -> tuple[_Upstream, ListRecorder]:
    world = make_world()
    recorder = recorder or ListRecorder()
    store = world.store(world.bundle(policies=POLICY, tools={**TOOLS, "tag": TAGS}))
    upstream = _Upstream()
    gate = McpGate(world.point(store, recorder), upstream, clock=FixedClock(NOW))
    caller = world.credential(world.support_chain, world.support)

    async def main() -> None:
        try:
            await gate.call_tool(caller, "tag", arguments, decided=decided)
        finally:
            await gate.close()

    anyio.run(main)
    return upstream, recorder


def test_a_caller_changing_its_list_once_decided_does_not_change_what_the_upstream_runs() -> None:
    """74k records 1: the caller appends "vip" (which `no-vip` forbids) to its nested list as
    the call is decided: the upstream runs, and the record holds, the list Cedar judged."""
    tags = ["late"]

    def decided(revision: int | None, digest: str | None) -> None:
        tags.append("vip")

    upstream, recorder = _mcp({"order_id": "o1", "tags": tags}, decided)
    (record,) = recorder.records
    assert record.decision.allowed
    assert upstream.calls == [{"order_id": "o1", "tags": ["late"]}]
    assert record.request.arguments == {"order_id": "o1", "tags": ["late"]}  # type: ignore[union-attr]


def test_a_mapping_read_again_is_forwarded_as_it_was_judged() -> None:
    """74k records 1: a nested mapping answers `note: n` to the reading Cedar judges and
    `note: evil` (forbidden) to the next: the upstream gets what was judged."""
    upstream, recorder = _mcp({"order_id": "o1", "meta": Flipping()})
    (record,) = recorder.records
    assert record.decision.allowed
    assert upstream.calls == [{"order_id": "o1", "meta": {"note": "n"}}]


def test_a_surrogate_pair_of_two_code_points_is_forwarded_as_the_character_judged() -> None:
    """74k records 1: `"\\ud83d\\ude00"` as two code points, which Cedar judges as the one
    character its JSON escapes name: the upstream gets that character, not the two (the MCP
    gate's copy of flat arguments, `own_arguments`, copied the caller's strings)."""
    upstream, recorder = _mcp({"order_id": "a\ud83d\ude00"})
    assert recorder.records[0].decision.allowed
    assert upstream.calls == [{"order_id": "a\U0001f600"}]


def test_arguments_that_fail_their_first_reading_are_denied_not_run() -> None:
    """74k records 2: a nested mapping that fails the gate's plain copy, then answers `note: n`
    to the engine and `note: evil` to the tool's copy: denied as no JSON, never run."""
    ran: list[dict[str, Any]] = []

    def tag(order_id: str, meta: dict[str, Any] | None = None) -> str:
        ran.append({"order_id": order_id, "meta": meta})
        return "ok"

    world = make_world()
    recorder = ListRecorder()
    store = world.store(world.bundle(policies=POLICY, tools={**TOOLS, "tag": TAGS}))
    gate = ToolGate(world.point(store, recorder), [Tool("tag", TAGS, tag)], clock=FixedClock(NOW))
    caller = world.credential(world.support_chain, world.support)
    result = gate.invoke(caller, "tag", {"order_id": "o1", "meta": Flipping(fail=1)})
    assert not result.allowed
    assert result.decision.outcome is Outcome.ARGUMENTS
    assert ran == []
    assert [r.decision.allowed for r in recorder.records] == [False]


def test_a_recorder_changing_the_record_does_not_change_what_the_tool_runs_with() -> None:
    """74k records 4: a recorder redacting the allowed record in place: the tool runs with the
    arguments judged."""
    ran: list[tuple[str, list[str]]] = []

    def tag(order_id: str, tags: list[str], meta: dict[str, Any] | None = None) -> str:
        ran.append((order_id, tags))
        return "ok"

    world = make_world()
    store = world.store(world.bundle(policies=POLICY, tools={**TOOLS, "tag": TAGS}))
    gate = ToolGate(
        world.point(store, Redacting()), [Tool("tag", TAGS, tag)], clock=FixedClock(NOW)
    )
    caller = world.credential(world.support_chain, world.support)
    assert gate.invoke(caller, "tag", {"order_id": "o1", "tags": ["late"]}).allowed
    assert ran == [("o1", ["late"])]


def test_a_recorder_changing_the_record_does_not_change_what_the_upstream_is_sent() -> None:
    """74k records 4, the MCP gate: the upstream is sent the arguments judged."""
    upstream, _ = _mcp({"order_id": "o1", "tags": ["late"]}, recorder=Redacting())
    assert upstream.calls == [{"order_id": "o1", "tags": ["late"]}]


def test_a_value_changed_after_it_was_queued_is_signed_as_it_was_queued() -> None:
    """74k records 3: the caller changes the list it handed `TraceBatcher.add` before the
    batch is sent: the signed record's disclosure is the list as it was queued."""
    held = Held()
    batcher = TraceBatcher(held.signer)
    batcher.set_head(None)
    args: dict[str, Any] = {"tags": ["late"]}
    batcher.add(
        RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("tag"), values={"args": args}),
        now=SIGNED,
    )
    args["tags"].append("vip")
    args["order_id"] = "o2"
    batch = batcher.next_batch(SIGNED)
    assert batch is not None
    (sent,) = batch.submission.records
    assert json.loads(sent.disclosures["args"].value) == {"tags": ["late"]}


class _Sink:
    """A record sink numbering what it is handed."""

    agent = Held().identifier

    def __init__(self) -> None:
        self.made = 0

    def record(self, content: Any, *, chain: Any = None, source: Any = None) -> Any:
        self.made += 1
        return SimpleNamespace(record=f"r{self.made}")


def test_the_last_decision_is_the_one_this_thread_recorded() -> None:
    """74k records 5: thread A records a decision, then thread B records one before A's lease
    asks for the last: A reads its own decision's id."""
    decisions = TraceDecisionRecorder(_Sink())
    record = DecisionRecord(NOW, None, EngineCall("tag", {"order_id": "o1"}), ALLOWED)
    recorded, read = threading.Event(), threading.Event()
    seen: list[str | None] = []

    def first() -> None:
        decisions.record(record)
        recorded.set()
        read.wait(5)
        seen.append(decisions.last)

    thread = threading.Thread(target=first)
    thread.start()
    recorded.wait(5)
    decisions.record(record)
    read.set()
    thread.join(5)
    assert (seen, decisions.last) == (["r1"], "r2")
