"""Review 72s (area: retired): attacks on review 72o's rule for which change's key a `.v2`
ticket retired (`_retired_change`) that did not work, kept as passing tests."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from tests.support.traces import Held
from tests.test_review71g_outbox2 import Rotated
from tests.test_review71o_wave2e import forged_by_thief, planted
from tests.test_review72e_tickets import under_column
from tests.test_review72j_rotated import legacy_ticket
from tests.test_review72o_tickets3 import to_key_type
from tests.test_trace_service import NOW, F, tool
from troth import limits
from troth.crypto import KeyType, sha256
from troth.identity import verify_history
from troth.node import init_node, open_node
from troth.trace.outbox_rotation import resign_for_rotation
from troth.trace.outbox_tickets import read_ticket
from troth.trace.signing import VerifiedRecord, resolve_key, sign_record


def _listed_with(
    rotated: Rotated, forged: VerifiedRecord, at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotation of `rotated`'s agent to P-256 at `at` (two changes, bound 1) after `forged`
    was planted under the current key's column; its ticket put as the code before 72e's fix
    wrote it (`.v2`, the thief's envelope listed); the thief then puts its own attestation in
    the column (the envelope verifies under it)."""
    planted(rotated, forged)
    under_column(rotated, forged, rotated.agent.signer(at).attestation)
    monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", 1, raising=False)
    before = rotated.agent.identity
    to_key_type(rotated.agent, KeyType.P256, at)
    fresh = rotated.agent.signer(at)
    resign_for_rotation(rotated.db, before, lambda: fresh, at)
    listed = read_ticket(rotated.db, rotated.agent.identity).hashes
    assert sha256(forged.envelope) not in listed  # the code since 72e's fix: not listed
    legacy_ticket(rotated, [*listed, sha256(forged.envelope)])
    under_column(rotated, forged, forged.attestation)


def _copied_at_first(agent: Held, at: int, wanted: KeyType) -> Held:
    """`agent` rotated at `at` in two changes, the second revealing a key of type `wanted`
    that the first generated (as `rotate --compromised` or `--key-type` appends them); a
    thief's copy of the vault from before, with the history up to the first change (whose
    primary key, the committed one, the copy holds)."""
    thief = copy.copy(agent)
    thief.held = agent.rotate_twice(wanted, (at, at))
    return thief


def _forged(thief: Held, at: int) -> VerifiedRecord:
    """A record of the thief's, signed by a key it attests under its change."""
    signer = thief.signer(at)
    return sign_record(signer, tool("wire_transfer"), seq=0, prev=None, time=at, random=os.urandom)


