"""Review 57w: attacks on the refutation check of stored issuer extensions (reviews 57p, 57t,
57w) that did not work."""

from __future__ import annotations

from pathlib import Path

from tests.support.gates import T, make_world, rotate, superseding
from tests.support.parties import make_party, verified_feed
from tests.test_review57w_trust import NOW, admin_chain, trusting
from troth.node import init_node, open_node


def test_a_rotation_past_the_change_an_anchors_feed_names_is_stored(troth_home: Path) -> None:
    """An anchor's feed superseding an EARLIER change of the issuer (the owner rotated again
    since) does not keep the owner's later rotation out: it extends the change the feed names,
    so `check_current` passes and the node holds to it (a legitimate rotation is stored)."""
    world = make_world()
    acme, other = world.authority, make_party(world.vault, now=T)
    issuer = make_party(world.vault, now=T)
    first, once = rotate(world, issuer, T + 20)  # `other` publishes this change
    latest, twice = rotate(world, once, T + 21)  # the owner rotates again
    admin = make_party(world.vault, now=T)
    chain = admin_chain(acme, issuer, twice, admin)
    assert latest.history in chain.histories
    feeds = {
        acme.identifier: verified_feed(acme, now=T + 25),
        other.identifier: superseding(other, first, other, T + 25),
    }
    init_node("desk")
    with open_node("desk") as node:
        trust = trusting(node, issuer, feeds)
        assert trust.verifier is not None
        trust.verifier.verify(
            chain.encode(), presenter=admin.identifier, feeds=trust.feeds, now=NOW
        )
        assert node.identities.stored_changes(issuer.identifier) == 3
