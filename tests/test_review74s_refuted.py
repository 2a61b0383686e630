"""Review 74s: attacks on 74p's lease-to-decision link and deep-value errors that did not work
(records3).

- `TraceDecisionRecorder.recorded` keyed by equality: two calls with identical arguments and
  decisions through one gate each link their own lease to their own record (the map is keyed
  by the object, `id` checked against a live weak reference, never by dataclass equality).
- a recorded `DecisionRecord` freed and its id reused by a new object: the entry goes with the
  record (its weak reference's callback), and a new object is never answered the old id.
- concurrent `record`/`recorded` on several threads: each thread's records answer their own
  ids, and nothing is kept once they are freed.
- `last` in an asyncio task made before the call's decision (its context copied then): None,
  never another call's; a task made after it reads it.
- a value nested past the encoder or cyclic: `TraceRecorder.record` raises ValueError (what
  docs/traces.md promises for a value signing refuses), the node outbox's client TraceError
  MALFORMED, nothing bare (RecursionError) from either.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.parties import make_party
from tests.support.traces import NOW as SIGNED
from tests.support.traces import Held, open_log, recorder, unreachable_outbox
from tests.test_review74k_records import ALLOWED, NOW, _Sink
from tests.test_review74p_records2 import nested, tag_gate
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.gates.engine import ToolCall as EngineCall
from troth.gates.point import DecisionRecord
from troth.storage import SqliteDatabase
from troth.trace import Kind, RecordContent, ToolCall
from troth.trace.adapters import TraceDecisionRecorder
from troth.vault import SoftwareVault


def _decision(order: str = "o1") -> DecisionRecord:
    return DecisionRecord(NOW, None, EngineCall("tag", {"order_id": order}), ALLOWED)


class _ByRecord:
    """A lease provider linking each lease by the record it is handed (`recorded`)."""

    def __init__(self, decisions: TraceDecisionRecorder) -> None:
        self.decisions = decisions
        self.linked: list[str | None] = []

    @contextmanager
    def _leased(self, record: DecisionRecord) -> Iterator[None]:
        self.linked.append(self.decisions.recorded(record))
        yield None

    def lease(self, record: DecisionRecord) -> Any:
        return self._leased(record)


def test_identical_calls_each_link_their_own_record() -> None:
    """Refuted: two calls equal in every field through one gate: the second's lease links to
    the second's record, not to the first (equal) one's."""
    decisions = TraceDecisionRecorder(_Sink())
    leases = _ByRecord(decisions)
    gate, caller = tag_gate(decisions, leases)
    for _ in range(2):
        assert gate.invoke(caller, "tag", {"order_id": "o1"}).allowed
    assert leases.linked == ["r1", "r2"]


def test_a_freed_record_leaves_nothing_for_a_new_object() -> None:
    """Refuted: a recorded record freed: its entry goes; new objects made after it (the
    allocator may give one its address) are answered None."""
    decisions = TraceDecisionRecorder(_Sink())
    record = _decision()
    decisions.record(record)
    del record
    gc.collect()
    assert decisions._recorded == {}
    fresh = [_decision() for _ in range(200)]
    assert [decisions.recorded(r) for r in fresh] == [None] * len(fresh)


class _CountingSink:
    """A record sink numbering what it is handed, from several threads."""

    agent = Held().identifier

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def record(self, content: Any, *, chain: Any = None, source: Any = None) -> Any:
        return SimpleNamespace(record=f"r{next(self._ids)}")


def test_concurrent_records_each_answer_their_own_id() -> None:
    """Refuted: four threads recording and asking at once: each record answers the id its own
    `last` read right after recording it; nothing is kept once the records are freed."""
    decisions = TraceDecisionRecorder(_CountingSink())
    wrong: list[tuple[str | None, str | None]] = []

    def work() -> None:
        for _ in range(200):
            record = _decision()
            decisions.record(record)
            pair = (decisions.recorded(record), decisions.last)
            if pair[0] is None or pair[0] != pair[1]:
                wrong.append(pair)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    gc.collect()
    assert (wrong, decisions._recorded) == ([], {})


def test_a_task_made_before_the_decision_reads_none() -> None:
    """Refuted: a task made before the call's decision (its context copied then) reads None,
    never another call's decision; one made after it reads the decision."""
    decisions = TraceDecisionRecorder(_Sink())

    async def main() -> tuple[str | None, str | None]:
        go = asyncio.Event()

        async def read() -> str | None:
            await go.wait()
            return decisions.last

        before = asyncio.create_task(read())
        decisions.record(_decision())
        after = asyncio.create_task(read())
        go.set()
        return await before, await after

    assert asyncio.run(main()) == (None, "r1")


def _cyclic() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize("value", [nested(5000), _cyclic()], ids=["deep", "cyclic"])
def test_a_value_past_the_encoder_raises_each_entrys_documented_error(
    tmp_path: Path, value: Any
) -> None:
    """Refuted: nested 5000 deep or cyclic: `TraceRecorder.record` ValueError (docs/traces.md:
    signing refuses it with ValueError), the node outbox's client TraceError MALFORMED."""
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), values={"v": value})
    who, clock = Held(), FixedClock(SIGNED)
    with pytest.raises(ValueError, match="not a JSON value"):
        recorder(open_log(tmp_path / "trace.db", clock, who), who, clock).record(content)
    party = make_party(SoftwareVault(), now=SIGNED - 100)
    client = unreachable_outbox(
        SqliteDatabase(tmp_path / "node.db"), party, max_records=4, now=SIGNED
    )
    with pytest.raises(TraceError) as refused:
        client.record(content)
    assert refused.value.reason is TraceFailure.MALFORMED
