"""Review 72s (area: retired): a review of review 72o's rule for which change's key a `.v2`
outbox ticket (written before review 72e, tickets 1) retired (`_retired_change`).

1. (a rule on the clock where the history holds the answer, low) 72o took the change two
   before the ticket's signer's when the one before was made in the same second with a
   primary key of another type. The second clause is the marker: a change whose primary key
   is of another type than the next one's committed (its next-key digest, type-prefixed,
   matched by the key the next change reveals) to a key of another type than its own, which
   troth's `rotate` does only in the first change of a rotation to another key type, the
   intermediate one (every other change, an identity's first and a rotation's last, commits
   to a key of its own type). The time is nothing the format ties: the two changes' created_at
   are equal only because troth's rotate dates both with one reading of its clock (review
   72s refuted: a stepping clock does not split them). A history whose two changes of such a
   rotation are a second apart (valid: each change dated at or after the one before) had its
   intermediate change taken for the retired key's, and every honest row its `.v2` ticket
   listed set aside ATTESTATION_STALE. The rule now reads the commitment only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review71g_outbox2 import Rotated
from tests.test_review72j_rotated import legacy_ticket
from troth.crypto import KeyType
from troth.trace.outbox_rotation import resign_for_rotation
from troth.trace.outbox_tickets import _retired_change, read_ticket


class Straddled(Rotated):
    """Rotated, where the rotation is to P-256, its two changes a second apart."""

    def rotate(self, at: int, *, compromised: bool = False) -> int:
        before = self.agent.identity
        self.agent.rotate_twice(KeyType.P256, (at, at + 1))
        fresh = self.agent.signer(at + 1)
        return resign_for_rotation(self.db, before, lambda: fresh, at + 1, compromised=compromised)


def test_a_v2_ticket_of_a_rotation_whose_changes_straddle_a_second_lists_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72s retired 1: three rows of K0, a rotation to P-256 whose intermediate change is dated
    a second before the last (bound 1) leaves two; its ticket put as the code before 72e's
    fix wrote it (`.v2`). Before: the intermediate change (another second) was taken for the
    retired key's, and both rows were set aside ATTESTATION_STALE. Now: the change before it
    committed to a key of another type (the intermediate one): the ticket lists K0's change,
    and all three go under the new key."""
    rotated = Straddled(tmp_path, monkeypatch, queued=3)
    try:
        identity = rotated.agent.identity
        intermediate, last = (c.body.created_at for c in identity.changes[1:])
        assert last == intermediate + 1
        listed = read_ticket(rotated.db, identity)
        assert len(listed.hashes) == 2
        legacy_ticket(rotated, sorted(listed.hashes))
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == []
        assert read_ticket(rotated.db, identity).change == _retired_change(identity, 2) == 0
    finally:
        rotated.close()
