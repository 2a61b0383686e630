"""Purpose keys: a secure-channel key (X25519) and a signing key (Ed25519 or P-256), each
attested by the identity's current primary key (docs/formats.md, "Purpose-key attestation").

    body        = ["troth.identity.purpose-key", 1, identifier (32 bytes), change hash (32 bytes),
                   purpose, [key-type, public-key], created_at, expires_at]
    attestation = [body (bstr), signature of the body by the primary key (bstr)]

An attestation names the change under which it was made; only attestations made under the
identity's latest change verify, so a rotation retires every purpose key (lessons: Ockam).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from troth import limits
from troth.crypto import KeyType, PublicKey, verify_signature
from troth.encoding import cbor
from troth.errors import CryptoError, DecodeError, IdentityError, IdentityFailure
from troth.identity.change import decode_public_key, encode_public_key
from troth.identity.history import VerifiedIdentity, future
from troth.identity.identifier import Identifier
from troth.vault import KeyHandle, KeyPurpose, Vault

__all__ = [
    "ATTESTATION_TYPE",
    "PurposeKeyAttestation",
    "VerifiedPurposeKey",
    "attest_purpose_key",
    "verify_attestation",
]

ATTESTATION_TYPE: Final = "troth.identity.purpose-key"
_VERSION: Final = 1
_PURPOSES: Final = {int(purpose): purpose for purpose in KeyPurpose}
_ALL_KEY_TYPES: Final = frozenset(KeyType)
_KEY_TYPES_FOR: Final = {
    KeyPurpose.SECURE_CHANNEL: frozenset({KeyType.X25519}),
    KeyPurpose.SIGNING: frozenset({KeyType.ED25519, KeyType.P256}),
}


@dataclass(frozen=True, slots=True, init=False)
class PurposeKeyAttestation:
    """A decoded, not yet verified, attestation."""

    identifier: Identifier
    change_hash: bytes
    purpose: KeyPurpose
    key: PublicKey
    created_at: int
    expires_at: int
    body: bytes
    signature: bytes

    def __init__(
        self,
        identifier: Identifier,
        change_hash: bytes,
        purpose: KeyPurpose,
        key: PublicKey,
        created_at: int,
        expires_at: int,
        body: bytes,
        signature: bytes,
    ) -> None:
        # frozen: the fields are set through their slots (the generated __init__ goes through
        # object.__setattr__, ~3x slower; every credential verified decodes one)
        _set_identifier(self, identifier)
        _set_change_hash(self, change_hash)
        _set_purpose(self, purpose)
        _set_key(self, key)
        _set_created_at(self, created_at)
        _set_expires_at(self, expires_at)
        _set_body(self, body)
        _set_signature(self, signature)

    @classmethod
    def decode(cls, data: bytes) -> PurposeKeyAttestation:
        outer = cbor.expect_array(
            cbor.decode(data, max_bytes=limits.MAX_ATTESTATION_BYTES), "attestation", 2
        )
        body = cbor.expect_bytes(outer[0], "attestation body")
        signature = cbor.expect_bytes(outer[1], "attestation signature", 64)
        value = cbor.expect_array(cbor.decode(body), "attestation body")
        cbor.expect_header(value, ATTESTATION_TYPE, _VERSION, "attestation")
        if len(value) != 8:
            raise DecodeError(f"attestation: expected 8 elements, got {len(value)}")
        purpose = _PURPOSES.get(value[4]) if type(value[4]) is int else None
        if purpose is None:
            raise DecodeError("attestation: unknown purpose")
        if purpose is KeyPurpose.PRIMARY:
            raise DecodeError("attestation: a primary key is not a purpose key")
        _, _, identifier, change_hash, _, key, created_at, expires_at = value
        if (  # hot path: exact types at once; on failure each field names its own error below
            type(identifier) is bytes
            and len(identifier) == 32
            and type(change_hash) is bytes
            and len(change_hash) == 32
            and type(created_at) is int
            and type(expires_at) is int
            and created_at >= 0
            and expires_at >= 0
        ):
            return cls(
                Identifier(identifier),
                change_hash,
                purpose,
                decode_public_key(key, "purpose key", _ALL_KEY_TYPES),
                created_at,
                expires_at,
                body,
                signature,
            )
        return cls(
            identifier=Identifier(cbor.expect_bytes(value[2], "identifier", 32)),
            change_hash=cbor.expect_bytes(value[3], "change hash", 32),
            purpose=purpose,
            key=decode_public_key(value[5], "purpose key", _ALL_KEY_TYPES),
            created_at=cbor.expect_int(value[6], "created_at"),
            expires_at=cbor.expect_int(value[7], "expires_at"),
            body=body,
            signature=signature,
        )


(
    _set_identifier,
    _set_change_hash,
    _set_purpose,
    _set_key,
    _set_created_at,
    _set_expires_at,
    _set_body,
    _set_signature,
) = (vars(PurposeKeyAttestation)[name].__set__ for name in PurposeKeyAttestation.__slots__)


@dataclass(frozen=True, slots=True, init=False)
class VerifiedPurposeKey:
    """A purpose key an identity attested and a verifier checked: whose it is, for what, the
    public key, until when, and the attestation's bytes."""

    identifier: Identifier
    purpose: KeyPurpose
    key: PublicKey
    expires_at: int
    attestation: bytes = field(repr=False)

    def __init__(
        self,
        identifier: Identifier,
        purpose: KeyPurpose,
        key: PublicKey,
        expires_at: int,
        attestation: bytes,
    ) -> None:
        # frozen: set through the slots, as PurposeKeyAttestation (one per credential verified)
        _set_verified_identifier(self, identifier)
        _set_verified_purpose(self, purpose)
        _set_verified_key(self, key)
        _set_verified_expires_at(self, expires_at)
        _set_verified_attestation(self, attestation)


