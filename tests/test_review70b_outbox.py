"""Review 70b (area: outbox): a second review of the trace outbox at a rotation (69a, 69o).

1. (a rotation blocked, high) A writer of node.db that stored a text value where a queued row
   holds bytes or a number (its attestation, hash, envelope, disclosures, chain or size: one
   `UPDATE trace_outbox SET hash = 'x'`) made every rotation of the agent fail (TypeError from
   the rotation's reading of the row): a `--compromised` one too, so the thief holding a copy
   of the agent's key kept it current, however often the owner tried to rotate it away. A row
   of the outbox is now read in the types its columns declare (`CAST`), and matched by its
   hash as such: the mangled row is then a row like any other (not the agent's: left, or set
   aside when it comes up; the compromised key's: set aside by the compromised rotation).
2. (the outbox stopped, medium) The same text value stopped the agent's outbox for good:
   each `next_batch` raised TypeError reading the row, so nothing after it was ever sent, the
   outbox filled and the agent stopped (OVER_LIMIT). The same reading (1) sends it or sets it
   aside.
3. (a rotation holding node.db's write lock unbounded, medium) A rotation signed again, in its
   transaction, every queued row of the key it retired: up to TRACE_OUTBOX_RECORDS (65,536),
   about 45 s here with a software key (0.7 ms a row, measured with 1,000), minutes on a
   token, while every other writer of node.db (a broker's leases, the daemon, another
   process's records) waited on the lock and failed past its 30 s busy timeout. Now a
   rotation signs at most MAX_ROTATION_RESIGNED_RECORDS (4,096) rows again; with more
   queued it is refused (TraceError OVER_LIMIT, nothing written): deliver them first (nothing
   is dropped), or rotate `--compromised`, which signs none again. Deferring the rest past the
   commit is not sound: a row signed by the retired key after it may be a thief's. (Review 71g,
   outbox2 1: the rest are left to the outbox, listed in a ticket the new key signs, so a
   thief's row is still told from them; the rotation is no longer refused.)
4. (the outbox stalled, low) Rows of the retired key queued again after a rotation (an
   operator's `--requeue` of those a compromised rotation set aside, or a writer of node.db
   moving them back) while the outbox's signer predated the rotation: `next_batch` signed
   them again with that signer, whose key the rotation had deleted, and raised KeyNotFound,
   each time, until the signer cache asked its source again (a minute later; an outbox
   driven by hand: never). Now it asks the source again, as `add` does, and sets them aside
   (ATTESTATION_STALE).
5. (a compromised rotation holding node.db's write lock, low-medium) A `--compromised`
   rotation, which signs no row again and so has no bound (3: nothing may keep a compromised
   key from rotating), verified the attestation of each of the agent's queued rows again,
   though they share one or two: three quarters of its time in the write lock (0.57 s for
   1,000 rows here, so about 37 s for a full outbox, past every other writer's 30 s busy
   timeout). Now a rotation verifies each distinct attestation once (at most
   MAX_TRACE_SUBMIT_KEYS remembered): 0.06 s for the 1,000 rows. (A rotation that signs
   them again resolves the new key once too, not once a row.)
6. (a delivered record set aside, low; fixed by review 71g, outbox2 2: on REPLAYED the
   client asks the service for the log's copy, `prove`, and the outbox counts the record
   delivered when the copy is the record it sent signed by a key of the agent's history) A
   batch the log appended whose answer was lost (the connection dropped, the sending process
   killed), then a rotation signs its rows again (69a) before the resend: the resend carries
   the new bytes under the same ids, the log refuses each REPLAYED (`another record of yours
   with this id is in the log`), and the outbox sets them aside as refused, each `record()`
   waiting on them answered with that refusal, though the log holds them. 69o's wave1c 3
   covers the answer that arrives. Taking REPLAYED for delivered is not sound (a thief
   holding the key could have put its own record under a queued id first); the node would
   have to read the log's copy (signed by the retired key, dated before the rotation) to
   tell.
7. (honest records set aside, medium) A rotation in another process (a `troth identity rotate`
   beside the daemon) that committed after the outbox read its stale rows and checked them
   (`_signed_since`: none of a newer change yet), before its transaction signed them again:
   the transaction read them as the rotation left them, signed by the new key, and set each
   aside (`made under a change not in the history`, the outbox's signer predating the
   rotation): the agent's honest records never reached the log. Now the check is made on the
   rows the transaction reads; a row of a newer change rolls it back and the signer is asked
   for again (once) before they are signed.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from tests.support.traces import older_service
from tests.test_review69a_outbox import _keys, _node_agent
from tests.test_trace_service import NOW, F, Service, service, tool  # noqa: F401 - a fixture
from troth import limits
from troth.clock import FixedClock
from troth.identity import Signer, VerifiedIdentity
from troth.node.services.trace import TraceClient
from troth.trace import outbox as outbox_module
from troth.trace import outbox_rotation
from troth.trace.outbox_store import OutboxRow
from troth.trace.signing import KeyEpoch, resolve_key
from troth.trace.submit import Status

_MANGLED = {
    "attestation": "UPDATE trace_outbox SET attestation = 'x'",
    "hash": "UPDATE trace_outbox SET hash = 'x'",
    "envelope": "UPDATE trace_outbox SET envelope = 'x'",
    "disclosures": "UPDATE trace_outbox SET disclosures = 'x'",
    "chain": "UPDATE trace_outbox SET chain = 'x'",
    "size": "UPDATE trace_outbox SET size = 'x'",
    "seq": "UPDATE trace_outbox SET seq = 'x'",
    "made": "UPDATE trace_outbox SET made = 'x'",
}
"""What a writer of node.db stores in the first of the agent's two queued rows."""


