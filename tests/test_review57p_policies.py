"""Review 57p: review 57j's `NodePolicies._issuer_known` (bundles 1), which now stores a bundle
signer's (or a caller's) chain's issuer histories that extend a stored copy, attacked.

Policies 1: the chain is judged by its root's feed alone (`ChainVerifier._check_current`), and
`_issuer_known` stored any history extending the stored copy. So a thief holding an issuer's
keys from before its rotation, which another trusted authority's held feed names (a
supersession: the rotation is the owner's), forked the history at that change, delegated
policy-admin under the fork in a chain of the authority that does not know of the rotation,
and the node, deciding that bundle, stored the fork over its copy: every later showing of the
owner's real history (what the feed names) was then a FORK here. A history a held feed of a
trust anchor refuses (revoked, superseded) is no longer stored."""

from __future__ import annotations

import contextlib
from pathlib import Path

from tests.support.gates import ADMIN, T, make_world, rotate, superseding
from tests.support.parties import make_party, verified_feed
from troth.credentials import CredentialChain, delegate, issue_credential
from troth.errors import PolicyError
from troth.gates import create_bundle
from troth.node import init_node, open_node
from troth.node.services.node_policies import NodePolicies


def test_a_fork_another_anchors_feed_refutes_is_not_stored(troth_home: Path) -> None:
    world = make_world()
    acme, other = world.authority, make_party(world.vault, now=T)
    issuer = make_party(world.vault, now=T)  # acme's policy admin, a member of `other` too
    owners, _ = rotate(world, issuer, T + 20)  # the owner rotates; `other` publishes it
    forked, thief = rotate(world, issuer, T + 21)  # the thief, with the keys from before
    assert forked.current_change_hash != owners.current_change_hash
    root = issue_credential(
        acme.signer, subject=issuer.identifier, attributes=ADMIN, now=T, ttl=86_400, depth=2
    )
    admin = make_party(world.vault, now=T)
    chain = delegate(
        thief.signer,
        CredentialChain((root,), (acme.identity.history,)),
        subject=admin.identifier,
        attributes=ADMIN,
        now=T + 22,
        ttl=3600,
        purpose="policy",
    )
    assert forked.history in chain.histories
    bundle = create_bundle(
        admin.signer,
        authority=acme.identifier,
        policies='@id("all") permit(principal, action, resource);',
        schema="",
        tools={},
        revision=1,
        now=T + 25,
        ttl=600,
        chain=chain.encode(),
    )
    feeds = {
        acme.identifier: verified_feed(acme, now=T + 25),
        other.identifier: superseding(other, owners, other, T + 25),
    }
    init_node("desk")
    with open_node("desk") as node:
        node.identities.observe(issuer.identity)  # as stored when it enrolled
        policies = NodePolicies(node, feeds.get)
        policies.trust(frozenset(feeds), now=T + 30)
        with contextlib.suppress(PolicyError):  # refusing it is fine; storing the fork is not
            policies.accept(bundle, now=T + 30)
        assert node.identities.stored_changes(issuer.identifier) == 1
        node.identities.check_known(owners)  # the owner's history is no fork here
