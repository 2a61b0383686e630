"""Key types, public keys and signature verification (Ed25519 RFC 8032, ECDSA P-256 FIPS 186-5).

ECDSA signatures travel as raw r||s (2 x 32 bytes, SEC 1 §4.1) with s in the lower half of the
group order: signing normalises to low-s, verification rejects high-s, so a signature cannot be
mutated into a second valid one (the malleability Trail of Bits reported in Ockam).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature as _PycaInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from troth.errors import InvalidKey, InvalidSignature

__all__ = [
    "ED25519_SMALL_ORDER_ENCODINGS",
    "ED25519_SMALL_ORDER_Y",
    "P256_ORDER",
    "KeyType",
    "PublicKey",
    "verify_signature",
]

# The order n of the P-256 group (FIPS 186-5 / SEC 2 §2.4.2).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_HALF = P256_ORDER // 2

# Ed25519 public keys of small order (RFC 8032 §5.1 curve; the torsion subgroup of order 8). With
# such a key A, [8]A is the identity, so e.g. A = identity (`01 00…00`), R = identity, S = 0
# satisfies [S]B = R + [k]A for every message k: the "signature" verifies everything (pyca/OpenSSL
# accept it). The 8 points are those with y = 1 (the identity, x = 0), y = p - 1 (order 2, x = 0),
# y = 0 (order 4, x = ±sqrt(-1)) and y = ±Y8 (order 8, both signs of x), where
# Y8^2 = (-1 - sqrt(1 + d)) / d mod p (the doubling of a point of order 8 has y = 0, i.e.
# x^2 = -y^2 on -x^2 + y^2 = 1 + d x^2 y^2). tests/test_crypto.py derives them again. The
# refused encodings are every 32-byte string whose y (the low 255 bits) is one of these mod p,
# with either sign bit: the 8 canonical encodings, y + p for y = 0 and 1, and the "negative
# zero" x of the two points with x = 0 (14 strings; one set lookup per key).
_ED25519_P = 2**255 - 19
_ED25519_Y8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
ED25519_SMALL_ORDER_Y = frozenset({0, 1, _ED25519_P - 1, _ED25519_Y8, _ED25519_P - _ED25519_Y8})
ED25519_SMALL_ORDER_ENCODINGS = frozenset(
    (y | sign << 255).to_bytes(32, "little")
    for small in ED25519_SMALL_ORDER_Y
    for y in (small, small + _ED25519_P)
    if y < 2**255
    for sign in (0, 1)
)


class KeyType(enum.IntEnum):
    """Key types and their wire numbers (docs/formats.md, "Key types")."""

    ED25519 = 1
    P256 = 2
    X25519 = 3

    @property
    def public_length(self) -> int:
        return _PUBLIC_LENGTHS[self]

    @property
    def can_sign(self) -> bool:
        return self is not KeyType.X25519

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def from_label(cls, label: str) -> KeyType:
        for key_type, text in _LABELS.items():
            if text == label:
                return key_type
        raise ValueError(f"unknown key type {label!r} (choose {', '.join(_LABELS.values())})")


_LABELS = {KeyType.ED25519: "ed25519", KeyType.P256: "p256", KeyType.X25519: "x25519"}
_PUBLIC_LENGTHS = {KeyType.ED25519: 32, KeyType.P256: 65, KeyType.X25519: 32}
# module-level names for the members (hot path: in Python 3.11 an enum member looked up on its
# class costs ~6x a global name)
_ED25519, _P256 = KeyType.ED25519, KeyType.P256


@dataclass(frozen=True, slots=True, init=False)
class PublicKey:
    """A public key: its type and raw bytes (Ed25519/X25519: 32 bytes; P-256: 65-byte SEC 1
    uncompressed point). The length is checked here, and that an Ed25519 key is not of small
    order; the point itself when first used."""

    key_type: KeyType
    data: bytes

    def __init__(self, key_type: KeyType, data: bytes) -> None:
        if len(data) != _PUBLIC_LENGTHS[key_type] or (key_type is _P256 and data[0] != 0x04):
            raise InvalidKey(f"not a {key_type.label} public key ({len(data)} bytes)")
        if key_type is _ED25519 and data in ED25519_SMALL_ORDER_ENCODINGS:
            raise InvalidKey("an Ed25519 public key of small order")
        # frozen: the fields are set through their slots (the generated __init__ goes through
        # object.__setattr__, ~3x slower; every key made, decoded or verified makes one)
        _set_key_type(self, key_type)
        _set_data(self, data)

    def p256_compressed(self) -> bytes:
        """The 33-byte SEC 1 compressed form of a P-256 key (used by Multikey, docs/formats.md)."""
        if self.key_type is not KeyType.P256:
            raise InvalidKey("only P-256 keys have a compressed form")
        x, y = self.data[1:33], self.data[33:]
        return bytes([2 + (y[-1] & 1)]) + x

    def load_x25519(self) -> x25519.X25519PublicKey:
        """The key as a pyca object (used by crypto.keys' callers inside troth.crypto/vault)."""
        if self.key_type is not KeyType.X25519:
            raise InvalidKey("not an X25519 key")
        return x25519.X25519PublicKey.from_public_bytes(self.data)


_set_key_type = vars(PublicKey)["key_type"].__set__  # the slot descriptors
_set_data = vars(PublicKey)["data"].__set__
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_load_ed25519 = ed25519.Ed25519PublicKey.from_public_bytes
_SECP256R1 = ec.SECP256R1()


def verify_signature(key: PublicKey, signature: bytes, data: bytes) -> None:
    """Raise `InvalidSignature` unless `signature` is `key`'s signature over `data`."""
    try:
        if key.key_type is _ED25519:
            _load_ed25519(key.data).verify(signature, data)
            return
        if key.key_type is _P256:
            if len(signature) != 64:
                raise InvalidSignature
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            if not (0 < r < P256_ORDER and 0 < s <= _P256_HALF):
                raise InvalidSignature  # high-s (malleated) or out of range
            pub = ec.EllipticCurvePublicKey.from_encoded_point(_SECP256R1, key.data)
            pub.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
            return
    except _PycaInvalidSignature:
        raise InvalidSignature from None
    except ValueError as exc:  # a point not on the curve, a key of the wrong size
        raise InvalidKey(f"invalid {key.key_type.label} public key: {exc}") from None
    raise InvalidKey(f"{key.key_type.label} keys cannot verify signatures")
