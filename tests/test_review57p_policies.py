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
from dataclasses import dataclass
from pathlib import Path

from tests.support.gates import T, make_world, policy_admin_under, rotate, superseding
from tests.support.parties import Party, make_party, verified_feed
from troth.credentials import CredentialChain, VerifiedFeed
from troth.errors import CredentialError, PolicyError
from troth.gates import create_bundle
from troth.identity import Identifier, VerifiedIdentity
from troth.node import init_node, open_node
from troth.node.services.node_policies import NodePolicies
from troth.node.trust import NodeTrust


@dataclass
class Forked:
    """acme's policy admin `issuer`, a member of `other` too, rotated (`owners`, which
    `other`'s feed in `feeds` publishes); a thief with its keys from before forked it and
    delegated policy-admin to `admin` under the fork (`chain`, rooted in acme)."""

    issuer: Party
    owners: VerifiedIdentity
    admin: Party
    chain: CredentialChain
    feeds: dict[Identifier, VerifiedFeed]


def forked() -> Forked:
    world = make_world()
    acme, other = world.authority, make_party(world.vault, now=T)
    issuer = make_party(world.vault, now=T)
    owners, _ = rotate(world, issuer, T + 20)  # the owner rotates; `other` publishes it
    fork, thief = rotate(world, issuer, T + 21)  # the thief, with the keys from before
    assert fork.current_change_hash != owners.current_change_hash
    admin, chain = policy_admin_under(world, issuer, thief, T + 22)
    assert fork.history in chain.histories
    feeds = {
        acme.identifier: verified_feed(acme, now=T + 25),
        other.identifier: superseding(other, owners, other, T + 25),
    }
    return Forked(issuer, owners, admin, chain, feeds)


def test_a_fork_another_anchors_feed_refutes_is_not_stored(troth_home: Path) -> None:
    f = forked()
    acme = next(iter(f.feeds))
    bundle = create_bundle(
        f.admin.signer,
        authority=acme,
        policies='@id("all") permit(principal, action, resource);',
        schema="",
        tools={},
        revision=1,
        now=T + 25,
        ttl=600,
        chain=f.chain.encode(),
    )
    init_node("desk")
    with open_node("desk") as node:
        node.identities.observe(f.issuer.identity)  # as stored when it enrolled
        policies = NodePolicies(node, f.feeds.get)
        policies.trust(frozenset(f.feeds), now=T + 30)
        with contextlib.suppress(PolicyError):  # refusing it is fine; storing the fork is not
            policies.accept(bundle, now=T + 30)
        assert node.identities.stored_changes(f.issuer.identifier) == 1
        node.identities.check_known(f.owners)  # the owner's history is no fork here


def test_the_trace_collectors_verifier_stores_no_fork_a_held_feed_refutes(
    troth_home: Path,
) -> None:
    """Policies 2 (left open: troth/node/trust.py is not this review's): the trace collector's
    verifier (`NodeTrust.verifier`, `known_in=_extend_known`, which 57j's `_issuer_known`
    copies) stores a chain's issuer history that extends the stored copy whatever the held
    feeds of the other trust anchors say, so a record submitted under policies 1's chain
    stores the thief's fork the same way."""
    f = forked()
    init_node("desk")
    with open_node("desk") as node:
        node.identities.observe(f.issuer.identity)
        for authority in f.feeds:
            node.wallet.trust(authority, f"node:{authority.digest.hex()[:8]}", now=T)
        trust = NodeTrust(node, None)
        trust.reload(T + 30)
        for authority, feed in f.feeds.items():
            trust.set_feed(authority, feed)
        assert trust.verifier is not None
        with contextlib.suppress(CredentialError):  # refusing it is fine too
            trust.verifier.verify(
                f.chain.encode(), presenter=f.admin.identifier, feeds=trust.feeds, now=T + 30
            )
        assert node.identities.stored_changes(f.issuer.identifier) == 1
