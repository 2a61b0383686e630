"""Review 51b (performance, establishment): handshake claims verified before are kept
(troth.channel.claims; docs/protocols.md, "Claims verified before"). A peer showing the same
history and attestation bytes again pays no signature; every other check still runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import troth.channel.verification as verification
from tests.support.channels import T
from tests.support.parties import ChannelParty, claim_with_new_key, make_channel_party
from troth import limits
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, verify_peer
from troth.channel.claims import CLAIM_CHANGE_BYTES, ClaimCache
from troth.channel.verification import HandshakeClaim
from troth.errors import ChannelError, ChannelFailure
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust
from troth.vault import SoftwareVault


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of `troth.channel.verification.<name>` (a verifier it calls)."""
    calls: list[int] = []
    real: Callable[..., Any] = getattr(verification, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(verification, name, counted)
    return calls


def _trust(claims: ClaimCache | None) -> ChannelTrust:
    return ChannelTrust(policy=AnyAuthenticatedIdentity(), claims=claims)


@pytest.fixture
def peer() -> ChannelParty:
    return make_channel_party(SoftwareVault(), now=T)


def test_a_claim_shown_again_is_not_verified_again(
    peer: ChannelParty, monkeypatch: pytest.MonkeyPatch
) -> None:
    histories = _counting(monkeypatch, "verify_history")
    attestations = _counting(monkeypatch, "verify_attestation")
    trust = _trust(ClaimCache())
    first = verify_peer(trust, peer.claim(), (), T)
    second = verify_peer(trust, peer.claim(), (), T + 60)
    assert first.identifier == second.identifier == peer.identifier
    assert (len(histories), len(attestations)) == (1, 1)
    assert len(trust.claims or ()) == 1


def test_without_a_cache_every_claim_is_verified(
    peer: ChannelParty, monkeypatch: pytest.MonkeyPatch
) -> None:
    histories = _counting(monkeypatch, "verify_history")
    trust = _trust(None)
    verify_peer(trust, peer.claim(), (), T)
    verify_peer(trust, peer.claim(), (), T)
    assert len(histories) == 2


def test_a_kept_claim_is_verified_again_at_an_earlier_time(
    peer: ChannelParty, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check that held at a time holds at any later one, not at an earlier one: a clock
    set back verifies the claim in full."""
    histories = _counting(monkeypatch, "verify_history")
    trust = _trust(ClaimCache())
    verify_peer(trust, peer.claim(), (), T + 100)
    verify_peer(trust, peer.claim(), (), T + 99)
    assert len(histories) == 2


def test_a_kept_claim_is_used_up_to_its_attestations_expiry(
    peer: ChannelParty, monkeypatch: pytest.MonkeyPatch
) -> None:
    party = peer.party
    claim = claim_with_new_key(peer.vault, party.primary, party.identity, now=T, ttl=100)
    histories = _counting(monkeypatch, "verify_history")
    trust = _trust(ClaimCache())
    verify_peer(trust, claim, (), T)
    verify_peer(trust, claim, (), T + 99)
    assert len(histories) == 1
    with pytest.raises(ChannelError) as refused:
        verify_peer(trust, claim, (), T + 100)
    assert refused.value.reason is ChannelFailure.PEER_INVALID
    assert "expired" in refused.value.detail
    assert len(histories) == 2  # verified in full, refused as before


def test_the_stored_copy_is_judged_at_every_handshake(
    peer: ChannelParty, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`known` (a copy stored since, e.g. the peer's rotation) refuses a kept claim too."""
    from troth.errors import IdentityError, IdentityFailure
    from troth.identity import VerifiedIdentity

    refuse = [False]

    def known(identity: VerifiedIdentity) -> None:
        if refuse[0]:
            raise IdentityError(IdentityFailure.ROLLBACK, "a newer copy is stored")

    trust = ChannelTrust(policy=AnyAuthenticatedIdentity(), known=known, claims=ClaimCache())
    verify_peer(trust, peer.claim(), (), T)
    refuse[0] = True
    with pytest.raises(ChannelError) as refused:
        verify_peer(trust, peer.claim(), (), T)
    assert refused.value.reason is ChannelFailure.PEER_INVALID


def test_the_cache_is_bounded_by_results_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    vault = SoftwareVault()
    parties = [make_channel_party(vault, now=T) for _ in range(3)]
    claims = ClaimCache(max_results=2)
    trust = _trust(claims)
    for party in parties:
        verify_peer(trust, party.claim(), (), T)
    assert len(claims) == 2
    histories = _counting(monkeypatch, "verify_history")
    verify_peer(trust, parties[0].claim(), (), T)  # the oldest went first
    verify_peer(trust, parties[2].claim(), (), T)
    assert len(histories) == 1

    claim = parties[0].claim()
    cost = len(claim.history) + len(claim.attestation) + CLAIM_CHANGE_BYTES
    small = ClaimCache(max_bytes=cost - 1)
    verify_peer(_trust(small), claim, (), T)
    assert len(small) == 0  # over the bytes allowed: not kept
    exact = ClaimCache(max_bytes=cost)
    verify_peer(_trust(exact), claim, (), T)
    assert len(exact) == 1
    assert ClaimCache().max_bytes == limits.MAX_CACHED_CLAIM_BYTES
    assert ClaimCache().max_results == limits.MAX_CACHED_CLAIMS


def test_a_nodes_channels_share_one_cache(troth_home: Path) -> None:
    """Every channel trust a node makes (pinned ones too) keeps claims in the node's one
    cache: a peer reconnecting is not verified again."""
    init_node("desk")
    with open_node("desk") as node:
        trust = NodeTrust(node, None)
        first = trust.channel_trust(AnyAuthenticatedIdentity())
        second = trust.channel_trust(AnyAuthenticatedIdentity())
        assert first.claims is not None
        assert first.claims is second.claims


def test_equal_bytes_are_one_claim(peer: ChannelParty) -> None:
    """Keyed by the bytes: another bytes object with the same content hits."""
    trust = _trust(ClaimCache())
    claim = peer.claim()
    verify_peer(trust, claim, (), T)
    copy = HandshakeClaim(
        bytes(bytearray(claim.history)), bytes(bytearray(claim.attestation)), claim.static_key
    )
    assert trust.claims is not None
    assert trust.claims.get(copy.history, copy.attestation, T) is not None


def test_a_claim_in_other_buffers_is_verified_in_full(
    peer: ChannelParty, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only `bytes` (what a handshake decodes) are kept: a bytearray is verified every time,
    never an unhashable key."""
    histories = _counting(monkeypatch, "verify_history")
    trust = _trust(ClaimCache())
    claim = peer.claim()
    loose = HandshakeClaim(
        bytearray(claim.history),  # type: ignore[arg-type]
        claim.attestation,
        claim.static_key,
    )
    verify_peer(trust, loose, (), T)
    verify_peer(trust, loose, (), T)
    assert len(histories) == 2
    assert len(trust.claims or ()) == 0
