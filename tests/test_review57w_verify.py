"""Review 57w: the refutation check of stored issuer extensions (reviews 57p, 57t), on the
command line's path.

Verify 1: `verify_chain(node=)` (`troth credential verify --node`) stores the issuer
histories of a chain rooted in an authority the node trusts with the plain
`identities.observe`, judged by the feeds the caller gave (the root's) alone: review 57p's
thief's fork, which the held feed of another trust anchor of the node supersedes, is stored
over the copy, and the owner's real history is a FORK on the node from then on (the fix is in
troth/node/verify.py, not this review's: skip an extension a trust anchor's held feed refutes,
as `NodeTrust.observe_unrefuted` does)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from tests.support.feeds import pages
from tests.support.gates import T, make_world, rotate
from tests.support.parties import make_party
from tests.test_review57w_trust import admin_chain
from troth.credentials import (
    RevocationEntry,
    RevocationKind,
    Supersession,
)
from troth.encoding import cbor
from troth.errors import CredentialError
from troth.node import init_node, open_node
from troth.node.verify import Sources, verify_chain

NOW = T + 30


def test_verifying_a_chain_at_a_node_does_not_store_a_refuted_fork(troth_home: Path) -> None:
    world = make_world()
    acme, other = world.authority, make_party(world.vault, now=T)
    issuer = make_party(world.vault, now=T)
    owners, _ = rotate(world, issuer, T + 20)  # the owner rotates; `other` publishes it
    _, thief = rotate(world, issuer, T + 21)  # the thief, with the keys from before
    admin = make_party(world.vault, now=T)
    chain = admin_chain(acme, issuer, thief, admin)
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        issuer.identifier.digest,
        other.identifier,
        T + 25,
        "",
        Supersession(len(owners.changes), owners.current_change_hash),
    )
    held = pages(other, [entry], now=NOW, per_page=1)[0]
    init_node("desk")
    feed = troth_home / "acme.feed"
    feed.write_bytes(cbor.encode(pages(acme, [], now=NOW, per_page=1)[0]))
    with open_node("desk") as node:
        node.identities.observe(issuer.identity)  # as stored when it enrolled
        for authority in (acme, other):
            node.wallet.trust(
                authority.identifier, f"node:{authority.identifier.digest.hex()[:8]}", now=T
            )
        node.wallet.update_feed(held, authority=other.identifier, now=NOW)  # its feed, held
        sources = Sources(frozenset({acme.identifier}), troth_home, feed_files=(str(feed),))
        with contextlib.suppress(CredentialError):  # refusing it is fine; storing is not
            verify_chain(chain.encode(), sources, now=NOW, node=node)
        assert node.wallet.held_feed(other.identifier) is not None
        assert node.identities.stored_changes(issuer.identifier) == 1
        node.identities.check_known(owners)  # the owner's history is no fork here