def test_two_rotations_in_one_second_the_second_to_another_type_launder_no_thiefs_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72s retired refuted: a routine rotation at t (K0 to K1, every row signed again), a
    thief holding K0 plants its record under K1's column, a rotation to P-256 in the same
    second (changes 2, the intermediate, and 3) leaves two of the agent's rows and the
    thief's, its ticket `.v2` listing all three. Change 2 committed to a key of another type:
    the ticket lists envelopes of change 1 (K1, the key the rotation retired), neither of
    change 0 (the thief's) nor of the intermediate: the agent's three rows go under the new
    key, the thief's is set aside."""
    rotated = Rotated(tmp_path, monkeypatch, queued=3, bound=3)
    try:
        forged = forged_by_thief(rotated)
        _listed_with(rotated, forged, NOW - 50, monkeypatch)
        assert read_ticket(rotated.db, rotated.agent.identity).change == 1
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == [(forged.record.id, F.ATTESTATION_STALE.value)]
    finally:
        rotated.close()


def test_a_compromised_rotation_then_one_to_another_type_launder_no_record_of_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72s retired refuted: a thief with a copy of the vault (the key K0 and the committed
    key) after a first rotation. A `--compromised` rotation at t appends two changes of one
    type (2 reveals the committed key, the thief's; 3 one the copy lacks); the thief attests a
    signing key under change 2 with the committed key and plants its record under the current
    key's column; a rotation to P-256 in the same second (changes 4 and 5) signs one of the
    agent's two rows and leaves the other and the thief's, its ticket `.v2` listing both. The
    ticket lists envelopes of change 3 (the key the rotation retired; change 2 is of change
    3's type: no intermediate): the thief's record of change 2 is set aside, the agent's rows
    go under the new key."""
    rotated = Rotated(tmp_path, monkeypatch, queued=0)
    try:
        agent, at = rotated.agent, NOW - 50
        before = agent.identity
        thief = _copied_at_first(agent, at, KeyType.ED25519)  # as `rotate --compromised`
        fresh = agent.signer(at)
        resign_for_rotation(rotated.db, before, lambda: fresh, at, compromised=True)
        mine = [rotated.outbox.add(tool("refund", n=n), now=at).record for n in range(2)]
        forged = _forged(thief, at)
        _listed_with(rotated, forged, at, monkeypatch)
        assert resolve_key(agent.identity, forged.attestation).change == 2
        assert read_ticket(rotated.db, agent.identity).change == 3
        assert rotated.sent() == [(i, True) for i in mine]
        assert rotated.refused() == [(forged.record.id, F.ATTESTATION_STALE.value)]
    finally:
        rotated.close()


def test_a_v2_ticket_listing_a_record_of_the_intermediate_change_launders_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """72s retired refuted: a thief with a copy of the vault from before a rotation to P-256
    (changes 2, the intermediate, whose primary key is the committed one the copy holds, and
    3) attests a signing key under change 2 and signs its record; a `.v2` ticket of the
    rotation listing the agent's row it left and (as none could: change 2 was made in the
    rotation's transaction) the thief's. The ticket lists envelopes of change 1 only (72j's
    rule took change 2): the thief's record is set aside, the agent's rows go under the new
    key."""
    rotated = Rotated(tmp_path, monkeypatch, queued=0)
    try:
        agent, at = rotated.agent, NOW - 40
        mine = [rotated.outbox.add(tool("refund", n=n), now=at).record for n in range(2)]
        before = agent.identity
        thief = _copied_at_first(agent, at, KeyType.P256)
        fresh = agent.signer(at)
        resign_for_rotation(rotated.db, before, lambda: fresh, at)
        forged = _forged(thief, at)
        planted(rotated, forged)
        legacy_ticket(
            rotated, [*read_ticket(rotated.db, agent.identity).hashes, sha256(forged.envelope)]
        )
        assert resolve_key(agent.identity, forged.attestation).change == 2
        assert read_ticket(rotated.db, agent.identity).change == 1
        assert rotated.sent() == [(i, True) for i in mine]
        assert rotated.refused() == [(forged.record.id, F.ATTESTATION_STALE.value)]
    finally:
        rotated.close()


class Stepping:
    """A clock that moves at each reading: `steps` seconds, in turn."""

    def __init__(self, start: int, steps: tuple[int, ...]) -> None:
        self.at, self.steps, self.read = start, steps, 0

    def now(self) -> int:
        self.at += self.steps[self.read % len(self.steps)]
        self.read += 1
        return self.at


@pytest.mark.parametrize("steps", [(1,), (5, -3)])
def test_a_rotation_to_another_type_dates_both_changes_with_one_reading(
    troth_home: Path, steps: tuple[int, ...]
) -> None:
    """72s retired refuted: `troth identity rotate --key-type` under a clock that moves at
    each reading (forward, or forward then back), routine and `--compromised`: both changes
    a rotation appends bear one created_at (the rotation reads its clock once), so no honest
    history troth makes has a rotation's changes straddle a second."""
    init_node("n")
    with open_node("n") as node:
        service = node.identities
        service.create(now=NOW, name="a")
        service.rotate("a", now=Stepping(NOW + 10, steps), key_type=KeyType.P256)
        service.rotate(
            "a", now=Stepping(NOW + 20, steps), key_type=KeyType.ED25519, compromised=True
        )
        history = verify_history(service.export("a"), now=NOW + 100)
    dates = [c.body.created_at for c in history.changes]
    assert dates[1] == dates[2]
    assert dates[3] == dates[4]
    assert [c.body.primary_key.key_type for c in history.changes] == [
        KeyType.ED25519,
        KeyType.ED25519,
        KeyType.P256,
        KeyType.P256,
        KeyType.ED25519,
    ]
