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

import contextlib
import functools
from pathlib import Path

import pytest

from tests.support.gates import ADMIN, T, make_world, rotate, superseding
from tests.support.parties import Party, make_party, verified_feed
from tests.test_review57p_policies import forked
from troth.channel.verification import VerifiedPeer
from troth.credentials import (
    CredentialChain,
    RevocationKind,
    VerifiedFeed,
    delegate,
    issue_credential,
)
from troth.errors import CredentialError, PolicyError
from troth.gates import create_bundle
from troth.identity import Identifier, VerifiedIdentity
from troth.node import Node, init_node, open_node
from troth.node.services.node_policies import NodePolicies
from troth.node.trust import NodeTrust

NOW = T + 30


def admin_chain(acme: Party, issuer: Party, signer: Party, admin: Party) -> CredentialChain:
    """policy-admin, which acme gave `issuer`, delegated to `admin` by `signer` (the issuer
    as it signs: its current keys, or a retired one's)."""
    root = issue_credential(
        acme.signer, subject=issuer.identifier, attributes=ADMIN, now=T, ttl=86_400, depth=2
    )
    return delegate(
        signer.signer,
        CredentialChain((root,), (acme.identity.history,)),
        subject=admin.identifier,
        attributes=ADMIN,
        now=T + 22,
        ttl=3600,
        purpose="policy",
    )


def trusting(node: Node, issuer: Party, feeds: dict[Identifier, VerifiedFeed]) -> NodeTrust:
    """`node`'s trust, holding `issuer`'s history as stored when it enrolled, trusting the
    authorities of `feeds` and holding them."""
    node.identities.observe(issuer.identity)
    for authority in feeds:
        node.wallet.trust(authority, f"node:{authority.digest.hex()[:8]}", now=T)
    trust = NodeTrust(node, None)
    trust.reload(NOW)
    for authority, feed in feeds.items():
        trust.set_feed(authority, feed)
    return trust


def test_admitting_a_member_under_a_refuted_fork_does_not_store_the_fork(
    troth_home: Path,
) -> None:
    f = forked()
    init_node("desk")
    with open_node("desk") as node:
        trust = trusting(node, f.issuer, f.feeds)
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


def test_a_revoked_identitys_honest_rotation_is_still_held_to(troth_home: Path) -> None:
    """Trust 2: a trust anchor's feed that revokes an identity (its keys stolen, say) says
    nothing of which history is the owner's, yet `observe_unrefuted` (and the bundles'
    `_issuer_known`) skipped storing any extension of it: the owner's rotation away from the
    stolen key, seen in a chain of another authority (whose word on the identity is its own),
    was never stored, and a chain the thief signed with the retired key verified at the node
    after it (the copy still the old one: no ROLLBACK), as review 57j's bundles 1 before."""
    world = make_world()
    acme, other = world.authority, make_party(world.vault, now=T)
    issuer = make_party(world.vault, now=T)
    owners, rotated = rotate(world, issuer, T + 20)  # away from the stolen key
    admin = make_party(world.vault, now=T)

    def chain(signer: Party, history: VerifiedIdentity) -> bytes:
        made = admin_chain(acme, issuer, signer, admin)
        assert history.history in made.histories
        return made.encode()

    feeds = {
        acme.identifier: verified_feed(acme, now=T + 25),
        other.identifier: verified_feed(
            other, [(RevocationKind.IDENTITY, issuer.identifier.digest)], now=T + 25
        ),
    }
    init_node("desk")
    with open_node("desk") as node:
        trust = trusting(node, issuer, feeds)
        assert trust.verifier is not None
        verify = functools.partial(
            trust.verifier.verify, presenter=admin.identifier, feeds=trust.feeds, now=NOW
        )
        verify(chain(rotated, owners))  # the owner's chain, after its rotation
        assert node.identities.stored_changes(issuer.identifier) == 2
        with pytest.raises(CredentialError):
            verify(chain(issuer, issuer.identity))  # the retired key's


def test_a_bundle_signed_under_a_refuted_fork_does_not_store_the_fork(troth_home: Path) -> None:
    """Trust 3: the bundle path's other store, `NodePolicies._signer_known` (the bundle's
    signer history, not its chain's issuers'), kept no such check: a thief holding the policy
    admin's keys from before its rotation (which another trust anchor's held feed publishes)
    forked it, signed a bundle under acme's chain (acme's feed does not know of the rotation),
    and the node stored the fork over its copy, the owner's real history a FORK here after
    (as review 57p's policies 1 for an issuer)."""
    world = make_world()
    acme, other = world.authority, make_party(world.vault, now=T)
    admin = make_party(world.vault, now=T)
    owners, _ = rotate(world, admin, T + 20)  # the owner rotates; `other` publishes it
    fork, thief = rotate(world, admin, T + 21)  # the thief, with the keys from before
    assert fork.current_change_hash != owners.current_change_hash
    root = issue_credential(
        acme.signer, subject=admin.identifier, attributes=ADMIN, now=T, ttl=86_400, depth=0
    )
    feeds = {
        acme.identifier: verified_feed(acme, now=T + 25),
        other.identifier: superseding(other, owners, other, T + 25),
    }
    bundle = create_bundle(
        thief.signer,
        authority=acme.identifier,
        policies='@id("all") permit(principal, action, resource);',
        schema="",
        tools={},
        revision=1,
        now=T + 25,
        ttl=600,
        chain=CredentialChain((root,), (acme.identity.history,)).encode(),
    )
    init_node("desk")
    with open_node("desk") as node:
        node.identities.observe(admin.identity)  # as stored when it enrolled
        policies = NodePolicies(node, feeds.get)
        policies.trust(frozenset(feeds), now=NOW)
        with contextlib.suppress(PolicyError):  # refusing it is fine; storing the fork is not
            policies.accept(bundle, now=NOW)
        assert node.identities.stored_changes(admin.identifier) == 1
        node.identities.check_known(owners)  # the owner's history is no fork here
