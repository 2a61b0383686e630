"""Review 68r: 68i's trace outbox changes (records the log refuses BACKDATED, or outside its
window, wait queued; `troth trace outbox --requeue`; status `held_back`) (area: outbox).

1. (laundering, medium; strict xfail: a redesign) A thief holding a RETIRED key of the agent
   (a backup from before a rotation) and write access to node.db (not the current key: a
   vault keeps it) writes a record of its choosing into `trace_outbox_refused`, signed by the
   retired key and dated before the rotation (the only time that key can sign), reason
   `record dated before a checkpoint that precedes it`: just what the docs tell the operator
   to `--requeue`. Requeued, the outbox checks only that the envelope verifies as the agent's
   (`verify_envelope`: any change's key, at the record's time), and signs it again with the
   CURRENT key, dated now: the log appends the thief's record as the agent's, past the floor
   and past the key's retirement, both of which catch it when written into the log's file
   (troth.trace.backdating). The same row planted straight into `trace_outbox` as stale
   (review 55b's path) is signed the same way: 68i's requeue gives it a routine cover. The
   honest rows this path exists for (queued under the old key across a rotation, refused
   ATTESTATION_STALE) look the same in node.db, so the outbox cannot tell them apart
   without something node.db's writer cannot forge (a MAC under a vault key over each row,
   or rows re-signed at the rotation and retired-key rows refused after it). Closed by
   review 69a: the rotation signs the agent's queued rows again with the new key in its own
   transaction (troth.trace.outbox_rotation), and the outbox never signs again a row signed
   by a key an older change retired (set aside, ATTESTATION_STALE).
2. (status lost on restart, low) `held_back` lived in memory only: a node restarted while
   its records wait reported nothing held back (`troth node status`), and once the next
   answer refused them again, "waiting since" the restart, not since they began to wait.
   Now the outbox keeps it per agent in node.db (`trace_outbox_held`), in the transaction
   that reads the answer; a process opening the outbox reads it back.
3. (loss after the wait, medium) A record that waited out `record time outside the log's
   window` (68i, clock 5) had spent its 3 attempts doing so: once the clocks agreed, the first
   refusal the chain moving under it earns (another writer of the agent's records appended
   first: `per-agent chain broken`; a rotation: `signing key attested under an older
   change`), a refusal it is signed again for up to 3 times, set it aside for good at once
   (the durable outbox and the in-memory batcher alike). Now a record that waits out a clock
   is marked waiting (attempts = RESIGN_ATTEMPTS, stored), and a refusal of another kind
   after the wait starts its count afresh.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.support.traces import Held
from tests.test_review68i_clock import DAY, _ahead_then_right, _send
from tests.test_trace_service import NOW, F, Service, service, tool  # noqa: F401 - a fixture
from troth.storage import SqliteDatabase
from troth.trace.batcher import TraceBatcher
from troth.trace.outbox import TraceOutbox
from troth.trace.signing import keyid_of, open_envelope, sign_record


def test_a_record_signed_by_a_retired_key_is_not_signed_again_by_the_current_one(
    tmp_path: Path,
) -> None:
    """Outbox 1: the agent rotates; a thief with the retired key plants a record dated before
    the rotation among the records set aside BACKDATED; the operator requeues it. No batch
    may carry that record signed by the current key."""
    agent = Held(now=NOW - 1000)
    retired = agent.signer(NOW - 1000)
    agent.rotate(NOW - 500)
    current = agent.signer(NOW)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, agent.identifier, lambda now: agent.signer(now))
    forged = sign_record(
        retired, tool("wire_transfer"), seq=0, prev=None, time=NOW - 600, random=os.urandom
    )
    store, digest = outbox.store, agent.identifier.digest
    with store.transaction():  # what a writer of node.db can write with SQL
        store.insert(digest, forged, made=NOW - 600, chain=None, stale=False)
    (row,) = store.first(digest, 1)
    with store.transaction():
        store.set_aside(
            digest, row.pos, row.hash, reason=F.BACKDATED.value, detail="ahead", now=NOW
        )
    with store.transaction():  # the operator, as the docs tell
        assert store.requeue([forged.record.id]) == [forged.record.id]
    batch = outbox.next_batch(NOW)
    try:
        carried = [] if batch is None else batch.submission.records
        laundered = [
            open_envelope(r.envelope)
            for r in carried
            if open_envelope(r.envelope)[0].id == forged.record.id
        ]
        assert not [
            record for record, _, _, key in laundered if key == keyid_of(current.attestation)
        ]
    finally:
        outbox.close()
        db.close()


def test_held_back_survives_a_restart_with_its_since(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Outbox 2: records refused BACKDATED wait; the node's process stops; the next one's
    status says they are held back, since when they began to wait; once delivered, nothing
    is held back, after a restart too."""
    party = service.world.support
    floor = _ahead_then_right(service)
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    outbox.add(tool("refund"), now=NOW)
    batch = outbox.next_batch(NOW)
    assert batch is not None
    outbox.answered(_send(service, batch.submission, party), now=NOW)
    before = outbox.status()["held_back"]
    assert before is not None
    assert before["since"] == NOW
    outbox.close()
    db.close()
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    assert outbox.status()["held_back"] == before
    batch = outbox.next_batch(NOW + 60)
    assert batch is not None
    outbox.answered(_send(service, batch.submission, party), now=NOW + 60)
    assert outbox.status()["held_back"] == before  # still since NOW, not since the restart
    service.clock.advance(floor - service.clock.now())
    batch = outbox.next_batch(floor)
    assert batch is not None
    outbox.answered(_send(service, batch.submission, party), now=floor)
    assert outbox.status()["held_back"] is None
    outbox.close()
    db.close()
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    assert outbox.status()["held_back"] is None
    outbox.close()
    db.close()


