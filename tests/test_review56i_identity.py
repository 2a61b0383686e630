"""Review 56i: findings in the identity core (history, rotation, identifier)."""

from __future__ import annotations

import pytest

from tests.support.histories import DAY, T0, encode, honest_history
from troth.errors import IdentityError, IdentityFailure
from troth.identity import Checkpoint, verify_history


def test_identity_1_a_checkpointed_identity_rechecked_names_its_current_change() -> None:
    """Review 56i, identity 1: `VerifiedIdentity.check_valid_at` (a local identity's history
    reused while its stored bytes are unchanged) named change `len(changes) - 1` when the
    current key had expired: change 0 for a history presented from change 2, where
    `verify_history` of the same bytes names change 2."""
    history = honest_history(3)
    full = verify_history(encode(history.changes), now=T0 + 3 * DAY)
    presented = full.from_checkpoint(Checkpoint(full.identifier.digest, bytes(32), 2))
    later = T0 + 10 * 365 * DAY
    with pytest.raises(IdentityError) as verified:
        verify_history(presented.history, now=later, checkpoints=lambda *_: True)
    with pytest.raises(IdentityError) as rechecked:
        presented.check_valid_at(later)
    assert verified.value.reason is rechecked.value.reason is IdentityFailure.KEY_OUTSIDE_VALIDITY
    assert verified.value.change == 2
    assert rechecked.value.change == 2
