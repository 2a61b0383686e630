"""Review 72o (area: tickets3): a review of review 72j's ticket `.v3` and the rule it gives a
`.v2` ticket (written before review 72e, tickets 1): it lists only envelopes signed by a key
of the change just before its signer's.

1. (honest rows set aside across an upgrade, low) "The change just before" is the key its
   rotation retired only when the rotation appended one change. A rotation to another key
   type appends two in one transaction (the first reveals the committed key while committing
   to one of the new type, the second reveals that one: troth.identity's `rotate`): the
   change before the ticket's signer's is the intermediate one, under which no key of the
   agent's ever signed, so every row a `.v2` ticket of such a rotation listed (the agent's
   own, queued across the upgrade) was set aside ATTESTATION_STALE, as a thief's. The
   intermediate change is told by what the history holds: created in the rotation's second
   (the signer's change's `created_at`) with a primary key of another type than the signer
   change's (the key type the rotation left); a `.v2` ticket now lists envelopes of the
   change before it, the key the rotation retired (and no longer of the intermediate
   change, whose primary key, the committed one, a copy of the vault from before holds).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import Held
from tests.test_review71g_outbox2 import Rotated
from tests.test_review72j_rotated import legacy_ticket
from tests.test_trace_service import NOW
from troth.crypto import KeyType
from troth.identity import Checkpoint
from troth.trace.outbox_rotation import resign_for_rotation
from troth.trace.outbox_tickets import _retired_change, read_ticket


def to_key_type(agent: Held, wanted: KeyType, at: int) -> None:
    """`agent` rotated at `at` to a key of type `wanted`: two changes, as troth.identity's
    `rotate --key-type` appends them in one transaction (the first reveals the committed key
    while committing to one of `wanted`, the second reveals that one)."""
    agent.rotate_twice(wanted, (at, at))


class RotatedToP256(Rotated):
    """Rotated, where each rotation is to another key type (Ed25519 to P-256 and back)."""

    def rotate(self, at: int, *, compromised: bool = False) -> int:
        agent = self.agent
        wanted = KeyType.P256 if agent.held.primary.key_type is KeyType.ED25519 else KeyType.ED25519
        before = agent.identity
        to_key_type(agent, wanted, at)
        fresh = agent.signer(at)
        return resign_for_rotation(self.db, before, lambda: fresh, at, compromised=compromised)


def test_a_v2_ticket_of_a_rotation_to_another_key_type_lists_the_rows_it_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72o tickets3 1: three rows of K0, a rotation to P-256 (two changes, bound 1) leaves
    two; its ticket put as the code before 72e's fix wrote it (`.v2`, the same hashes).
    Before: the `.v2` rule took the intermediate change for the retired key's, and both rows
    were set aside ATTESTATION_STALE. Now: all three go under the new key, none set aside."""
    rotated = RotatedToP256(tmp_path, monkeypatch, queued=3)
    try:
        assert rotated.agent.identity.change_count == 3
        listed = read_ticket(rotated.db, rotated.agent.identity)
        assert len(listed.hashes) == 2
        legacy_ticket(rotated, sorted(listed.hashes))
        legacy = read_ticket(rotated.db, rotated.agent.identity)
        assert legacy.hashes == listed.hashes
        assert legacy.change == 0
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == []
    finally:
        rotated.close()


def test_the_retired_change_is_read_from_the_history() -> None:
    """72o tickets3 1: the change whose key a ticket's rotation retired, as the history holds
    it: the one before after a routine rotation (also two in one second, each of one change:
    not taken for a rotation to another key type), two before after a rotation to another
    key type; a history checkpointed at the signer's change holds none before it."""
    agent = Held(now=NOW - 1000)
    agent.rotate(NOW - 50)
    agent.rotate(NOW - 50)  # a second routine rotation in the same second
    assert _retired_change(agent.identity, 2) == 1
    assert _retired_change(agent.identity, 1) == 0
    to_key_type(agent, KeyType.P256, NOW - 40)  # the intermediate change 3, then 4
    assert agent.identity.change_count == 5
    assert _retired_change(agent.identity, 4) == 2
    cut = agent.identity.from_checkpoint(Checkpoint(agent.identifier.digest, b"\x01" * 32, 4))
    assert _retired_change(cut, 4) == 3