def _chain_moved_after_the_wait(service: Service, batcher: Any) -> Any:  # noqa: F811
    """`batcher`'s record waits out the log's clock a day ahead (refused 5 times); the clock
    is put right; another writer appends a record of the same agent first; then `batcher`
    sends until nothing is pending. The record queued."""
    party = service.world.support
    service.clock.advance(DAY)
    queued = batcher.add(tool("refund"), now=NOW)
    for _ in range(5):
        batch = batcher.next_batch(NOW)
        assert batch is not None
        receipts = _send(service, batch.submission, party)
        assert receipts.results[0].reason is F.TIME_OUT_OF_RANGE
        batcher.answered(receipts, now=NOW)
    service.clock.advance(-DAY)
    other = TraceBatcher(lambda now: party.signer)
    other.set_head(None)
    first = other.add(tool("lookup_order"), now=NOW)
    batch = other.next_batch(NOW)
    assert batch is not None
    other.answered(_send(service, batch.submission, party), now=NOW)
    assert first.result() == 0
    for _ in range(4):
        if not batcher.pending():
            break
        batch = batcher.next_batch(NOW)
        assert batch is not None
        batcher.answered(_send(service, batch.submission, party), now=NOW)
    return queued


def test_a_record_that_waited_out_the_clock_is_signed_again_when_the_chain_moves(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Outbox 3 (durable outbox)."""
    party = service.world.support
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    queued = _chain_moved_after_the_wait(service, outbox)
    try:
        assert outbox.status()["refused"] == 0
        assert queued.result() == 1
        assert outbox.status()["held_back"] is None
    finally:
        outbox.close()
        db.close()


def test_a_record_that_waited_out_the_clock_in_memory_is_signed_again_when_the_chain_moves(
    service: Service,  # noqa: F811
) -> None:
    """Outbox 3 (in-memory batcher)."""
    party = service.world.support
    batcher = TraceBatcher(lambda now: party.signer)
    batcher.set_head(None)
    queued = _chain_moved_after_the_wait(service, batcher)
    assert queued.error is None
    assert queued.result() == 1
