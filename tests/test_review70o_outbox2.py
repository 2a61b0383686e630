"""Review 70o (area: outbox2): a review of 70b's fixes to the trace outbox at a rotation.

1. (the agent's key signs what the row did not say, low) A rotation signed each queued row of
   the retired key again at the seq its `seq` column held (read `CAST(seq AS INTEGER)`), not
   the seq its envelope says: a writer of node.db storing `7.9`, `'1e3'` or any integer there
   had the agent's new key sign the record at a seq of its choosing, under the prev the
   envelope names (two signed records under one id at two places of the chain); a negative
   one failed the re-signing and left the honest row to be set aside (ATTESTATION_STALE) when
   it came up. The rotation now signs it again at its envelope's seq, as the envelope says.
2. (honest records set aside, low) The outbox whose stale rows a rotation elsewhere signed
   again (review 70b, outbox 7) asked for its signer again once: a second rotation committed
   between that answer and the transaction that signed the rows had them read signed by a key
   of a change the renewed signer's history did not hold, and each was set aside (`made under
   a change not in the history`): the agent's honest records lost to the log. The signer is
   now asked again as long as each answer is a newer change of the agent than the one before
   (at most OUTBOX_SIGNER_RENEWALS times); a row of a change no answer holds (planted) is set
   aside, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.test_review69a_outbox import _keys, _node_agent
from tests.test_trace_service import NOW, Service, service  # noqa: F401 - a fixture
from troth.identity import Signer
from troth.trace import outbox as outbox_module
from troth.trace.outbox_store import OutboxRow
from troth.trace.signing import KeyEpoch, open_envelope, resolve_key
from troth.trace.submit import Status


@pytest.mark.parametrize("stored", ["7.9", "'1e3'", "5", "-1"])
def test_a_rotation_signs_a_row_again_at_the_seq_its_envelope_says(
    tmp_path: Path, stored: str
) -> None:
    """Outbox2 1: the first row's `seq` column set to `stored` by a writer of node.db: the
    rotation signs it again with the new key at the seq its envelope says (0)."""
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        first = outbox.store.first(agent, 2)[0]
        signed = open_envelope(first.envelope)[0].seq
        node.db.execute(f"UPDATE trace_outbox SET seq = {stored} WHERE pos = ?", (first.pos,))  # noqa: S608
        node.identities.rotate("agent", now=NOW + 10)
        identity = node.identities.get("agent", now=NOW + 20).identity
        row = next(r for r in outbox.store.first(agent, 10) if r.record == first.record)
        assert resolve_key(identity, row.attestation).is_current
        assert open_envelope(row.envelope)[0].seq == signed
    finally:
        outbox.close()
        node.close()


def test_two_rotations_while_the_outbox_signs_its_stale_rows_set_none_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outbox2 2: two stale rows; a rotation commits before the outbox's transaction reads
    them, a second one just after the outbox asked for its signer again: none is set aside,
    both go under the newest key."""
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        with outbox.store.transaction():  # as a refusal of the record before them leaves them
            outbox.store.mark_stale(agent, 0)
        checked, asked = outbox_module._signed_since, outbox._signer
        rotations = [NOW + 10, NOW + 12]

        def then_rotated(signer: Signer, rows: Iterable[OutboxRow]) -> bool:
            found = checked(signer, rows)
            if len(rotations) == 2:  # the rows checked: a rotation elsewhere commits
                node.identities.rotate("agent", now=rotations.pop(0))
            return found

        def asked_then_rotated(now: int, *, renew: bool = False) -> tuple[Signer, KeyEpoch]:
            fetched = asked(now, renew=renew)
            if renew and len(rotations) == 1:  # asked again: a second one commits just after
                node.identities.rotate("agent", now=rotations.pop(0))
            return fetched

        monkeypatch.setattr(outbox_module, "_signed_since", then_rotated)
        monkeypatch.setattr(outbox, "_signer", asked_then_rotated)
        outbox.next_batch(NOW + 20)
        assert outbox.store.refused(agent=agent, limit=10) == []
        assert _keys(outbox, node, NOW + 30) == [True, True]
    finally:
        outbox.close()
        node.close()


def test_a_delivered_batch_whose_answer_was_lost_is_answered_already_after_a_rotation(
    service: Service,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Outbox2 3 (70b outbox 6 closed at the log): the log appends the batch; its answer is
    lost; a rotation signs the rows again; the resend, the same records signed again by the
    new key, is answered already in the log, with their indexes: none set aside, none
    queued."""
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier
        sent = outbox.next_batch(NOW + 5)
        assert sent is not None
        first = service.collector.submit(sent.submission, submitter=agent, now=NOW + 5)
        assert [r.status for r in first.results] == [Status.APPENDED] * 2  # its answer lost
        node.identities.rotate("agent", now=NOW + 10)
        again = outbox.next_batch(NOW + 11)
        assert again is not None
        assert [i.record for i in again.items] == [i.record for i in sent.items]
        assert [r.envelope for r in again.submission.records] != [
            r.envelope for r in sent.submission.records
        ]
        receipts = service.collector.submit(again.submission, submitter=agent, now=NOW + 11)
        assert [r.status for r in receipts.results] == [Status.ALREADY] * 2
        assert [r.index for r in receipts.results] == [r.index for r in first.results]
        outbox.answered(receipts, now=NOW + 12)
        assert outbox.store.refused(agent=agent.digest, limit=10) == []
        assert outbox.pending() == 0
        assert service.log.size() == 2
    finally:
        outbox.close()
        node.close()
