"""Review 57w: the refutation check of stored issuer extensions (`NodeTrust.observe_unrefuted`,
`NodePolicies._issuer_known`; reviews 57p and 57t) across the paths that store a chain's issuer
histories, attacked.

Trust 1: the handshake path kept no such check. A member shows review 57p's chain (rooted in
acme, whose feed does not know of the issuer's rotation; a thief's fork under it, which the
other trust anchor's held feed supersedes): the handshake verifier's `_issuer_known` only
checks the fork against the copy (it extends it), the standing re-verifies the chain by its
root's feed alone, and `NodeTrust._remember` stored each issuer history of the admitted
peer's credentials with the plain `identities.observe`: the thief's fork was stored over the
copy and the owner's real history (what the other anchor's feed names) was a FORK on the node
from then on, as before 57p's fix."""

from __future__ import annotations

from pathlib import Path

from tests.support.gates import T
from tests.test_review57p_policies import forked
from troth.channel.verification import VerifiedPeer
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust

NOW = T + 30


def test_admitting_a_member_under_a_refuted_fork_does_not_store_the_fork(
    troth_home: Path,
) -> None:
    f = forked()
    init_node("desk")
    with open_node("desk") as node:
        node.identities.observe(f.issuer.identity)  # as stored when it enrolled
        for authority in f.feeds:
            node.wallet.trust(authority, f"node:{authority.digest.hex()[:8]}", now=T)
        trust = NodeTrust(node, None)
        trust.reload(NOW)
        for authority, feed in f.feeds.items():
            trust.set_feed(authority, feed)
        assert trust._handshakes is not None
        credential = trust._handshakes.verify(  # the handshake's check of the chain passes
            f.chain.encode(), presenter=f.admin.identifier, feeds=trust.feeds, now=NOW
        )
        peer = VerifiedPeer(f.admin.identity, (credential,))
        standing = trust.standing(peer, NOW)
        assert standing.credentials  # admitted, as a member, under the fork's chain
        trust._remember(peer)  # as the node does once the peer is admitted
        assert node.identities.stored_changes(f.issuer.identifier) == 1
        node.identities.check_known(f.owners)  # the owner's history is no fork here
