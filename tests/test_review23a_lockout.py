"""Review 23a, checkpoints 3: a co-trusted authority's made-up checkpointed history of another
authority's member, stored by a node, locks the member out of it.

Globex (trusted by desk, as acme is) names a made-up change 1 of alice — acme's member, one
change — in its feed, issues a globex credential to her identifier and opens a channel to desk
as her with that history and a key of its own. Globex's chain verifies and its feed binds the
history (its own checkpoint), so desk admits the peer and stores the history (store-or-extend).
When the real alice connects with her acme credential and her real history (change 0), desk
refuses it as older than the stored copy: globex cut desk off from acme's member, which
docs/credentials.md ("Trust decisions are the verifier's") says one trusted authority cannot do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.channels import MEMBER, T
from tests.support.feeds import pages
from tests.test_review23a_checkpoints import forged_change
from tests.test_trust_scope import NOW, make_two
from troth.channel import AnyAuthenticatedIdentity, verify_peer
from troth.channel.verification import HandshakeClaim
from troth.credentials import CredentialChain, issue_credential
from troth.crypto import KeyType
from troth.identity import attest_purpose_key
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust
from troth.vault import KeyPurpose


@pytest.mark.xfail(
    strict=True,
    reason="review 23a (left): a node stores a co-trusted authority's made-up checkpointed "
    "history of another authority's member at first sight; the member's real history is "
    "then a rollback there",
)
def test_a_co_trusted_authority_cannot_lock_anothers_member_out(troth_home: Path) -> None:
    two = make_two()
    init_node("desk")
    with open_node("desk") as node:
        for authority in (two.acme, two.globex):
            node.wallet.trust(authority.identifier, f"node:{authority.identifier}", now=T)
        alice = two.alice
        forged = forged_change(two, alice.identifier, 1, alice.identifier.digest)
        (acme_page,) = pages(two.acme, [], now=T, per_page=1)
        node.wallet.update_feed(acme_page, authority=two.acme.identifier, now=NOW)
        node.wallet.update_feed(forged.page, authority=two.globex.identifier, now=NOW)
        node_trust = NodeTrust(node, None)
        node_trust.reload(NOW)
        trust = node_trust.channel_trust(AnyAuthenticatedIdentity())
        vault = two.vault
        channel_key = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
        attestation = attest_purpose_key(
            vault,
            forged.primary,
            forged.identity,
            KeyPurpose.SECURE_CHANNEL,
            vault.public_key(channel_key),
            now=T,
            expires_at=T + 3600,
        )
        globex_chain = CredentialChain(
            (
                issue_credential(
                    two.globex.signer,
                    subject=alice.identifier,
                    attributes=MEMBER,
                    now=T,
                    ttl=3600,
                    depth=1,
                ),
            ),
            (two.globex.identity.history,),
        ).encode()
        as_alice = HandshakeClaim(
            forged.identity.history, attestation, vault.public_key(channel_key)
        )
        assert verify_peer(trust, as_alice, (globex_chain,), NOW).identifier == alice.identifier
        real = HandshakeClaim(
            alice.party.identity.history,
            alice.attestation,
            vault.public_key(alice.channel_key),
        )
        peer = verify_peer(trust, real, (two.chain(two.acme),), NOW)
        assert [c.authority for c in peer.credentials] == [two.acme.identifier]
