"""Review 68r: attacks on 68i's trace outbox changes (area: outbox) that did not work. Each
test names the defence it pins.

- `--requeue` of an id that is queued, not set aside, or of one twice: nothing moves (the
  store moves only a row of `trace_outbox_refused`, once), and the queued rows are as they were.
- requeue while the pump has a batch in flight: the batch's answer settles its rows (named by
  position and hash), the requeued record is signed again after them and delivered; the log
  verifies.
- re-dated "when sent" hides when the agent acted: the record keeps its id, whose first 48 bits
  (UUIDv7) are the second it was made, signed with the rest; only its `time` (when the log
  could take it) moves, never below `now - SEND_LATE`, so the floor still holds the record.
- a record refused for another reason than a clock (REPLAYED: an id the log holds) taken for
  one that waits: the in-memory batcher fails it (`Queued.error`), holds nothing back, and the
  record after it is delivered (no head-of-line block).
- a requeued row whose envelope was edited (its signature broken) in node.db: set aside again
  when it comes up, never signed by the agent nor sent.
- a gate recording into its node's own log during the lock-out (68i left: BACKDATED raised to
  the caller): the decision's record fails, so `invoke` raises and the tool does not run (fail
  closed: no call unrecorded).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.support.gates import make_world
from tests.support.traces import Held, open_log
from tests.test_review68i_clock import DAY, _send
from tests.test_trace_service import NOW, F, Service, service, tool  # noqa: F401 - a fixture
from tests.test_trace_wiring import NOW as GATE_NOW
from troth.clock import FixedClock
from troth.errors import TraceError
from troth.gates import DecisionPoint, Tool, ToolGate
from troth.storage import SqliteDatabase
from troth.trace import TraceRecorder, verify_log
from troth.trace.adapters import TraceDecisionRecorder
from troth.trace.batcher import SEND_LATE, TraceBatcher
from troth.trace.outbox import TraceOutbox
from troth.trace.signing import open_envelope


def _outbox_with_one_set_aside(at: Service, tmp_path: Path) -> tuple[TraceOutbox, str, str]:
    """An outbox whose first record was set aside BACKDATED (as before 68i) and whose second
    is queued: (outbox, the set-aside id, the queued id)."""
    party = at.world.support
    outbox = TraceOutbox(
        SqliteDatabase(tmp_path / "node.db"), party.identifier, lambda n: party.signer
    )
    agent = party.identifier.digest
    first = outbox.add(tool("refund"), now=NOW)
    (row,) = outbox.store.first(agent, 1)
    with outbox.store.transaction():
        outbox.store.set_aside(
            agent, row.pos, row.hash, reason=F.BACKDATED.value, detail="ahead", now=NOW
        )
    second = outbox.add(tool("refund", n=1), now=NOW)
    return outbox, first.record, second.record


def test_requeue_moves_only_a_set_aside_record_and_only_once(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    outbox, aside, queued = _outbox_with_one_set_aside(service, tmp_path)
    agent = service.world.support.identifier.digest
    rows = outbox.store.first(agent, 8)
    with outbox.store.transaction():
        assert outbox.store.requeue([queued]) == []  # queued, not set aside
    assert outbox.store.first(agent, 8) == rows
    with outbox.store.transaction():
        assert outbox.store.requeue([aside, aside]) == [aside]
    with outbox.store.transaction():
        assert outbox.store.requeue([aside]) == []
    status = outbox.status()
    assert (status["queued"], status["refused"]) == (2, 0)
    outbox.close()
    outbox.store.db.close()


def test_requeue_while_a_batch_is_in_flight_delivers_both_keeping_when_it_was_made(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    party = service.world.support
    outbox, aside, _queued = _outbox_with_one_set_aside(service, tmp_path)
    later = NOW + SEND_LATE + 50  # the requeued record waited past half the window
    service.clock.advance(later - service.clock.now())
    batch = outbox.next_batch(later)
    assert batch is not None  # the queued record, in flight
    with outbox.store.transaction():  # the operator, meanwhile
        assert outbox.store.requeue([aside]) == [aside]
    outbox.answered(_send(service, batch.submission, party), now=later)
    again = outbox.next_batch(later)
    assert again is not None
    (moved,) = [open_envelope(r.envelope)[0] for r in again.submission.records]
    assert moved.id == aside
    assert int(moved.id[:12], 16) // 1000 == NOW  # made at NOW: in what it signed
    assert moved.time == later - SEND_LATE  # taken now, within the log's window
    receipts = _send(service, again.submission, party)
    assert receipts.results[0].delivered
    outbox.answered(receipts, now=later)
    assert (outbox.pending(), outbox.status()["refused"]) == (0, 0)
    assert verify_log(service.log).size == 2
    outbox.close()
    outbox.store.db.close()


def test_a_refusal_that_is_no_clock_is_not_held_back(
    service: Service,  # noqa: F811
) -> None:
    party = service.world.support
    batcher = TraceBatcher(lambda now: party.signer)
    batcher.set_head(None)
    first = batcher.add(tool("refund"), now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    batcher.answered(_send(service, batch.submission, party), now=NOW)
    assert first.result() == 0
    replayed = batcher.add(dataclasses.replace(tool("refund"), id=first.record), now=NOW)
    after = batcher.add(tool("refund", n=1), now=NOW)
    while batcher.pending():
        batch = batcher.next_batch(NOW)
        assert batch is not None
        batcher.answered(_send(service, batch.submission, party), now=NOW)
    assert replayed.error is not None
    assert replayed.error.reason is F.REPLAYED
    assert after.result() == 1
    assert batcher.held_back is None


def test_a_requeued_row_edited_in_node_db_is_set_aside_again_unsigned(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    outbox, aside, queued = _outbox_with_one_set_aside(service, tmp_path)
    db = outbox.store.db
    with db.transaction():  # a writer of node.db without the agent's key
        (envelope,) = db.fetch_one(
            "SELECT envelope FROM trace_outbox_refused WHERE record = ?", (aside,)
        )
        broken = bytes(envelope[:-8]) + bytes(8 * [0x41])
        db.execute("UPDATE trace_outbox_refused SET envelope = ? WHERE record = ?", (broken, aside))
    with outbox.store.transaction():
        assert outbox.store.requeue([aside]) == [aside]
    sent: list[str] = []
    while outbox.pending():
        batch = outbox.next_batch(NOW)
        if batch is None:
            continue
        sent += [open_envelope(r.envelope)[0].id for r in batch.submission.records]
        outbox.answered(_send(service, batch.submission, service.world.support), now=NOW)
    assert aside not in sent
    assert queued in sent
    assert [r.record for r in outbox.store.refused(agent=None, limit=5)] == [aside]
    outbox.close()
    db.close()


def refund(order_id: str, amount: int) -> str:
    """Refund part of an order."""
    ran.append(order_id)
    return f"refunded {amount} on {order_id}"


ran: list[str] = []


def test_a_gate_on_its_nodes_own_log_locked_out_runs_no_tool_unrecorded(tmp_path: Path) -> None:
    world = make_world()
    clock = FixedClock(GATE_NOW)
    log = open_log(tmp_path / "trace.db", clock, Held(now=GATE_NOW - 10))
    clock.advance(DAY)  # the node's clock ran a day ahead for a checkpoint, then put right
    log.checkpoint()
    clock.advance(-DAY)
    recorder = TraceRecorder(log, world.support.signer, clock=clock)
    point = DecisionPoint(
        world.store(world.bundle()), world.held_feed, recorder=TraceDecisionRecorder(recorder)
    )
    gate = ToolGate(point, [Tool.from_function(refund)], clock=FixedClock(GATE_NOW))
    member = world.credential(world.support_chain, world.support)
    ran.clear()
    with pytest.raises(TraceError) as refused:
        gate.invoke(member, "refund", {"order_id": "o1", "amount": 20})
    assert refused.value.reason is F.BACKDATED
    assert ran == []
    assert verify_log(log).size == 0
