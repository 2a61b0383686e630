"""Review 28b, refuted 1: a real change recorded as made up (and a rollback taken).

A checkpointed history's first change is verified by its own signature and its checkpoint's
word on its hash, `sha256(body)`; its previous-key signature is only required to be present
(troth.identity.history, `_check_structure`: "attested by the checkpoint, not checked here").
So anyone holding alice's real change 1 (she rotated; any node that saw her holds it) and a
trusted feed naming it (acme's supersession, her own authority's) can make a copy of her from
change 1 whose previous-key signature is zeros: it verifies, and acme's feed binds it to acme's
chains (it names change 1). Mallory, a delegate of alice's (any holder of a chain through her),
shows her chain with alice's history swapped for that copy at a handshake: desk, which stores no
copy of alice, stores it as the chain's issuer history (`NodeTrust._remember`; the trace
collector's `_keep_issuers` and an import verify it the same way).

Then her older history (change 0 only: what a thief of her rotated-away key holds, from a
stolen backup) is a rollback of that copy, but `KnownHistories._made_up` calls `check_follows`
with the stored copy's change 1 as sent, whose previous-key signature fails: the copy is taken
for made up (REFUTED). The node

- tells its `refuted` hooks at the judgment of the handshake claim, before the attestation is
  checked: acme's voucher on alice (acme's feed names her real change 1) is forgotten, so
  acme's supersession no longer has standing over her (a keyless stranger showing her public
  change 0 does that much, and her next handshake does not bring the voucher back);
- admits the thief (his globex chain: globex never superseded her) with her rotated-away key;
- stores the rollback over her copy, and records her REAL change 1 in `refuted_changes`: acme,
  an honest authority, holds no voucher on her for good (`Vouchers.vouch` adds none, every
  reload forgets any), after a restart too.

The hash covers the body only: a previous-key signature that fails on a body whose key is the
one committed to shows a mangled copy, not a made-up change (a made-up change with that key
needs the next private key, the member's). Both tests were strict xfails until
`KnownHistories._made_up` judged the change's body only (`check_follows(..., signed=False)`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.channels import MEMBER, T
from tests.support.feeds import pages, superseded
from tests.support.parties import make_channel_party, signer_as
from tests.test_trust_scope import NOW, Two, make_two
from troth.channel import AnyAuthenticatedIdentity, verify_peer
from troth.channel.verification import ChannelTrust, HandshakeClaim
from troth.credentials import (
    CredentialChain,
    delegate,
    issue_credential,
)
from troth.errors import ChannelError, ChannelFailure
from troth.identity import (
    Checkpoint,
    SignedChange,
    VerifiedIdentity,
    attest_purpose_key,
    encode_history,
    rotate_identity,
)
from troth.node import Node, init_node, open_node
from troth.node.trust import NodeTrust
from troth.vault import KeyPurpose


@dataclass
class Rotated:
    """Desk trusting acme and globex; alice (acme's member) rotated once, acme's feed naming
    her change 1; desk stores a copy of her from change 1 whose previous-key signature is
    zeros (Mallory's handshake: her chain through alice, alice's history swapped for it)."""

    two: Two
    node: Node
    rotated: VerifiedIdentity  # her changes 0 and 1
    now_alice: HandshakeClaim  # the real alice, after her rotation
    thief: HandshakeClaim  # her change 0, its key (stolen), the channel key attested then


@pytest.fixture
def rotated(troth_home: Path) -> Iterator[Rotated]:
    two = make_two()
    init_node("desk")
    with open_node("desk") as node:
        alice = two.alice
        vault = two.vault
        old = alice.party
        primary, rotated, _ = rotate_identity(
            vault, old.identity, old.primary, old.next_primary, now=T, valid_for=10**8
        )
        supersession = superseded(
            0, alice.identifier, two.acme.identifier, 2, rotated.current_change_hash, at=T
        )
        (acme_page,) = pages(two.acme, [supersession], now=T, per_page=1)
        (globex_page,) = pages(two.globex, [], now=T, per_page=1)
        for authority, page in ((two.acme, acme_page), (two.globex, globex_page)):
            node.wallet.trust(authority.identifier, f"node:{authority.identifier}", now=T)
            node.wallet.update_feed(page, authority=authority.identifier, now=NOW)
        real = rotated.current.signed
        mangled = encode_history(
            [SignedChange(real.body, real.signature, bytes(64))],
            Checkpoint(alice.identifier.digest, two.acme.identifier.digest, 1),
        )
        root = issue_credential(
            two.acme.signer, subject=alice.identifier, attributes=MEMBER, now=T, ttl=3600, depth=2
        )
        mallory = make_channel_party(vault, now=T)
        chain = delegate(
            signer_as(vault, primary, rotated, now=T),
            CredentialChain((root,), (two.acme.identity.history,)),
            subject=mallory.party.identifier,
            attributes=MEMBER,
            now=T,
            ttl=600,
            purpose="helper",
        )
        swapped = CredentialChain(chain.credentials, (chain.histories[0], mangled)).encode()
        node_trust = NodeTrust(node, None)
        node_trust.reload(NOW)
        as_mallory = mallory.claim()
        trust = node_trust.channel_trust(AnyAuthenticatedIdentity())
        peer = verify_peer(trust, as_mallory, (swapped,), NOW)
        assert peer.identifier == mallory.party.identifier
        assert node.identities.stored_changes(alice.identifier) == 2  # the swapped copy
        node.identities.refuted_hooks.clear()  # desk restarted
        channel_key = vault.public_key(alice.channel_key)
        attestation = attest_purpose_key(
            vault,
            primary,
            rotated,
            KeyPurpose.SECURE_CHANNEL,
            channel_key,
            now=T,
            expires_at=T + 3600,
        )
        yield Rotated(
            two,
            node,
            rotated,
            HandshakeClaim(rotated.history, attestation, channel_key),
            HandshakeClaim(old.identity.history, alice.attestation, channel_key),
        )


def desk_trust(node: Node) -> tuple[NodeTrust, ChannelTrust]:
    """Desk's trust as loaded at a start, and its channels' trust."""
    node_trust = NodeTrust(node, None)
    node_trust.reload(NOW)
    return node_trust, node_trust.channel_trust(AnyAuthenticatedIdentity())


def test_a_mangled_signature_does_not_make_a_real_change_refuted(rotated: Rotated) -> None:
    two = rotated.two
    alice = two.alice.identifier
    acme = two.acme.identifier
    node_trust, trust = desk_trust(rotated.node)
    peer = verify_peer(trust, rotated.now_alice, (two.chain(two.acme),), NOW)
    assert peer.identity.current_change_hash == rotated.rotated.current_change_hash
    assert set(node_trust.vouchers.of(alice)) == {acme}
    # the thief: her change 0 and its key, a globex chain (globex never superseded her)
    with pytest.raises(ChannelError) as refused:
        verify_peer(trust, rotated.thief, (two.chain(two.globex),), NOW)
    assert refused.value.reason is ChannelFailure.PEER_INVALID
    assert "stored copy" in str(refused.value)  # a rollback of the stored copy
    assert rotated.node.identities.stored_changes(alice) == 2
    assert set(node_trust.vouchers.of(alice)) == {acme}
    restarted, trust = desk_trust(rotated.node)
    verify_peer(trust, rotated.now_alice, (two.chain(two.acme),), NOW)
    assert set(restarted.vouchers.of(alice)) == {acme}


def test_a_strangers_claim_does_not_cost_an_honest_authority_its_word(rotated: Rotated) -> None:
    """Refuted 1, keyless: the claim is judged against the stored copy before its attestation
    is checked (and the `refuted` hooks told then): a stranger holding no key of hers, only her
    public change 0, is refused, but acme's voucher on her is gone, and her next handshake with
    her acme chain does not bring it back."""
    two = rotated.two
    alice = two.alice.identifier
    acme = two.acme.identifier
    node_trust, trust = desk_trust(rotated.node)
    verify_peer(trust, rotated.now_alice, (two.chain(two.acme),), NOW)
    assert set(node_trust.vouchers.of(alice)) == {acme}
    stranger = HandshakeClaim(  # her change 0, with an attestation it cannot have made
        rotated.thief.history, rotated.now_alice.attestation, rotated.thief.static_key
    )
    with pytest.raises(ChannelError) as refused:
        verify_peer(trust, stranger, (), NOW)
    assert refused.value.reason is ChannelFailure.PEER_INVALID
    verify_peer(trust, rotated.now_alice, (two.chain(two.acme),), NOW)
    assert set(node_trust.vouchers.of(alice)) == {acme}
