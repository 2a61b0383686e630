"""Review 68i: honest records after a trace log's clock ran ahead (area: clock).

A log whose clock ran a day ahead signs a checkpoint dated then; once its clock is put right it
refuses every record dated more than MAX_CLOCK_SKEW_SECONDS before that checkpoint
(`BACKDATED`: the checkpoint is a floor for the records after it, and must stay one: reviews
63s, 66h, 67h, 67k, 68e) until real time catches up.

1. (outbox loss, high) The node's durable outbox took a BACKDATED receipt as a refusal for
   good: the record was set aside (`trace_outbox_refused`), never sent again, and so was each
   record after it in turn (each signed again, refused BACKDATED, set aside): every honest
   record an agent made during the lock-out was lost to the log, although the docs said
   "refused until then". Now a BACKDATED record stays queued (it counts against the outbox's
   bounds, TRACE_OUTBOX_RECORDS / TRACE_OUTBOX_BYTES: a full outbox refuses the next `add`,
   nothing is dropped), is signed again (dated when sent) after the client's backoff, with no
   attempt counted, and is appended once the log's floor has passed; the outbox's status says
   it waits (`held_back`).
2. (in-memory loss) The in-memory batcher (a client without an outbox) failed such a record
   the same way; it now keeps it queued (bounded by TRACE_QUEUE_RECORDS).
3. (pacing, part of 1) With the records kept, the client's pump would take a BACKDATED answer
   as a delivered batch and sign and send the next one at once, again and again for the whole
   lock-out; it now waits TRACE_BACKDATED_WAIT_SECONDS between such batches (its test failed
   before the fix because the record was dropped).
4. (set aside before) Records a version before this one set aside BACKDATED had no way back:
   `troth trace outbox --requeue RECORD_ID` (`OutboxStore.requeue`) queues one again, signed
   again when it comes up (only if its envelope verifies as its agent's).
5. (loss while ahead, high) While the log's clock runs ahead (before it is put right), every
   honest record is refused `record time outside the log's window`: the outbox signed it
   again 3 times at once and set it aside for good, and every record after it in turn. Now,
   its attempts spent, it waits as in 1 (WAITED_OUT) and is delivered once the clocks agree.

Each test failed on the code before the fix.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json
from tests.test_trace_service import NOW, F, Service, service, tool  # noqa: F401 - a fixture
from troth import limits
from troth.clock import FixedClock
from troth.encoding import cbor
from troth.errors import TraceError
from troth.identity import Identifier
from troth.node import open_node
from troth.node.services.trace import TraceClient
from troth.storage import SqliteDatabase
from troth.trace import verify_log
from troth.trace.batcher import TraceBatcher
from troth.trace.outbox import TraceOutbox
from troth.trace.submit import Receipts, Submission

DAY = 86_400
SKEW = limits.MAX_CLOCK_SKEW_SECONDS


def _ahead_then_right(at: Service) -> int:
    """The log's clock a day ahead for one checkpoint, then put right: that checkpoint's time."""
    at.clock.advance(DAY)
    ahead = at.log.checkpoint()
    at.clock.advance(-DAY)
    return ahead.time


def _send(at: Service, submission: Submission, party: Any) -> Receipts:
    """`submission` as it travels, to `at`'s collector, from `party`."""
    wire = cbor.decode(cbor.encode(submission.to_cbor()))
    return at.collector.submit(Submission.from_cbor(wire), submitter=party.identifier, now=NOW)


