"""Review 57g (identity rotation), bundles: a policy-admin chain issued with the authority's
retired key, on a node that stored the authority's rotation.

Bundles 1: acme rotates (its key stolen) and desk stores its new history (acme connected to
desk, pushed its bundle: a handshake stores an anchor's history); acme's feed desk holds does
not say so yet (its next page will: up to the feed's staleness, 300 s, and the sync after).
The thief, with acme's pre-rotation signing key, makes its own identity a policy-admin (a root
link issued under acme's old history) and pushes a bundle of a higher revision: desk takes it
and enforces the thief's policies. A channel is refused such a chain (a handshake judges a
chain's issuer histories against the node's stored copies: `NodeTrust._issuer_known`), but
`NodePolicies` verifies a bundle signer's chain with a `ChainVerifier` of its own, without the
store (its memory never saw acme's rotation: acme's own bundle has no chain), and judges only
the signer's history against the store (`_signer_known`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gates import ADMIN, T, make_world, rotate
from tests.support.parties import make_party
from troth.credentials import CredentialChain, issue_credential
from troth.errors import PolicyError
from troth.gates import create_bundle
from troth.node import init_node, open_node
from troth.node.services.node_policies import NodePolicies


def test_a_policy_admin_made_with_the_retired_authority_key_is_refused(troth_home: Path) -> None:
    world = make_world()
    acme = world.authority.identifier
    old = world.authority
    rotated, world.authority = rotate(world, old, T + 20)
    thief_admin = make_party(world.vault, now=T)
    root = issue_credential(
        old.signer,  # acme's pre-rotation signing key (the stolen backup's)
        subject=thief_admin.identifier,
        attributes=ADMIN,
        now=T + 25,
        ttl=3600,
        depth=1,
    )
    chain = CredentialChain((root,), (old.identity.history,)).encode()
    bundle = create_bundle(
        thief_admin.signer,
        authority=acme,
        policies='@id("all") permit(principal, action, resource);',
        schema="",
        tools={},
        revision=7,
        now=T + 25,
        ttl=3600,
        chain=chain,
    )
    init_node("desk")
    with open_node("desk") as node:
        node.identities.observe(rotated)  # acme's rotation, stored at its handshake
        policies = NodePolicies(node, world.feeds().get)
        policies.trust(frozenset({acme}), now=T + 30)
        policies.accept(world.bundle(revision=1, now=T + 25), now=T + 30)  # acme's, held
        with pytest.raises(PolicyError):
            policies.accept(bundle, now=T + 30)
        held = policies.held(acme)
        assert held is not None
        assert held.bundle.body.revision == 1
