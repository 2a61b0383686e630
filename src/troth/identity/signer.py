"""Signing as an identity: its signing purpose key, with the attestation that proves the key is
the identity's. Formats above identity (credentials, revocation feeds, requests, traces) ship
`(body, signature, attestation)` so that a verifier needs only the signer's change history."""

from __future__ import annotations

from dataclasses import dataclass

from troth.crypto import verify_signature
from troth.errors import CryptoError, IdentityError, IdentityFailure
from troth.identity.attestation import VerifiedPurposeKey, verify_attestation
from troth.identity.history import VerifiedIdentity
from troth.vault import KeyHandle, KeyPurpose, Vault

__all__ = ["Signer", "verify_signed_by"]


@dataclass(frozen=True, slots=True)
class Signer:
    """An identity's signing key in a vault, attested under its current change."""

    identity: VerifiedIdentity
    vault: Vault
    handle: KeyHandle
    attestation: bytes
    expires_at: int

    def sign(self, body: bytes) -> bytes:
        return self.vault.sign(self.handle, body)

    @property
    def key_end(self) -> int:
        """The first second every verifier refuses what this signer signed: its identity's
        current primary key is valid through its `valid_until` (a history checked at `now`
        refuses it after), so whatever it signs with an expiry (live while `now < expiry`)
        ends by `valid_until + 1` at the latest (reviews 75g, 75l: a link, a VC, a policy
        bundle claimed a validity every verifier refuses)."""
        return self.identity.current.body.valid_until + 1


def verify_signed_by(
    identity: VerifiedIdentity, attestation: bytes, body: bytes, signature: bytes, *, at: int
) -> VerifiedPurposeKey:
    """Verify `signature` over `body` by `identity`'s signing key, attested and valid at `at`.
    Raises IdentityError with the attestation's reason (IDENTIFIER_MISMATCH,
    ATTESTATION_INVALID, ATTESTATION_STALE, ...) when `attestation` is no signing key of
    `identity` valid at `at`, and BAD_SIGNATURE when the signature does not verify under that
    key (callers tell the two apart: a credential's or a gate bundle's `bad signature`)."""
    key = verify_attestation(identity, attestation, purpose=KeyPurpose.SIGNING, now=at)
    try:
        verify_signature(key.key, signature, body)
    except CryptoError:
        raise IdentityError(IdentityFailure.BAD_SIGNATURE, "signature by the signing key") from None
    return key