@pytest.mark.parametrize("compromised", [False, True], ids=["rotation", "compromised"])
def test_a_text_value_in_a_queued_row_does_not_block_a_rotation(
    tmp_path: Path, compromised: bool
) -> None:
    """Outbox 1: each mangling of the first row: the rotation commits (a compromised one
    too); the honest second row is signed by the new key (a compromised rotation: set aside,
    signed by no key of the new change)."""
    for name, mangle in _MANGLED.items():
        node, outbox = _node_agent(Path(tempfile.mkdtemp(dir=tmp_path)))
        try:
            agent = outbox.identifier.digest
            first, second = outbox.store.first(agent, 2)
            honest = second.record
            node.db.execute(mangle + " WHERE pos = ?", (first.pos,))
            node.identities.rotate("agent", now=NOW + 10, compromised=compromised)
            identity = node.identities.get("agent", now=NOW + 20).identity
            assert identity.change_count == (3 if compromised else 2), name
            if compromised:  # set aside (with the mangled row, or the row left queued)
                refused = outbox.store.refused(agent=agent, limit=10)
                assert honest in [r.record for r in refused], name
            else:
                last = outbox.store.first(agent, 10)[-1]
                assert last.record == honest, name
                assert resolve_key(identity, last.attestation).is_current, name
        finally:
            outbox.close()
            node.close()


def test_a_text_value_in_a_queued_row_does_not_stop_the_outbox(tmp_path: Path) -> None:
    """Outbox 2: each mangling of the first row: the outbox still reads its rows, and the
    honest second row goes (the mangled one first, refused by the log, or set aside at
    once)."""
    for name, mangle in _MANGLED.items():
        node, outbox = _node_agent(Path(tempfile.mkdtemp(dir=tmp_path)))
        try:
            agent = outbox.identifier.digest
            first, second = outbox.store.first(agent, 2)
            node.db.execute(mangle + " WHERE pos = ?", (first.pos,))
            batch = outbox.next_batch(NOW + 20) or outbox.next_batch(NOW + 20)  # (set aside)
            assert batch is not None, name
            assert second.record in [item.record for item in batch.items], name
        finally:
            outbox.close()
            node.close()


