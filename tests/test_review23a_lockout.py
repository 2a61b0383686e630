"""Review 23a, checkpoints 3: a co-trusted authority's made-up checkpointed history of another
authority's member, stored by a node, locks the member out of it.

Globex (trusted by desk, as acme is) names a made-up change 1 of alice — acme's member, one
change — in its feed, issues a globex credential to her identifier and opens a channel to desk
as her with that history and a key of its own. Globex's chain verifies and its feed binds the
history (its own checkpoint), so desk admits the peer and stores the history (store-or-extend).
When the real alice connects with her acme credential and her real history (change 0), desk
refuses it as older than the stored copy (and globex, which vouched for her, as superseded by
its feed): globex cut desk off from acme's member, which docs/credentials.md ("Trust decisions
are the verifier's") says one trusted authority cannot do. Fixed: her change 0 shows globex's
change 1 made up (it does not follow change 0), so the stored copy refuses nothing and is
replaced, and globex's word on her (its voucher) is forgotten (troth.identity.known,
`Vouchers.refuted`).

Checkpoints 4: a node that did store alice's history (change 0) takes globex's made-up change 1
— naming her change 0 as its previous — as an extension of it: a checkpointed history that
starts right after the stored copy is compared by its `previous` field only, never by the
pre-rotation commitment nor the previous-key signature the stored change makes checkable.

Checkpoints 3, a gap: globex's made-up change names no change of alice's as previous (change
5, after a made-up change 4), so nothing alice can show proves it made up. Fixed in review 27h:
a copy from a checkpoint binds her full history only when an authority attesting it has
standing over that history (a chain she shows, or a voucher recorded under a change it holds);
globex vouched for her only under its made-up change, so she is admitted with her acme chain
and the copy is then replaced (docs/formats.md, "A stored copy from a checkpoint").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.channels import MEMBER, T
from tests.support.feeds import pages
from tests.support.parties import claim_with_new_key
from tests.test_review23a_checkpoints import forged_change
from tests.test_trust_scope import NOW, Two, make_two
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, verify_peer
from troth.channel.verification import HandshakeClaim
from troth.credentials import CredentialChain, issue_credential
from troth.errors import ChannelError, ChannelFailure, IdentityError, IdentityFailure
from troth.identity import VerifiedIdentity
from troth.node import Node, init_node, open_node
from troth.node.trust import NodeTrust


@dataclass
class Desk:
    """Desk trusting acme and globex; globex's made-up change 1 of acme's alice in its feed."""

    two: Two
    node: Node
    trust: ChannelTrust
    forged: VerifiedIdentity
    as_alice: HandshakeClaim  # globex, as alice (its made-up history, a channel key it holds)
    globex_chain: bytes  # globex's credential to alice's identifier

    def alice(self) -> HandshakeClaim:
        alice = self.two.alice
        return HandshakeClaim(
            alice.party.identity.history,
            alice.attestation,
            self.two.vault.public_key(alice.channel_key),
        )


@pytest.fixture
def desk(troth_home: Path) -> Iterator[Desk]:
    """Globex's change 1 of alice names her change 0 as previous."""
    yield from make_desk(1, None)


@pytest.fixture
def gap_desk(troth_home: Path) -> Iterator[Desk]:
    """Globex's change 5 of alice names a change 4 no history of hers holds."""
    yield from make_desk(5, os.urandom(32))


def make_desk(index: int, previous: bytes | None) -> Iterator[Desk]:
    two = make_two()
    init_node("desk")
    with open_node("desk") as node:
        for authority in (two.acme, two.globex):
            node.wallet.trust(authority.identifier, f"node:{authority.identifier}", now=T)
        alice = two.alice
        forged = forged_change(two, alice.identifier, index, previous or alice.identifier.digest)
        (acme_page,) = pages(two.acme, [], now=T, per_page=1)
        node.wallet.update_feed(acme_page, authority=two.acme.identifier, now=NOW)
        node.wallet.update_feed(forged.page, authority=two.globex.identifier, now=NOW)
        node_trust = NodeTrust(node, None)
        node_trust.reload(NOW)
        as_alice = claim_with_new_key(two.vault, forged.primary, forged.identity, now=T)
        globex_chain = CredentialChain(
            (
                issue_credential(
                    two.globex.signer,
                    subject=alice.identifier,
                    attributes=MEMBER,
                    now=T,
                    ttl=3600,
                    depth=1,
                ),
            ),
            (two.globex.identity.history,),
        ).encode()
        yield Desk(
            two,
            node,
            node_trust.channel_trust(AnyAuthenticatedIdentity()),
            forged.identity,
            as_alice,
            globex_chain,
        )


def test_a_co_trusted_authority_cannot_lock_anothers_member_out(desk: Desk) -> None:
    alice = desk.two.alice.identifier
    assert verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW).identifier == alice
    peer = verify_peer(desk.trust, desk.alice(), (desk.two.chain(desk.two.acme),), NOW)
    assert [c.authority for c in peer.credentials] == [desk.two.acme.identifier]


def test_once_her_history_is_seen_the_made_up_one_is_refused(desk: Desk) -> None:
    """Alice's change 0 shows globex's change 1 made up (its key is not the one change 0
    committed to): desk stores her history over it and forgets globex's word on her (it
    vouched for her with the made-up history), so globex as alice is then refused, and alice
    is still admitted, after a restart too."""
    two = desk.two
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    verify_peer(desk.trust, desk.alice(), (two.chain(two.acme),), NOW)
    with pytest.raises(ChannelError) as refused:
        verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    assert refused.value.reason is ChannelFailure.PEER_INVALID
    assert "pre-rotation" in str(refused.value)
    restarted = NodeTrust(desk.node, None)
    restarted.reload(NOW)
    assert set(restarted.vouchers.of(two.alice.identifier)) == {two.acme.identifier}
    trust = restarted.channel_trust(AnyAuthenticatedIdentity())
    peer = verify_peer(trust, desk.alice(), (two.chain(two.acme),), NOW)
    assert peer.identifier == two.alice.identifier


def test_a_made_up_change_does_not_extend_a_stored_history(desk: Desk) -> None:
    """Desk stored alice's history (she connected once). Globex's made-up change 1 names her
    change 0: as a history it is refused as a fork of the stored copy (its key is not the one
    change 0 committed to), at a handshake too, and alice is still admitted after."""
    two = desk.two
    verify_peer(desk.trust, desk.alice(), (two.chain(two.acme),), NOW)
    with pytest.raises(IdentityError) as caught:
        desk.node.identities.check_known(desk.forged)
    assert caught.value.reason is IdentityFailure.NEXT_KEY_MISMATCH
    with pytest.raises(ChannelError) as refused:
        verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    assert refused.value.reason is ChannelFailure.PEER_INVALID
    peer = verify_peer(desk.trust, desk.alice(), (two.chain(two.acme),), NOW)
    assert peer.identifier == two.alice.identifier


def test_a_made_up_change_after_a_gap_cannot_lock_the_member_out(gap_desk: Desk) -> None:
    """Was a strict xfail until review 27h (gap): globex's copy binds her full history only
    if globex has standing over it, and its only voucher was recorded under its made-up change
    (tests/test_review27h_gap.py)."""
    desk = gap_desk
    alice = desk.two.alice.identifier
    assert verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW).identifier == alice
    peer = verify_peer(desk.trust, desk.alice(), (desk.two.chain(desk.two.acme),), NOW)
    assert [c.authority for c in peer.credentials] == [desk.two.acme.identifier]
