"""Review 70o (area: outbox2): attacks on 70b's fixes to the outbox at a rotation that did not
work.

- A planted stale row signed by a stranger's key (its attestation of no change of the agent)
  keeps the outbox's signer looking behind: the outbox asks its source again a bounded number
  of times in one `next_batch` (an answer no newer ends it), sets the row aside, and sends the
  honest rows after it: no spin, no stall.
- Another process rotating the agent at every answer the outbox asks for: one `next_batch`
  asks at most MAX_OUTBOX_SIGNER_RENEWALS times again, then signs with what it holds.
- Two rows sharing one attestation, the second's signature broken: the memo of the rotation
  (review 70b, outbox 5) answers only whether the attestation names the key before the
  rotation; each row's signature is still verified, and the broken one is not signed again.
- The MAX_ROTATION_RESIGNED_RECORDS count: rows set aside and another identity's row filed
  under the agent are not counted (the bound set to the agent's queued rows, the rotation
  commits).
- A text `hash` of any length or a blob of the wrong length: the row is matched by the hash
  read as a blob, signed again by the rotation as its envelope says (the column made right).
- A row's `made` set to the text `'1e3'` (CAST to 1): the rotation dates it no earlier than
  the log's window allows (`resign_time`), and no content of it changes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.traces import Held
from tests.test_review69a_outbox import _keys, _node_agent
from tests.test_trace_service import NOW, tool
from troth import limits
from troth.crypto import sha256
from troth.identity import Signer
from troth.node import Node
from troth.trace.batcher import SEND_LATE
from troth.trace.outbox import TraceOutbox
from troth.trace.signing import KeyEpoch, VerifiedRecord, open_envelope, resolve_key, sign_record


def _stranger_row(outbox: TraceOutbox, *, stale: bool) -> VerifiedRecord:
    """A record signed by another identity's key, filed under the agent with SQL."""
    stranger = Held(now=NOW - 1000).signer(NOW - 1000)
    forged = sign_record(
        stranger, tool("wire_transfer"), seq=0, prev=None, time=NOW + 5, random=os.urandom
    )
    with outbox.store.transaction():
        outbox.store.insert(outbox.identifier.digest, forged, made=NOW + 5, chain=None, stale=stale)
    return forged


def _counted_source(outbox: TraceOutbox, node: Node, rotate: bool) -> list[int]:
    """Count (and, `rotate`, rotate the agent at) each time the outbox asks its source."""
    asked: list[int] = []
    fetch = outbox._signer

    def counted(now: int, *, renew: bool = False) -> tuple[Signer, KeyEpoch]:
        asked.append(now)
        if rotate and renew:
            node.identities.rotate("agent", now=NOW + 10 + len(asked))
        return fetch(now, renew=renew)

    outbox._signer = counted  # type: ignore[method-assign]
    return asked


def test_a_planted_row_of_no_change_of_the_agent_is_set_aside_without_a_spin(
    tmp_path: Path,
) -> None:
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        forged = _stranger_row(outbox, stale=True)
        asked = _counted_source(outbox, node, rotate=False)
        batch = outbox.next_batch(NOW + 20)
        assert batch is not None
        assert len(batch.items) == 2
        assert [r.record for r in outbox.store.refused(agent=agent)] == [forged.record.id]
        assert len(asked) <= 3
    finally:
        outbox.close()
        node.close()


def test_a_rotation_at_every_answer_ends_after_the_bound(tmp_path: Path) -> None:
    node, outbox = _node_agent(tmp_path)
    try:
        with outbox.store.transaction():
            outbox.store.mark_stale(outbox.identifier.digest, 0)
        asked = _counted_source(outbox, node, rotate=True)
        outbox.next_batch(NOW + 60)
        assert len(asked) <= limits.MAX_OUTBOX_SIGNER_RENEWALS + 2
    finally:
        outbox.close()
        node.close()


def test_a_shared_attestation_does_not_spare_a_row_its_signature_check(tmp_path: Path) -> None:
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        first, second = outbox.store.first(agent, 2)
        assert first.attestation == second.attestation
        broken = second.envelope[:-1] + bytes([second.envelope[-1] ^ 1])
        node.db.execute("UPDATE trace_outbox SET envelope = ? WHERE pos = ?", (broken, second.pos))
        node.identities.rotate("agent", now=NOW + 10)
        rows = outbox.store.first(agent, 10)
        assert _keys(outbox, node, NOW + 20) == [True, False]
        assert rows[1].envelope == broken
    finally:
        outbox.close()
        node.close()


def test_rows_set_aside_and_a_strangers_row_are_not_counted_by_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", 2, raising=False)
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        outbox.add(tool("refund", n=3), now=NOW + 3)
        third = outbox.store.first(agent, 3)[2]
        with outbox.store.transaction():
            assert outbox.store.set_aside(
                agent, third.pos, third.hash, reason="r", detail="d", now=NOW + 4
            )
        forged = _stranger_row(outbox, stale=False)
        node.identities.rotate("agent", now=NOW + 10)
        identity = node.identities.get("agent", now=NOW + 20).identity
        assert identity.change_count == 2
        rows = outbox.store.first(agent, 10)
        assert [resolve_key(identity, r.attestation).is_current for r in rows[:2]] == [True] * 2
        assert rows[2].envelope == forged.envelope
    finally:
        outbox.close()
        node.close()


@pytest.mark.parametrize("stored", ["'x'", "X'0102'", "'" + "a" * 32 + "'"])
def test_a_mangled_hash_column_is_signed_as_the_envelope_says(tmp_path: Path, stored: str) -> None:
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        first = outbox.store.first(agent, 2)[0]
        node.db.execute(f"UPDATE trace_outbox SET hash = {stored} WHERE pos = ?", (first.pos,))  # noqa: S608
        node.identities.rotate("agent", now=NOW + 10)
        row = outbox.store.first(agent, 2)[0]
        assert _keys(outbox, node, NOW + 20) == [True, True]
        record, payload, _, _ = open_envelope(row.envelope)
        assert record.id == first.record
        assert row.hash == sha256(payload)
    finally:
        outbox.close()
        node.close()


def test_a_text_made_dates_a_row_within_the_window_only(tmp_path: Path) -> None:
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        first = outbox.store.first(agent, 2)[0]
        node.db.execute("UPDATE trace_outbox SET made = '1e3' WHERE pos = ?", (first.pos,))
        node.identities.rotate("agent", now=NOW + 10)
        row = outbox.store.first(agent, 2)[0]
        identity = node.identities.get("agent", now=NOW + 20).identity
        assert resolve_key(identity, row.attestation).is_current  # signed again
        signed = open_envelope(row.envelope)[0]
        assert signed.time >= NOW + 10 - SEND_LATE  # within the window, not at 1
        assert signed.digests == open_envelope(first.envelope)[0].digests
    finally:
        outbox.close()
        node.close()