def test_a_rotation_signs_a_bounded_number_of_rows_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outbox 3: with more of the retired key's rows queued than a rotation signs again
    (the bound set to 1 here, 2 rows queued), the rotation signs the bound's worth again in
    its transaction and leaves the rest to the outbox (review 71g, outbox2 1: it was refused
    OVER_LIMIT, every routine rotation with it while the trace service was out of reach); a
    compromised rotation after it sets the row it signed aside, and the row it left is set
    aside when it comes up (the ticket listing it was signed by the compromised key)."""
    monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", 1, raising=False)
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        node.identities.rotate("agent", now=NOW + 10)
        assert _keys(outbox, node, NOW + 20) == [True, False]
        node.identities.rotate("agent", now=NOW + 30, compromised=True)
        assert len(outbox.store.refused(agent=agent, limit=10)) == 1
        assert outbox.next_batch(NOW + 40) is None
        assert outbox.store.first(agent, 10) == []
        refused = outbox.store.refused(agent=agent, limit=10)
        assert [r.reason for r in refused] == [F.ATTESTATION_STALE.value] * 2
    finally:
        outbox.close()
        node.close()


def test_a_row_a_compromised_rotation_set_aside_requeued_is_set_aside_again(
    tmp_path: Path,
) -> None:
    """Outbox 4: both rows a compromised rotation set aside, requeued, are set aside again
    when they come up (the outbox's signer fetched before the rotation): never signed."""
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        ids = [row.record for row in outbox.store.first(agent, 10)]
        node.identities.rotate("agent", now=NOW + 10, compromised=True)
        with outbox.store.transaction():
            assert outbox.store.requeue(ids) == ids
        assert outbox.next_batch(NOW + 20) is None
        assert outbox.store.first(agent, 10) == []
        refused = outbox.store.refused(agent=agent, limit=10)
        assert sorted(r.record for r in refused) == sorted(ids)
        assert {r.reason for r in refused} == {F.ATTESTATION_STALE.value}
    finally:
        outbox.close()
        node.close()


def test_a_compromised_rotation_verifies_a_shared_attestation_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outbox 5: three rows queued under one attestation, set aside by a compromised
    rotation: their attestation resolved once, not once a row."""
    node, outbox = _node_agent(tmp_path)
    try:
        outbox.add(tool("refund", n=3), now=NOW + 3)
        resolved: list[bytes] = []

        def counted(before: VerifiedIdentity, attestation: bytes) -> KeyEpoch:
            resolved.append(attestation)
            return resolve_key(before, attestation)

        monkeypatch.setattr(outbox_rotation, "resolve_key", counted)
        node.identities.rotate("agent", now=NOW + 10, compromised=True)
        assert len(outbox.store.refused(agent=outbox.identifier.digest, limit=10)) == 3
        assert len(resolved) == 1
    finally:
        outbox.close()
        node.close()


def resent_to_an_older_service(
    service: Service,  # noqa: F811
    tmp_path: Path,
    proved: Callable[[Service, str], str] | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """The agent's batch appended by the log, its answer lost; a rotation signs its rows
    again; the client sends them to a trace service of before review 70o (REPLAYED for a
    record signed again), whose `prove` answers `proved(service, id)` if given: the ids sent,
    those proved, and the reasons of the records set aside (none queued after)."""
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier
        sent = outbox.next_batch(NOW + 5)  # appended by the log; its answer lost
        assert sent is not None
        first = service.collector.submit(sent.submission, submitter=agent, now=NOW + 5)
        assert [r.status for r in first.results] == [Status.APPENDED] * 2
        node.identities.rotate("agent", now=NOW + 10)
        asked: list[str] = []
        shown = None if proved is None else functools.partial(proved, service)
        older = older_service(service.collector, agent, NOW + 11, asked, shown)
        asyncio.run(TraceClient(older, outbox, clock=FixedClock(NOW + 11))._send_one())
        assert outbox.pending() == 0
        refused = outbox.store.refused(agent=agent.digest, limit=10)
        return [item.record for item in sent.items], asked, [r.reason for r in refused]
    finally:
        outbox.close()
        node.close()


def test_a_delivered_batch_whose_answer_was_lost_is_not_set_aside_after_a_rotation(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Outbox 6 (closed by review 71g, outbox2 2): the log appended the batch in flight; its
    answer lost; the rotation signs the rows again; the resend, with the new bytes, is
    refused REPLAYED by a trace service of before review 70o (what it answered for the same
    id with other bytes): the client asks it for the log's copies (`prove`), the same
    records signed by the agent's retired key, and neither record is set aside."""
    sent, asked, refused = resent_to_an_older_service(service, tmp_path)
    assert asked == sent
    assert refused == []
    assert service.log.size() == 2


def test_a_rotation_between_the_outbox_reading_its_rows_and_signing_them_sets_none_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outbox 7: two stale rows; the rotation (another process's, here this node's) commits
    just after the outbox checked the rows it read: none is set aside, both go under the new
    key."""
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        with outbox.store.transaction():  # as a refusal of the record before them leaves them
            outbox.store.mark_stale(agent, 0)
        checked = outbox_module._signed_since

        def then_rotated(signer: Signer, rows: Iterable[OutboxRow]) -> bool:
            found = checked(signer, rows)
            if node.identities.get("agent", now=NOW + 10).identity.change_count == 1:
                node.identities.rotate("agent", now=NOW + 10)  # commits now
            return found

        monkeypatch.setattr(outbox_module, "_signed_since", then_rotated)
        batch = outbox.next_batch(NOW + 20)
        assert outbox.store.refused(agent=agent, limit=10) == []
        assert batch is not None
        assert len(batch.items) == 2
        assert _keys(outbox, node, NOW + 20) == [True, True]
    finally:
        outbox.close()
        node.close()
