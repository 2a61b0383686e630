"""Review 57w: attacks on the refutation check of stored issuer extensions (reviews 57p, 57t,
57w) that did not work."""

from __future__ import annotations

from pathlib import Path

from tests.support.gates import ADMIN, T, make_world, rotate, superseding
from tests.support.parties import make_party, verified_feed
from troth.credentials import CredentialChain, delegate, issue_credential
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust

NOW = T + 30


def test_a_rotation_past_the_change_an_anchors_feed_names_is_stored(troth_home: Path) -> None:
    """An anchor's feed superseding an EARLIER change of the issuer (the owner rotated again
    since) does not keep the owner's later rotation out: it extends the change the feed names,
    so `check_current` passes and the node holds to it (a legitimate rotation is stored)."""
    world = make_world()
    acme, other = world.authority, make_party(world.vault, now=T)
    issuer = make_party(world.vault, now=T)
    first, once = rotate(world, issuer, T + 20)  # `other` publishes this change
    latest, twice = rotate(world, once, T + 21)  # the owner rotates again
    root = issue_credential(
        acme.signer, subject=issuer.identifier, attributes=ADMIN, now=T, ttl=86_400, depth=2
    )
    admin = make_party(world.vault, now=T)
    chain = delegate(
        twice.signer,
        CredentialChain((root,), (acme.identity.history,)),
        subject=admin.identifier,
        attributes=ADMIN,
        now=T + 22,
        ttl=3600,
        purpose="policy",
    )
    assert latest.history in chain.histories
    feeds = {
        acme.identifier: verified_feed(acme, now=T + 25),
        other.identifier: superseding(other, first, other, T + 25),
    }
    init_node("desk")
    with open_node("desk") as node:
        node.identities.observe(issuer.identity)  # as stored when it enrolled
        for authority in feeds:
            node.wallet.trust(authority, f"node:{authority.digest.hex()[:8]}", now=T)
        trust = NodeTrust(node, None)
        trust.reload(NOW)
        for authority, feed in feeds.items():
            trust.set_feed(authority, feed)
        assert trust.verifier is not None
        trust.verifier.verify(
            chain.encode(), presenter=admin.identifier, feeds=trust.feeds, now=NOW
        )
        assert node.identities.stored_changes(issuer.identifier) == 3
