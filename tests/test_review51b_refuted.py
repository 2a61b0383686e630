"""Review 51b: attacks tried against the handshake claims a node keeps verified
(troth.channel.claims) that failed: the code was right. Each passes."""

from __future__ import annotations

import pytest

from tests.support.channels import T
from tests.support.parties import claim_with_new_key, make_channel_party
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, verify_peer
from troth.channel.claims import ClaimCache
from troth.channel.verification import HandshakeClaim
from troth.crypto import KeyType
from troth.errors import ChannelError, ChannelFailure
from troth.vault import KeyPurpose, SoftwareVault


def _trust() -> ChannelTrust:
    return ChannelTrust(policy=AnyAuthenticatedIdentity(), claims=ClaimCache())


def test_a_kept_claim_shown_without_its_static_key_is_refused() -> None:
    """Replaying a victim's history and attestation (kept, the victim connected before) with
    the attacker's own Noise static key: the key is compared at every handshake."""
    vault = SoftwareVault()
    victim = make_channel_party(vault, now=T)
    trust = _trust()
    verify_peer(trust, victim.claim(), (), T)
    own = vault.public_key(vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL))
    stolen = HandshakeClaim(victim.party.identity.history, victim.attestation, own)
    with pytest.raises(ChannelError) as refused:
        verify_peer(trust, stolen, (), T)
    assert refused.value.reason is ChannelFailure.PEER_INVALID
    assert "static key" in refused.value.detail


def test_a_kept_attestation_beside_another_history_is_refused() -> None:
    """A kept claim's attestation shown beside the attacker's history: the pair is the key,
    so it is verified in full and refused (the attestation names another identity)."""
    vault = SoftwareVault()
    victim, attacker = make_channel_party(vault, now=T), make_channel_party(vault, now=T)
    trust = _trust()
    verify_peer(trust, victim.claim(), (), T)
    mixed = HandshakeClaim(
        attacker.party.identity.history,
        victim.attestation,
        vault.public_key(victim.channel_key),
    )
    with pytest.raises(ChannelError) as refused:
        verify_peer(trust, mixed, (), T)
    assert refused.value.reason is ChannelFailure.PEER_INVALID


def test_an_expired_attestation_kept_before_is_refused() -> None:
    """Replaying a claim kept while valid after its attestation expired."""
    vault = SoftwareVault()
    peer = make_channel_party(vault, now=T)
    claim = claim_with_new_key(vault, peer.party.primary, peer.party.identity, now=T, ttl=60)
    trust = _trust()
    verify_peer(trust, claim, (), T + 59)
    for later in (T + 60, T + 10**6):
        with pytest.raises(ChannelError) as refused:
            verify_peer(trust, claim, (), later)
        assert refused.value.reason is ChannelFailure.PEER_INVALID
