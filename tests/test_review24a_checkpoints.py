"""Review 24a, whose checkpoint counts for a chain: review 23a's rule (`VerifiedFeed.binds`,
docs/formats.md "Checkpointed histories", chain rule 10) against honest flows. A history
presented from a checkpoint counts for a chain only when the chain's root authority's feed
names one of its changes: these guards check that it still counts when it does — at the very
first change presented, for a member of two authorities presenting one checkpoint (one
authority's) for both authorities' chains, and as an issuer's history in a delegation."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.channels import MEMBER, T
from tests.support.parties import make_party
from tests.test_review23a_checkpoints import YEAR, announce, forged_change, signer_for, verify_as
from tests.test_trust_scope import NOW, Two, make_two
from troth.credentials import (
    CredentialChain,
    delegate,
)
from troth.credentials.revocation_held import feed_checkpoints
from troth.errors import CredentialError, CredentialFailure
from troth.identity import (
    Checkpoint,
    Signer,
    VerifiedIdentity,
    rotate_identity,
    verify_history,
)

_F = CredentialFailure


@dataclass(frozen=True)
class Rotated:
    """Alice rotated once (change 1) and announced it to both authorities; her history as
    presented from acme's checkpoint at change 1, and a signer as that history."""

    presented: VerifiedIdentity
    signer: Signer


def announced(two: Two) -> Rotated:
    alice = two.alice.party
    whole = rotate_identity(
        two.vault, alice.identity, alice.primary, alice.next_primary, now=T, valid_for=YEAR
    ).identity
    for authority in (two.acme, two.globex):  # she announced the rotation to each
        announce(
            two, authority, alice.identifier, 2, whole.current_change_hash, by=alice.identifier
        )
    cut = whole.from_checkpoint(Checkpoint(alice.identifier.digest, two.acme.identifier.digest, 1))
    checkpoints = feed_checkpoints(two.feeds, now=NOW, max_staleness=10**6)
    presented = verify_history(cut.history, now=NOW, checkpoints=checkpoints)
    return Rotated(presented, signer_for(two, alice.next_primary, presented))


@pytest.fixture
def two() -> Two:
    return make_two()


def test_a_history_from_the_change_the_authority_names_presents_its_credential(two: Two) -> None:
    """The first change presented is the very change acme's newest supersession names (the
    boundary of `binds`): her acme credential is hers."""
    presented = announced(two).presented
    assert presented.first_index == 1
    assert verify_as(two, two.chain(two.acme), presented).actor == two.alice.identifier


def test_a_member_of_two_authorities_presents_one_checkpoint_for_both(two: Two) -> None:
    """Alice is a member of acme and of globex and announced her rotation to both. Her history
    is presented from acme's checkpoint (one history for every verifier): globex's chain counts
    for it too, since globex's own feed names its change."""
    presented = announced(two).presented
    for authority in (two.acme, two.globex):
        assert verify_as(two, two.chain(authority), presented).actor == two.alice.identifier


def test_a_member_delegates_with_a_checkpointed_history(two: Two) -> None:
    """Alice delegates below her acme credential with her history presented from the change
    acme names: the delegate's chain verifies (the issuer history is bound by acme's feed)."""
    rotated = announced(two)
    bob = make_party(two.vault, now=T).identifier
    chain = delegate(
        rotated.signer,
        CredentialChain.decode(two.chain(two.acme)),
        subject=bob,
        attributes=MEMBER,
        now=T,
        ttl=600,
        purpose="a helper",
    ).encode()
    verified = verify_as(two, chain, bob)
    assert verified.actor == bob
    assert verified.issuers[1].first_index == 1


def test_globexs_made_up_next_change_still_does_not_count(two: Two) -> None:
    """The control beside the guards: with acme's feed naming alice's real change 1, globex's
    made-up change 2 (naming change 1 as previous; its feed now names it) does not present her
    acme credential. (Globex's own chain to her identifier counts by its own word, as any
    credential globex issues would.)"""
    announced(two)
    alice = two.alice.party
    real = two.feeds[two.acme.identifier].supersession(alice.identifier)
    assert real is not None
    forged = forged_change(two, alice.identifier, 2, real.change_hash).identity
    with pytest.raises(CredentialError) as caught:
        verify_as(two, two.chain(two.acme), forged)
    assert caught.value.reason is _F.WRONG_SUBJECT
