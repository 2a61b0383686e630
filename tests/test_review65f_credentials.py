"""Review 65f (credentials, delegation and caveats, adversarially).

1. `admin_chain` (the chain a policy-admin signs an authority's bundles under, picked with
   `CredentialWallet.best`) took the held chain granting troth.role=policy-admin that expires
   last, whether or not a link of it carried caveats; every bundle verifier refuses a caveated
   chain's bundle (`NOT_POLICY_ADMIN`: nothing evaluates a caveat on a bundle). A member
   holding her own policy-admin credential and a caveated delegation of the role that expires
   later (another admin's, narrowed to some tool calls) could sign no bundle at all: each was
   refused when made, and the chain that would have passed was never tried. `best` now takes
   `uncaveated=True`, which passes over a chain with a caveat, and `admin_chain` asks it.
2. `verify_troth_vc` reported as `proofs` (`VerifiedVC.proofs`, `troth credential verify
   --format vc`: "proofs 2") every entry of the VC's proof set, those of other cryptosuites
   too, which troth does not judge (Data Integrity §4.5): anyone handling the VC could append
   a made-up proof (any suite, any `proofValue`) and the verified result said it carried two
   proofs, one of them never checked. It now counts the eddsa-jcs-2022 proofs it verified.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.parties import make_party, verified_feed
from troth.authority.core import ROLE
from troth.credentials import Attributes, CredentialChain, TrustPolicy, delegate, issue_credential
from troth.credentials.vc import export_credential_vc, verify_troth_vc
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


def test_credentials2_a_proof_of_another_suite_is_not_counted_as_verified() -> None:
    vault = SoftwareVault()
    acme, member = make_party(vault, now=T), make_party(vault, now=T)
    document = export_credential_vc(
        acme.signer,
        credential_id=b"\x02" * 16,
        subject=member.identifier,
        attributes=Attributes({"orders.access": "read"}),
        valid_from=T,
        valid_until=T + DAY,
        now=T,
    )
    made_up = {
        "type": "DataIntegrityProof",
        "cryptosuite": "ecdsa-rdfc-2019",
        "verificationMethod": "did:key:zDnaeWhatever#zDnaeWhatever",
        "proofPurpose": "assertionMethod",
        "proofValue": "z" + "1" * 80,
    }
    appended = {**document, "proof": [document["proof"], made_up]}
    verified = verify_troth_vc(
        appended,
        policy=TrustPolicy(frozenset({acme.identifier})),
        issuer=acme.identity,
        feeds={acme.identifier: verified_feed(acme, now=T + 10)},
        now=T + 10,
    )
    assert verified.proofs == 1
    assert verified.to_json()["proofs"] == 1