(
    _set_verified_identifier,
    _set_verified_purpose,
    _set_verified_key,
    _set_verified_expires_at,
    _set_verified_attestation,
) = (vars(VerifiedPurposeKey)[name].__set__ for name in VerifiedPurposeKey.__slots__)


def attest_purpose_key(
    vault: Vault,
    primary: KeyHandle,
    identity: VerifiedIdentity,
    purpose: KeyPurpose,
    key: PublicKey,
    *,
    now: int,
    expires_at: int,
) -> bytes:
    """Sign an attestation of `key` for `purpose` with the identity's current primary key."""
    if key.key_type not in _KEY_TYPES_FOR.get(purpose, frozenset()):
        raise IdentityError(
            IdentityFailure.WRONG_PURPOSE, f"{key.key_type.label} for {purpose.name}"
        )
    body = cbor.encode(
        [
            ATTESTATION_TYPE,
            _VERSION,
            identity.identifier.digest,
            identity.current_change_hash,
            int(purpose),
            encode_public_key(key),
            now,
            expires_at,
        ]
    )
    return cbor.encode([body, vault.sign(primary, body)])


def verify_attestation(
    identity: VerifiedIdentity, data: bytes, *, purpose: KeyPurpose, now: int
) -> VerifiedPurposeKey:
    """Verify that `identity`'s current primary key attested a key for `purpose`, valid at `now`."""
    fail = IdentityFailure
    try:
        attestation = PurposeKeyAttestation.decode(data)
    except DecodeError as exc:
        raise IdentityError(fail.ATTESTATION_INVALID, str(exc)) from None
    if attestation.identifier != identity.identifier:
        raise IdentityError(fail.IDENTIFIER_MISMATCH, "attestation is for another identity")
    if (
        attestation.purpose is not purpose
        or attestation.key.key_type not in _KEY_TYPES_FOR[purpose]
    ):
        raise IdentityError(
            fail.WRONG_PURPOSE, f"{attestation.purpose.name} {attestation.key.key_type.label}"
        )
    if attestation.change_hash != identity.current_change_hash:
        raise IdentityError(fail.ATTESTATION_STALE)
    try:
        verify_signature(identity.current_key, attestation.signature, attestation.body)
    except CryptoError:
        raise IdentityError(fail.ATTESTATION_INVALID, "bad signature") from None
    if now < attestation.created_at - limits.MAX_CLOCK_SKEW_SECONDS:  # review 48s, skew 2
        raise IdentityError(fail.ATTESTATION_NOT_YET_VALID, future(attestation.created_at, now))
    if not now < attestation.expires_at:
        raise IdentityError(
            fail.ATTESTATION_EXPIRED, f"valid {attestation.created_at}..{attestation.expires_at}"
        )
    return VerifiedPurposeKey(
        identity.identifier, purpose, attestation.key, attestation.expires_at, data
    )
