"""Review 57j (adversarial review of this session's gates and traces code), bundles: the 57g
fix (`NodePolicies._issuer_known`, `known_in=` on the bundle `ChainVerifier`).

Bundles 1: a `ChainVerifier` given `known_in` keeps no memory of the histories it saw in
chains (review 38d, memory 1: a verifier that saw a rotation refuses the retired key's chains
before the feed names it), and `_issuer_known` only checked against the node's store, storing
nothing. So a node holding acme's history from its enrolment, that learned acme's rotation
from a bundle's chain (a policy-admin acme credentialed after rotating; the bundle pulled from
a member's node or pushed with `troth policy push`, no handshake with acme storing it), took
the next bundle of a thief holding acme's retired key, whose chain's root link that key signed:
before 57g the verifier's memory refused it. `_issuer_known` now stores a history that extends
a stored copy (as the trace collector's verifier does: `NodeTrust._extend_known`). Was a strict
xfail until then.
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


def test_a_rotation_seen_in_a_bundle_chain_refuses_the_retired_key(troth_home: Path) -> None:
    world = make_world()
    acme = world.authority.identifier
    old = world.authority
    rotated, new = rotate(world, old, T + 20)

    def admin_bundle(signer_of_root: object, history: bytes, revision: int) -> bytes:
        admin = make_party(world.vault, now=T)
        root = issue_credential(
            signer_of_root,  # type: ignore[arg-type]
            subject=admin.identifier,
            attributes=ADMIN,
            now=T + 25,
            ttl=3600,
            depth=1,
        )
        chain = CredentialChain((root,), (history,)).encode()
        return create_bundle(
            admin.signer,
            authority=acme,
            policies='@id("all") permit(principal, action, resource);',
            schema="",
            tools={},
            revision=revision,
            now=T + 25,
            ttl=3600,
            chain=chain,
        )

    good = admin_bundle(new.signer, rotated.history, 1)  # acme's admin, made after rotating
    thief = admin_bundle(old.signer, old.identity.history, 2)  # the retired key's
    init_node("desk")
    with open_node("desk") as node:
        node.identities.observe(old.identity)  # acme's history, as stored at enrollment
        policies = NodePolicies(node, world.feeds().get)
        policies.trust(frozenset({acme}), now=T + 30)
        policies.accept(good, now=T + 30)  # its chain shows acme's rotation
        with pytest.raises(PolicyError):
            policies.accept(thief, now=T + 30)
        held = policies.held(acme)
        assert held is not None
        assert held.bundle.body.revision == 1
