"""Review 61b (adversarial, identity histories): findings, each first a strict xfail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

import troth.identity.history as history_module
import troth.identity.signatures as signatures_module
from tests.support.channels import T
from tests.support.histories import encode, extend, honest_history
from troth import limits
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, verify_peer
from troth.channel.claims import ClaimCache
from troth.channel.verification import HandshakeClaim
from troth.crypto import KeyType, PublicKey, sha256
from troth.crypto.private import generate_private_key
from troth.errors import ChannelError, IdentityError, IdentityFailure
from troth.identity import (
    HeldIdentity,
    SeenSignatures,
    SignedChange,
    attest_purpose_key,
    decode_history,
    encode_history,
    new_identity,
    rotate_identity,
    verify_history,
)
from troth.vault import KeyPurpose, SoftwareVault


def _counting_signatures(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the signatures `verify_history` checks, itself or through a `SeenSignatures`."""
    calls: list[int] = []
    for module in (history_module, signatures_module):
        real: Callable[..., Any] = getattr(module, "verify_signature")  # noqa: B009

        def counted(*args: Any, _real: Callable[..., Any] = real, **kwargs: Any) -> Any:
            calls.append(1)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, "verify_signature", counted)
    return calls


class _LongPeer(NamedTuple):
    """A peer whose history holds MAX_IDENTITY_CHANGES changes, with a channel key."""

    vault: SoftwareVault
    held: HeldIdentity
    key: PublicKey

    def claim(self, created: int, history: bytes | None = None) -> HandshakeClaim:
        """Its claim with a fresh attestation made at `created` (one signature for it)."""
        identity = self.held.identity
        attestation = attest_purpose_key(
            self.vault, self.held.primary, identity, KeyPurpose.SECURE_CHANNEL, self.key,
            now=created, expires_at=created + 3600,
        )  # fmt: skip
        return HandshakeClaim(
            identity.history if history is None else history, attestation, self.key
        )


def _long_peer() -> _LongPeer:
    vault = SoftwareVault()
    held = new_identity(vault, KeyType.ED25519, now=T, valid_for=30 * 86_400)
    for step in range(1, limits.MAX_IDENTITY_CHANGES):
        held = rotate_identity(
            vault, held.identity, held.primary, held.next_key, now=T + step, valid_for=86_400
        )
    assert len(held.identity.changes) == limits.MAX_IDENTITY_CHANGES
    channel = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    return _LongPeer(vault, held, vault.public_key(channel))


def _corrupted(changes: list[SignedChange], index: int) -> bytes:
    """The history of `changes` with change `index`'s signature corrupted (its hash, of the
    body only, unchanged)."""
    changes = list(changes)
    signature = changes[index].signature
    changes[index] = changes[index]._replace(signature=signature[:-1] + bytes([signature[-1] ^ 1]))
    return encode_history(changes)


def _shown_once(monkeypatch: pytest.MonkeyPatch) -> tuple[_LongPeer, ChannelTrust, list[int]]:
    """A long peer admitted once by a responder with a claim cache, and the count of the
    signatures `verify_history` checks from then on."""
    peer = _long_peer()
    trust = ChannelTrust(policy=AnyAuthenticatedIdentity(), claims=ClaimCache())
    verify_peer(trust, peer.claim(T + 100), (), T + 100)
    return peer, trust, _counting_signatures(monkeypatch)


def test_a_long_history_shown_again_with_another_attestation_is_not_verified_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 61b, identity 1: the claim cache is keyed by (history, attestation), so a long
    history shown again with a new attestation (one signature for the peer) or a bad one (any
    public history will do) was verified in full again, 127 signatures for 64 changes: ~34 ms
    of a core a handshake here, where HANDSHAKE_RATE budgets ~0.4 ms."""
    peer, trust, signatures = _shown_once(monkeypatch)
    verify_peer(trust, peer.claim(T + 101), (), T + 101)  # a fresh attestation, the same history
    good = peer.claim(T + 102)
    flipped = good.attestation[:-1] + bytes((good.attestation[-1] ^ 1,))  # (never the same)
    bad = HandshakeClaim(good.history, flipped, good.static_key)
    with pytest.raises(ChannelError):
        verify_peer(trust, bad, (), T + 102)  # a bad one: refused
    assert len(signatures) == 0  # only the attestations' signatures are new to check


def test_a_seen_history_with_one_signature_corrupted_costs_only_that_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 61b, identity 1: one signature of a long history seen before, corrupted (a
    change's hash covers its body only, so the attestation still names the current change),
    cost every earlier change's signatures again."""
    peer, trust, signatures = _shown_once(monkeypatch)
    corrupted = _corrupted(decode_history(peer.held.identity.history), -2)
    with pytest.raises(ChannelError, match="bad signature"):
        verify_peer(trust, peer.claim(T + 101, corrupted), (), T + 101)
    assert len(signatures) <= 2  # the corrupted change's: the others verified before


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


def test_seen_signatures_are_not_checked_again_and_failures_never_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mechanism for identity 1 (`verify_history(seen=...)`): a history verified before
    costs no signature again, one with a signature corrupted only that one, every time (a
    failure is never remembered); bounded."""
    history = honest_history(limits.MAX_IDENTITY_CHANGES, start=T)
    data, now = encode(history.changes), T + 100 * 86_400
    seen = SeenSignatures()
    signatures = _counting_signatures(monkeypatch)
    verify_history(data, now=now, seen=seen)
    assert len(signatures) == len(seen) == 2 * limits.MAX_IDENTITY_CHANGES - 1
    signatures.clear()
    assert verify_history(data, now=now, seen=seen).current_change_hash == sha256(
        history.changes[-1].body
    )
    assert signatures == []
    for _ in range(2):
        with pytest.raises(IdentityError) as caught:
            verify_history(_corrupted(history.changes, 40), now=now, seen=seen)
        assert (caught.value.reason, caught.value.change) == (IdentityFailure.BAD_SIGNATURE, 40)
    assert len(signatures) == 2  # the corrupted one, checked each time
    assert len(seen) == 2 * limits.MAX_IDENTITY_CHANGES - 1
    few, none = SeenSignatures(max_entries=3), SeenSignatures(max_entries=0)
    for bounded in (few, none):
        verify_history(data, now=now, seen=bounded)
    assert (len(few), len(none)) == (3, 0)