def test_an_outbox_keeps_records_refused_backdated_and_delivers_them_later(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Clock 1: three honest records made after the log's clock was put right are refused
    BACKDATED (the first; the others chained after it); they stay queued, none set aside, the
    status names the wait; once the log's time is past the floor they are appended, in order,
    and the log verifies."""
    party = service.world.support
    floor = _ahead_then_right(service)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    queued = [outbox.add(tool("lookup_order", n=n), now=NOW) for n in range(3)]
    for _ in range(3):  # refused again and again while the lock-out lasts
        batch = outbox.next_batch(service.clock.now())
        assert batch is not None
        receipts = _send(service, batch.submission, party)
        assert receipts.results[0].reason is F.BACKDATED
        outbox.answered(receipts, now=service.clock.now())
        service.clock.advance(600)
    status = outbox.status()
    assert (status["queued"], status["refused"]) == (3, 0)
    assert status["held_back"]["reason"] == F.BACKDATED.value
    assert not any(q.done for q in queued)
    service.clock.advance(floor - service.clock.now())  # real time caught up
    while outbox.pending():
        batch = outbox.next_batch(service.clock.now())
        assert batch is not None
        outbox.answered(_send(service, batch.submission, party), now=service.clock.now())
    assert [q.result() for q in queued] == [0, 1, 2]
    assert outbox.status()["refused"] == 0
    assert outbox.status()["held_back"] is None
    assert verify_log(service.log).size == 3
    outbox.close()
    db.close()


def test_the_in_memory_batcher_keeps_records_refused_backdated(
    service: Service,  # noqa: F811
) -> None:
    """Clock 2: the in-memory batcher keeps a record refused BACKDATED queued (it was failed)
    and delivers it once the log's floor has passed."""
    party = service.world.support
    floor = _ahead_then_right(service)
    batcher = TraceBatcher(lambda now: party.signer)
    batcher.set_head(None)
    queued = batcher.add(tool("refund"), now=NOW)
    first = batcher.next_batch(NOW)
    assert first is not None
    receipts = _send(service, first.submission, party)
    assert receipts.results[0].reason is F.BACKDATED
    batcher.answered(receipts)
    assert not queued.done
    assert batcher.pending() == 1
    service.clock.advance(floor - service.clock.now())
    again = batcher.next_batch(floor)
    assert again is not None
    batcher.answered(_send(service, again.submission, party))
    assert queued.result() == 0


def test_the_pump_waits_between_batches_refused_backdated(
    service: Service,  # noqa: F811
) -> None:
    """Clock 3: a client whose batch the log refuses BACKDATED keeps the record and waits
    (TRACE_BACKDATED_WAIT_SECONDS) before it signs and sends it again: in a third of a second
    it sent one batch, not one after another."""
    party = service.world.support
    _ahead_then_right(service)
    sent: list[Receipts] = []

    async def send(method: str, arguments: Any) -> Any:
        assert method == "submit"
        sent.append(_send(service, Submission.from_cbor(arguments), party))
        return sent[-1].to_cbor()

    async def test() -> None:
        batcher = TraceBatcher(lambda now: party.signer)
        batcher.set_head(None)
        client = TraceClient(send, batcher, clock=FixedClock(NOW), flush_seconds=0.0)
        queued = client.record(tool("refund"))
        client.start()
        await asyncio.sleep(0.3)
        await client.stop()
        assert not queued.done
        assert batcher.pending() == 1

    asyncio.run(test())
    assert len(sent) == 1
    assert sent[0].results[0].reason is F.BACKDATED
    assert limits.TRACE_BACKDATED_WAIT_SECONDS >= 10


def test_records_waiting_out_a_backdated_refusal_survive_a_restart(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Clock 1 (restart): the node's process stops while its records wait; the next one
    finds them queued (none set aside) and delivers them once the log's floor has passed."""
    party = service.world.support
    floor = _ahead_then_right(service)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    for n in range(2):
        outbox.add(tool("refund", n=n), now=NOW)
    batch = outbox.next_batch(NOW)
    assert batch is not None
    outbox.answered(_send(service, batch.submission, party), now=NOW)
    outbox.close()
    db.close()
    service.clock.advance(floor - service.clock.now())
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    assert (outbox.status()["queued"], outbox.status()["refused"]) == (2, 0)
    while outbox.pending():
        batch = outbox.next_batch(floor)
        assert batch is not None
        outbox.answered(_send(service, batch.submission, party), now=floor)
    assert outbox.status()["refused"] == 0
    assert verify_log(service.log).size == 2
    outbox.close()
    db.close()


def test_records_waiting_out_a_backdated_refusal_keep_the_outbox_bounded(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Clock 1 (bound): the outbox (here 3 records) full of records the log refuses
    BACKDATED: the next `add` is refused OVER_LIMIT; the three stay queued, none set aside,
    and the log holds none."""
    party = service.world.support
    _ahead_then_right(service)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer, max_records=3)
    queued = [outbox.add(tool("refund", n=n), now=NOW) for n in range(3)]
    for _ in range(2):
        batch = outbox.next_batch(service.clock.now())
        assert batch is not None
        receipts = _send(service, batch.submission, party)
        assert receipts.results[0].reason is F.BACKDATED
        outbox.answered(receipts, now=service.clock.now())
    with pytest.raises(TraceError) as full:
        outbox.add(tool("refund", n=3), now=NOW)
    assert full.value.reason is F.OVER_LIMIT
    status = outbox.status()
    assert (status["queued"], status["refused"]) == (3, 0)
    assert not any(q.done for q in queued)
    assert service.head_of(party).head is None  # the log holds none of them
    outbox.close()
    db.close()


def _set_aside_as_before(outbox: TraceOutbox, agent: bytes, now: int) -> None:
    """What a version before 68i did with the first queued record refused BACKDATED."""
    (row,) = outbox.store.first(agent, 1)
    with outbox.store.transaction():
        outbox.store.set_aside(
            agent, row.pos, row.hash, reason=F.BACKDATED.value, detail="ahead", now=now
        )


def test_a_record_set_aside_backdated_before_is_queued_again_and_delivered(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Clock 4: a record set aside BACKDATED (as before the fix), one queued after it: the
    store's `requeue` puts it back (an unknown id is not queued); both are delivered once the
    log's floor has passed, the log verifies, nothing is left set aside."""
    party = service.world.support
    floor = _ahead_then_right(service)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    agent = party.identifier.digest
    first = outbox.add(tool("refund"), now=NOW)
    _set_aside_as_before(outbox, agent, NOW)
    outbox.add(tool("refund", n=1), now=NOW)
    assert (outbox.status()["queued"], outbox.status()["refused"]) == (1, 1)
    with outbox.store.transaction():
        assert outbox.store.requeue([first.record, "no-such-record"]) == [first.record]
    assert (outbox.status()["queued"], outbox.status()["refused"]) == (2, 0)
    service.clock.advance(floor - service.clock.now())
    while outbox.pending():
        batch = outbox.next_batch(floor)
        assert batch is not None
        outbox.answered(_send(service, batch.submission, party), now=floor)
    assert outbox.status()["refused"] == 0
    assert verify_log(service.log).size == 2
    outbox.close()
    db.close()


def test_the_cli_queues_a_record_set_aside_again(troth_home: Path) -> None:
    """Clock 4 (CLI): `troth trace outbox --requeue RECORD_ID` moves a record set aside
    back to the queue (JSON `requeued`; an id not set aside: exit 2)."""
    run("node", "create", "agent")
    now = int(time.time())
    with open_node("agent", home=troth_home) as node:
        identities = node.identities
        agent = Identifier(identities.find("agent").identifier)
        outbox = TraceOutbox(node.db, agent, lambda now: identities.signer("agent", now=now))
        refused = outbox.add(tool("refund"), now=now)
        _set_aside_as_before(outbox, agent.digest, now)
        outbox.close()
    run("trace", "outbox", "--node", "agent", "--requeue", "no-such-record", code=2)
    after = run_json("trace", "outbox", "--node", "agent", "--requeue", refused.record)
    assert after["requeued"] == [refused.record]
    assert after["refused"] == []
    assert (after["agents"][0]["queued"], after["agents"][0]["refused"]) == (1, 0)
    text = run("trace", "outbox", "--node", "agent").stdout
    assert "1 queued" in text


def test_records_refused_while_the_logs_clock_is_ahead_wait_for_it(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Clock 5: while the log's clock runs a day ahead, every honest record is refused
    `record time outside the log's window`; the outbox signed it again 3 times and set it
    aside for good (and each record after it). Now, its attempts spent, it waits queued (the
    clocks disagree: the fix is a clock) and is delivered once the log's clock is put right
    (here before it signed any checkpoint, so no floor is left)."""
    party = service.world.support
    service.clock.advance(DAY)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    queued = [outbox.add(tool("refund", n=n), now=NOW) for n in range(2)]
    for _ in range(5):
        batch = outbox.next_batch(NOW)
        assert batch is not None
        receipts = _send(service, batch.submission, party)
        assert receipts.results[0].reason is F.TIME_OUT_OF_RANGE
        outbox.answered(receipts, now=NOW)
    status = outbox.status()
    assert (status["queued"], status["refused"]) == (2, 0)
    assert status["held_back"]["reason"] == F.TIME_OUT_OF_RANGE.value
    service.clock.advance(-DAY)
    while outbox.pending():
        batch = outbox.next_batch(NOW)
        assert batch is not None
        outbox.answered(_send(service, batch.submission, party), now=NOW)
    assert [q.result() for q in queued] == [0, 1]
    assert outbox.status()["held_back"] is None
    outbox.close()
    db.close()
