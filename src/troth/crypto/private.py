"""Private keys in software: generate, load, sign, Diffie-Hellman.

Only `troth.vault` (the software vault) and test-only key injection use this module; everything
else holds a vault key handle. `private_bytes()` exists so the software vault can encrypt a key
at rest and must not be called anywhere else.
"""

from __future__ import annotations

from typing import Any, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from troth.crypto.keys import P256_ORDER, KeyType, PublicKey
from troth.errors import CryptoError, InvalidKey

__all__ = ["PrivateKey", "generate_private_key", "load_private_key", "p256_raw_low_s"]

# RFC 6979 deterministic ECDSA: no per-signature randomness to fail, and exact golden vectors
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
_RawKey = ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey
_SECP256R1 = ec.SECP256R1()
# hot path (every key a vault makes or loads): members and constructors bound once, as an enum
# member's lookup through its class costs a __getattr__ hook
_ED25519 = KeyType.ED25519
_P256 = KeyType.P256
_generate_ed25519 = ed25519.Ed25519PrivateKey.generate


def p256_raw_low_s(r: int, s: int) -> bytes:
    """ECDSA (r, s) as raw r||s with s normalised to the lower half of the order."""
    if s > P256_ORDER // 2:
        s = P256_ORDER - s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class PrivateKey:
    """A software private key of one `KeyType`. Signing keys sign; X25519 keys do DH."""

    __slots__ = ("_key", "key_type", "public_key")

    _key: Any  # the pyca key of `key_type` (typed Any: `sign` dispatches on key_type)

    def __init__(
        self,
        key_type: KeyType,
        key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey,
    ) -> None:
        # dispatch on key_type, not isinstance: pyca's key classes are ABCs (slow checks); no
        # `typing.cast` on this path either (a Python call per use: every key made or loaded,
        # every signature)
        self.key_type = key_type
        self._key = key
        if key_type is _P256:
            public = cast(ec.EllipticCurvePrivateKey, key).public_key()
            raw = public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        else:
            raw = self._key.public_key().public_bytes_raw()
        self.public_key = PublicKey(key_type, raw)

    def sign(self, data: bytes) -> bytes:
        key_type = self.key_type
        if key_type is _ED25519:
            signature: bytes = self._key.sign(data)
            return signature
        if key_type is _P256:
            der = self._key.sign(data, _ECDSA_SHA256)
            r, s = decode_dss_signature(der)
            return p256_raw_low_s(r, s)
        raise CryptoError("X25519 keys cannot sign")

    def dh(self, peer: PublicKey) -> bytes:
        """X25519(self, peer) (RFC 7748 §6.1). Raises CryptoError on an all-zero result."""
        key = self._key
        if not isinstance(key, x25519.X25519PrivateKey):
            raise CryptoError(f"{self.key_type.label} keys cannot do X25519")
        try:
            return key.exchange(peer.load_x25519())
        except ValueError as exc:  # low-order peer point -> all-zero shared secret
            raise CryptoError(f"X25519 exchange refused: {exc}") from None

    def private_bytes(self) -> bytes:
        """The raw private key (32 bytes). For the software vault's encryption at rest only."""
        key = self._key
        if self.key_type is _P256:
            private_value = cast(ec.EllipticCurvePrivateKey, key).private_numbers().private_value
            return private_value.to_bytes(32, "big")
        return cast(_RawKey, key).private_bytes_raw()


def generate_private_key(key_type: KeyType) -> PrivateKey:
    if key_type is _ED25519:
        return PrivateKey(key_type, _generate_ed25519())
    if key_type is _P256:
        return PrivateKey(key_type, ec.generate_private_key(_SECP256R1))
    return PrivateKey(key_type, x25519.X25519PrivateKey.generate())


def load_private_key(key_type: KeyType, raw: bytes) -> PrivateKey:
    if len(raw) != 32:
        raise InvalidKey(f"a {key_type.label} private key is 32 bytes, got {len(raw)}")
    try:
        if key_type is KeyType.ED25519:
            return PrivateKey(key_type, ed25519.Ed25519PrivateKey.from_private_bytes(raw))
        if key_type is KeyType.P256:
            return PrivateKey(
                key_type, ec.derive_private_key(int.from_bytes(raw, "big"), _SECP256R1)
            )
        return PrivateKey(key_type, x25519.X25519PrivateKey.from_private_bytes(raw))
    except ValueError as exc:
        raise InvalidKey(f"invalid {key_type.label} private key: {exc}") from None
