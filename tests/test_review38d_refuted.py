"""Review 38d, refuted: attacks on identity histories and rotation that the code already
refuses, pinned (docs/formats.md, "Pre-rotation and stored histories", "Purpose-key
attestation")."""

from __future__ import annotations

import pytest

from tests.support.parties import make_party
from troth.crypto import KeyType, sha256
from troth.errors import IdentityError, IdentityFailure
from troth.identity import (
    ChangeBody,
    SignedChange,
    attest_purpose_key,
    encode_history,
    next_key_digest,
    rotate_identity,
    verify_attestation,
    verify_history,
    verify_signed_by,
)
from troth.vault import KeyPurpose, SoftwareVault

T = 1_780_000_000


def test_a_thief_of_the_current_key_alone_cannot_fork_the_history() -> None:
    """A thief holding alice's current key k0 (not her committed next key) appends its own
    change 1 introducing a key of its own, signed by that key and by k0 (a valid previous-key
    signature): every verifier, stateless ones included, refuses it, before any signature."""
    vault = SoftwareVault()
    alice = make_party(vault, now=T)
    own = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    first = alice.identity.current
    body = ChangeBody(
        1,
        first.change_hash,
        vault.public_key(own),
        next_key_digest(vault.public_key(own)),
        T + 10,
        T + 10,
        T + 86_400,
    ).encode()
    forged = SignedChange(body, vault.sign(own, body), vault.sign(alice.primary, body))
    with pytest.raises(IdentityError) as refused:
        verify_history(encode_history([first.signed, forged]), now=T + 20)
    assert refused.value.reason is IdentityFailure.NEXT_KEY_MISMATCH
    assert refused.value.change == 1


def test_a_channel_key_attestation_is_not_a_signing_attestation() -> None:
    """Key-purpose confusion: an attestation of alice's secure-channel key (X25519) shown where
    her signing key's is asked for is refused, and a signing key attested for the channel
    purpose cannot be made by the attester either."""
    vault = SoftwareVault()
    alice = make_party(vault, now=T)
    channel = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    attestation = attest_purpose_key(
        vault,
        alice.primary,
        alice.identity,
        KeyPurpose.SECURE_CHANNEL,
        vault.public_key(channel),
        now=T,
        expires_at=T + 600,
    )
    with pytest.raises(IdentityError) as refused:
        verify_attestation(alice.identity, attestation, purpose=KeyPurpose.SIGNING, now=T + 1)
    assert refused.value.reason is IdentityFailure.WRONG_PURPOSE
    signing = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    with pytest.raises(IdentityError) as refused:
        attest_purpose_key(
            vault,
            alice.primary,
            alice.identity,
            KeyPurpose.SECURE_CHANNEL,
            vault.public_key(signing),
            now=T,
            expires_at=T + 600,
        )
    assert refused.value.reason is IdentityFailure.WRONG_PURPOSE


def test_a_retired_key_attesting_after_the_rotation_is_stale() -> None:
    """The thief of k0 attests a signing key of its own under c0 after alice rotated (dated
    after the rotation, or before it): against her rotated history it is `made under an older
    change`, whatever its dates; only her old history [c0], which a store or her authority's
    feed refuses, takes it."""
    vault = SoftwareVault()
    alice = make_party(vault, now=T)
    rotated = rotate_identity(
        vault, alice.identity, alice.primary, alice.next_primary, now=T + 10, valid_for=86_400
    ).identity
    thiefs = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    message = b"pay the thief"
    for dated in (T + 5, T + 20):
        attestation = attest_purpose_key(
            vault,
            alice.primary,
            alice.identity,
            KeyPurpose.SIGNING,
            vault.public_key(thiefs),
            now=dated,
            expires_at=dated + 600,
        )
        with pytest.raises(IdentityError) as refused:
            verify_signed_by(rotated, attestation, message, vault.sign(thiefs, message), at=T + 30)
        assert refused.value.reason is IdentityFailure.ATTESTATION_STALE
    # the same attestation verifies against the old history: what stores and feeds are for
    verify_signed_by(alice.identity, attestation, message, vault.sign(thiefs, message), at=T + 30)


def test_the_identifier_survives_rotations_and_names_the_first_change() -> None:
    """Rotation keeps the identifier: the hash of the first change's body, whatever follows."""
    vault = SoftwareVault()
    alice = make_party(vault, now=T)
    identity, primary, next_key = alice.identity, alice.primary, alice.next_primary
    for step in range(1, 4):
        held = rotate_identity(vault, identity, primary, next_key, now=T + step, valid_for=86_400)
        identity, primary, next_key = held.identity, held.primary, held.next_key
    verified = verify_history(identity.history, now=T + 10)
    assert verified.identifier == alice.identifier
    assert verified.identifier.digest == sha256(identity.changes[0].signed.body)
    assert verified.change_count == 4
