"""Review 72e (area: tickets): a second review of the outbox's re-sign tickets
(troth.trace.outbox_tickets, troth.trace.outbox_rotation) under crashes and thieves.

1. (a record of a key retired before signed by the new key, medium) A rotation listed every
   row it left whose `attestation` column named the key it retires, hashing the envelope
   without reading it: a writer of node.db holding a key an *earlier* rotation retired (a
   stolen backup) planted, before the rotation, a record of its choosing signed by that key
   under the column of the current one (past the bound: rows of junk before it count toward
   it). The rotation listed its envelope; after it, the writer set the column to the old
   key's attestation, the envelope verified under it, its hash was listed, and the outbox
   signed the thief's record with the new key. The rotation now lists only an envelope that
   names the key it retires (its DSSE keyid, the SHA-256 of that key's attestation, read
   without verifying): the outbox verifies a listed envelope under the key it names, so a
   listed row is one the retired key signed, or none.
2. (an acknowledged record lost, low) A record added after a rotation's commit with a signer
   fetched before it, whose retired key the vault still held (a token's, deleted just after
   the commit; kept when the process is killed then, until `forget_retired` runs), was
   signed by it: acknowledged, then set aside KEY_RETIRED when it came up (dated after the
   key's retirement, it never verifies as the agent's). The rotation now records, in its
   transaction, how many changes it retired the key of (`trace_outbox_rotated`), and `add`
   asks for its signer again when the signer's history holds no more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review71g_outbox2 import Rotated
from tests.test_review71o_wave2e import forged_by_thief, planted
from tests.test_trace_service import NOW, F, tool
from troth.trace.signing import VerifiedRecord


def under_column(rotated: Rotated, forged: VerifiedRecord, attestation: bytes) -> None:
    """The `attestation` column of `forged`'s row set to `attestation`, as a writer of node.db
    can."""
    with rotated.db.transaction():
        rotated.db.execute(
            "UPDATE trace_outbox SET attestation = ? WHERE record = ?",
            (attestation, forged.record.id),
        )


def test_a_record_of_a_key_retired_before_is_not_listed_under_the_current_keys_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72e tickets 1: the first rotation (K0 to K1) signs one row again and lists the other;
    the thief holding K0 plants its record signed by K0 under K1's attestation column, and
    a second rotation (K1 to K2, bound 1) leaves it past the bound; the thief then puts K0's
    attestation in the column. Before: the record went under K2. Now: set aside, the
    agent's two rows go under K2."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        forged = forged_by_thief(rotated)  # signed by K0, the key the first rotation retired
        planted(rotated, forged)
        under_column(rotated, forged, rotated.agent.signer(NOW - 50).attestation)  # K1's
        rotated.rotate(NOW - 40)
        under_column(rotated, forged, forged.attestation)  # after the rotation: K0's again
        sent = rotated.sent()
        assert (forged.record.id, True) not in sent
        assert rotated.refused() == [(forged.record.id, F.ATTESTATION_STALE.value)]
        assert sent == [(i, True) for i in rotated.ids]
    finally:
        rotated.close()


def test_a_record_added_after_the_rotation_with_a_signer_fetched_before_is_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72e tickets 2: two rows, a rotation (K0 to K1, bound 1) signs one again and lists
    the other; the outbox, its signer fetched before the rotation (K0, still in the vault,
    as a token's is until `forget_retired` runs), adds a record after it. Before: `add`
    returned (acknowledged) a record signed by K0 dated after its retirement, set aside
    KEY_RETIRED when it came up. Now `add` asks for its signer again: all three go, under
    K1."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        late = rotated.outbox.add(tool("refund", n=9), now=NOW - 45).record
        assert rotated.sent(NOW - 44) == [(i, True) for i in [*rotated.ids, late]]
        assert rotated.refused() == []
    finally:
        rotated.close()
