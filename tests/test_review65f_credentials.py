"""Review 65f (credentials, delegation and caveats, adversarially).

1. `admin_chain` (the chain a policy-admin signs an authority's bundles under, picked with
   `CredentialWallet.best`) took the held chain granting troth.role=policy-admin that expires
   last, whether or not a link of it carried caveats; every bundle verifier refuses a caveated
   chain's bundle (`NOT_POLICY_ADMIN`: nothing evaluates a caveat on a bundle). A member
   holding her own policy-admin credential and a caveated delegation of the role that expires
   later (another admin's, narrowed to some tool calls) could sign no bundle at all: each was
   refused when made, and the chain that would have passed was never tried. `best` now takes
   `uncaveated=True`, which passes over a chain with a caveat, and `admin_chain` asks it.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.parties import make_party
from troth.authority.core import ROLE
from troth.credentials import Attributes, CredentialChain, delegate, issue_credential
from troth.gates.bundles import POLICY_ADMIN
from troth.node import init_node, open_node
from troth.node.services.policy import admin_chain, sign_bundle_as
from troth.vault import SoftwareVault

T = 1_780_000_000
DAY = 86_400
ADMIN = Attributes({ROLE: POLICY_ADMIN})


def test_credentials1_a_caveated_admin_chain_does_not_shadow_an_uncaveated_one(
    tmp_path: Path,
) -> None:
    vault = SoftwareVault()
    acme, nora = make_party(vault, now=T), make_party(vault, now=T)
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        own = issue_credential(
            acme.signer, subject=me.identifier, attributes=ADMIN, now=T, ttl=5 * DAY, depth=1
        )
        direct = CredentialChain((own,), (acme.identity.history,)).encode()
        to_nora = issue_credential(
            acme.signer, subject=nora.identifier, attributes=ADMIN, now=T, ttl=20 * DAY, depth=2
        )
        caveated = delegate(
            nora.signer,
            CredentialChain((to_nora,), (acme.identity.history,)),
            subject=me.identifier,
            attributes=ADMIN,
            now=T,
            ttl=15 * DAY,
            purpose="tool calls under 100",
            caveats=["context has args && context.args.amount <= 100"],
        ).encode()
        node.wallet.hold("me", direct, now=T + 5)
        node.wallet.hold("me", caveated, now=T + 5)  # expires last
        at = T + 10
        assert admin_chain(node, "me", acme.identifier, now=at) == direct
        bundle = sign_bundle_as(
            node,
            "me",
            authority=acme.identifier,
            policies='@id("all")\npermit(principal, action, resource);',
            schema="",
            tools={},
            services={},
            revision=1,
            now=at,
        )
        assert bundle
