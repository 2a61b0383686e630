"""Review 61b (adversarial, identity histories): findings, each first a strict xfail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import troth.identity.history as history_module
from tests.support.channels import T
from tests.support.histories import encode, extend, honest_history
from troth import limits
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, verify_peer
from troth.channel.claims import ClaimCache
from troth.channel.verification import HandshakeClaim
from troth.crypto import KeyType
from troth.crypto.private import generate_private_key
from troth.errors import ChannelError, IdentityError, IdentityFailure
from troth.identity import attest_purpose_key, new_identity, rotate_identity, verify_history
from troth.vault import KeyPurpose, SoftwareVault


def _counting_signatures(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the signatures `verify_history` checks (troth.identity.history.verify_signature)."""
    calls: list[int] = []
    real: Callable[..., Any] = getattr(history_module, "verify_signature")  # noqa: B009

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(history_module, "verify_signature", counted)
    return calls


@pytest.mark.xfail(
    strict=True,
    reason="review61b identity 1: the claim cache is keyed by (history, attestation): a peer "
    "showing one long history with a new (or a bad) attestation at each handshake makes the "
    "responder check every change's two signatures again (127 for 64 changes) for its one",
)
def test_a_long_history_shown_again_with_another_attestation_is_not_verified_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vault = SoftwareVault()
    held = new_identity(vault, KeyType.ED25519, now=T, valid_for=30 * 86_400)
    for step in range(1, limits.MAX_IDENTITY_CHANGES):
        held = rotate_identity(
            vault, held.identity, held.primary, held.next_key, now=T + step, valid_for=86_400
        )
    identity = held.identity
    assert len(identity.changes) == limits.MAX_IDENTITY_CHANGES
    channel = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    key = vault.public_key(channel)

    def claim(created: int) -> HandshakeClaim:  # one signature for the peer
        attestation = attest_purpose_key(
            vault, held.primary, identity, KeyPurpose.SECURE_CHANNEL, key,
            now=created, expires_at=created + 3600,
        )  # fmt: skip
        return HandshakeClaim(identity.history, attestation, key)

    trust = ChannelTrust(policy=AnyAuthenticatedIdentity(), claims=ClaimCache())
    verify_peer(trust, claim(T + 100), (), T + 100)
    signatures = _counting_signatures(monkeypatch)
    verify_peer(trust, claim(T + 101), (), T + 101)  # a fresh attestation, the same history
    bad = HandshakeClaim(identity.history, claim(T + 102).attestation[:-1] + b"\x00", key)
    with pytest.raises(ChannelError):
        verify_peer(trust, bad, (), T + 102)  # a bad one: refused
    assert len(signatures) == 0  # only the attestations' signatures are new to check


def test_a_structural_break_at_the_last_change_costs_no_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Anyone appends a junk change (a key of its own: no signature needed) to a public
    63-change history: refused before any signature (it cost 125, the changes' before it:
    `verify_history` checked each change's signatures before the next one's structure)."""
    public = honest_history(limits.MAX_IDENTITY_CHANGES - 1, start=T)
    junk = extend(public, T + 100 * 86_400, new_key=generate_private_key(KeyType.ED25519))
    data = encode(junk.changes)
    signatures = _counting_signatures(monkeypatch)
    with pytest.raises(IdentityError) as caught:
        verify_history(data, now=T + 101 * 86_400)
    assert caught.value.reason is IdentityFailure.NEXT_KEY_MISMATCH
    assert caught.value.change == limits.MAX_IDENTITY_CHANGES - 1
    assert len(signatures) == 0
