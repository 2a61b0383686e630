"""Purpose-key attestations: valid under the current change only, until they expire."""

from __future__ import annotations

import pytest

from troth.crypto import KeyType
from troth.encoding import cbor
from troth.errors import IdentityError, IdentityFailure
from troth.identity import (
    VerifiedIdentity,
    attest_purpose_key,
    new_identity,
    rotate_identity,
    verify_attestation,
)
from troth.vault import KeyHandle, KeyPurpose, SoftwareVault

F = IdentityFailure
NOW = 1_780_000_000


Setup = tuple[SoftwareVault, KeyHandle, VerifiedIdentity]


@pytest.fixture
def setup() -> Setup:
    vault = SoftwareVault()
    handle, identity, _next = new_identity(vault, KeyType.ED25519, now=NOW, valid_for=10**7)
    return vault, handle, identity


def attest(
    vault: SoftwareVault,
    handle: KeyHandle,
    identity: VerifiedIdentity,
    purpose: KeyPurpose = KeyPurpose.SECURE_CHANNEL,
    key_type: KeyType = KeyType.X25519,
    expires: int = NOW + 100,
) -> bytes:
    key = vault.generate(key_type, purpose)
    return attest_purpose_key(
        vault, handle, identity, purpose, vault.public_key(key), now=NOW, expires_at=expires
    )


def rejects(
    identity: VerifiedIdentity,
    data: bytes,
    reason: IdentityFailure,
    purpose: KeyPurpose = KeyPurpose.SECURE_CHANNEL,
    now: int = NOW + 1,
) -> None:
    with pytest.raises(IdentityError) as caught:
        verify_attestation(identity, data, purpose=purpose, now=now)
    assert caught.value.reason is reason, caught.value


def test_valid_for_both_purposes(setup: Setup) -> None:
    vault, handle, identity = setup
    channel = verify_attestation(
        identity, attest(vault, handle, identity), purpose=KeyPurpose.SECURE_CHANNEL, now=NOW
    )
    assert channel.key.key_type is KeyType.X25519
    data = attest(vault, handle, identity, KeyPurpose.SIGNING, KeyType.P256)
    signing = verify_attestation(identity, data, purpose=KeyPurpose.SIGNING, now=NOW)
    assert signing.key.key_type is KeyType.P256


def test_expired(setup: Setup) -> None:
    vault, handle, identity = setup
    data = attest(vault, handle, identity, expires=NOW + 100)
    verify_attestation(identity, data, purpose=KeyPurpose.SECURE_CHANNEL, now=NOW + 99)
    rejects(identity, data, F.ATTESTATION_EXPIRED, now=NOW + 100)


def test_stale_after_rotation() -> None:
    vault = SoftwareVault()
    handle, identity, next_key = new_identity(vault, KeyType.ED25519, now=NOW, valid_for=10**7)
    data = attest(vault, handle, identity)
    rotated = rotate_identity(vault, identity, handle, next_key, now=NOW, valid_for=10**7)
    rejects(rotated.identity, data, F.ATTESTATION_STALE)
    fresh = attest(vault, rotated.primary, rotated.identity)
    verify_attestation(rotated.identity, fresh, purpose=KeyPurpose.SECURE_CHANNEL, now=NOW)


def test_wrong_purpose_and_key_type(setup: Setup) -> None:
    vault, handle, identity = setup
    rejects(identity, attest(vault, handle, identity), F.WRONG_PURPOSE, purpose=KeyPurpose.SIGNING)
    with pytest.raises(IdentityError) as caught:
        attest(vault, handle, identity, KeyPurpose.SECURE_CHANNEL, KeyType.ED25519)
    assert caught.value.reason is F.WRONG_PURPOSE


def test_other_identity(setup: Setup) -> None:
    vault, handle, identity = setup
    _, other, _ = new_identity(vault, KeyType.ED25519, now=NOW, valid_for=10**7)
    rejects(other, attest(vault, handle, identity), F.IDENTIFIER_MISMATCH)


def test_tampered_and_forged(setup: Setup) -> None:
    vault, handle, identity = setup
    data = attest(vault, handle, identity)
    body, signature = cbor.decode(data)
    bad = bytearray(signature)
    bad[0] ^= 1
    rejects(identity, cbor.encode([body, bytes(bad)]), F.ATTESTATION_INVALID)
    intruder = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    rejects(identity, cbor.encode([body, vault.sign(intruder, body)]), F.ATTESTATION_INVALID)
    rejects(identity, data + b"\x00", F.ATTESTATION_INVALID)
    rejects(identity, b"garbage", F.ATTESTATION_INVALID)
    fields = cbor.decode(body)
    fields[0] = "troth.identity.change"
    relabelled = cbor.encode(fields)
    rejects(
        identity, cbor.encode([relabelled, vault.sign(handle, relabelled)]), F.ATTESTATION_INVALID
    )
    fields = cbor.decode(body)
    fields[4] = 0  # "primary" is not a purpose
    primary = cbor.encode(fields)
    rejects(identity, cbor.encode([primary, vault.sign(handle, primary)]), F.ATTESTATION_INVALID)
