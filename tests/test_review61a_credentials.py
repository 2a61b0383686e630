"""Review 61a (credentials and delegation, adversarially).

1. `CredentialWallet.hold` (`troth credential import FILE`, and a refresh's answer) stored the
   chain's expiry as it is signed: a credential may expire as late as 2**64 - 1 (a CBOR
   unsigned integer; its issuer's signing-key attestation as late), and a chain whose root
   expires at 2**63 or later failed with a bare OverflowError from SQLite instead of being
   held. The held row's expiry is now capped at the largest a store holds (2**63 - 1: no
   clock reads later, so the chain orders and expires as it would).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.parties import make_party
from troth.credentials import Attributes, CredentialChain, issue_credential
from troth.credentials.format import STORED_LATEST, CredentialBody
from troth.node import init_node, open_node
from troth.vault import SoftwareVault

T = 1_780_000_000
LAST = 2**64 - 1  # the latest time a credential's body carries


def test_a_chain_expiring_past_2_63_is_held(tmp_path: Path) -> None:
    vault = SoftwareVault()
    authority = make_party(vault, now=T, signing_ttl=LAST - T)  # a key attested until 2**64-1
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        credential = issue_credential(
            authority.signer,
            subject=me.identifier,
            attributes=Attributes({"orders.access": "read"}),
            now=T,
            ttl=LAST - T,
            depth=1,
        )
        assert CredentialBody.decode(credential.body).expires_at == LAST
        chain = CredentialChain((credential,), (authority.identity.history,)).encode()
        held = node.wallet.hold("me", chain, now=T + 5)
        assert held.expires_at == LAST
        (row,) = node.wallet.held("me")
        assert row.chain == chain
        assert row.expires_at == STORED_LATEST == 2**63 - 1
        assert node.wallet.best("me", now=T + 5) == chain
