"""The crypto boundary against published vectors, and the P-256 low-s rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from troth.crypto import Aead, AeadAlgorithm, KeyType, PublicKey, hkdf_sha256, verify_signature
from troth.crypto.keys import P256_ORDER
from troth.crypto.private import generate_private_key, load_private_key
from troth.errors import CryptoError, InvalidKey, InvalidSignature

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "crypto" / "rfc_vectors.json").read_text()
)


@pytest.mark.parametrize("vector", VECTORS["ed25519"], ids=lambda v: v["source"])
def test_ed25519_rfc8032(vector: dict[str, str]) -> None:
    key = load_private_key(KeyType.ED25519, bytes.fromhex(vector["secret_key"]))
    message = bytes.fromhex(vector["message"])
    assert key.public_key.data.hex() == vector["public_key"]
    assert key.sign(message).hex() == vector["signature"]
    verify_signature(key.public_key, bytes.fromhex(vector["signature"]), message)


@pytest.mark.parametrize("vector", VECTORS["x25519"], ids=lambda v: v["source"])
def test_x25519_rfc7748(vector: dict[str, str]) -> None:
    alice = load_private_key(KeyType.X25519, bytes.fromhex(vector["alice_private"]))
    bob = load_private_key(KeyType.X25519, bytes.fromhex(vector["bob_private"]))
    assert alice.public_key.data.hex() == vector["alice_public"]
    assert bob.public_key.data.hex() == vector["bob_public"]
    assert alice.dh(bob.public_key).hex() == vector["shared"]
    assert bob.dh(alice.public_key).hex() == vector["shared"]


def test_x25519_refuses_low_order_point() -> None:
    key = generate_private_key(KeyType.X25519)
    with pytest.raises(CryptoError, match="X25519 exchange refused"):
        key.dh(PublicKey(KeyType.X25519, bytes(32)))


@pytest.mark.parametrize("vector", VECTORS["hkdf_sha256"], ids=lambda v: v["source"])
def test_hkdf_rfc5869(vector: dict[str, Any]) -> None:
    okm = hkdf_sha256(
        bytes.fromhex(vector["ikm"]),
        salt=bytes.fromhex(vector["salt"]),
        info=bytes.fromhex(vector["info"]),
        length=vector["length"],
    )
    assert okm.hex() == vector["okm"]


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_sign_verify_and_tamper(key_type: KeyType) -> None:
    key = generate_private_key(key_type)
    signature = key.sign(b"message")
    verify_signature(key.public_key, signature, b"message")
    with pytest.raises(InvalidSignature, match=r"signature does not verify"):
        verify_signature(key.public_key, signature, b"messagf")
    bad = bytearray(signature)
    bad[5] ^= 1
    with pytest.raises(InvalidSignature, match=r"signature does not verify"):
        verify_signature(key.public_key, bytes(bad), b"message")
    other = generate_private_key(key_type)
    with pytest.raises(InvalidSignature, match=r"signature does not verify"):
        verify_signature(other.public_key, signature, b"message")


def test_p256_signatures_are_low_s_and_high_s_is_rejected() -> None:
    key = generate_private_key(KeyType.P256)
    for message in (b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"):
        signature = key.sign(message)
        r, s = signature[:32], int.from_bytes(signature[32:], "big")
        assert s <= P256_ORDER // 2
        verify_signature(key.public_key, signature, message)
        malleated = r + (P256_ORDER - s).to_bytes(32, "big")
        with pytest.raises(InvalidSignature, match=r"signature does not verify"):
            verify_signature(key.public_key, malleated, message)


def test_p256_deterministic_rfc6979() -> None:
    key = load_private_key(KeyType.P256, bytes.fromhex("11" * 32))
    assert key.sign(b"same") == key.sign(b"same")


def test_p256_rejects_zero_and_out_of_range() -> None:
    key = generate_private_key(KeyType.P256)
    signature = key.sign(b"m")
    for bad in (bytes(32) + signature[32:], signature[:32] + bytes(32), signature[:63]):
        with pytest.raises(InvalidSignature, match=r"signature does not verify"):
            verify_signature(key.public_key, bad, b"m")
    too_big = P256_ORDER.to_bytes(32, "big")
    with pytest.raises(InvalidSignature, match=r"signature does not verify"):
        verify_signature(key.public_key, too_big + signature[32:], b"m")


def test_public_key_shapes() -> None:
    with pytest.raises(InvalidKey, match=r"not a ed25519 public key"):
        PublicKey(KeyType.ED25519, b"\x01" * 31)
    with pytest.raises(InvalidKey, match=r"not a p256 public key"):
        PublicKey(KeyType.P256, b"\x03" + b"\x01" * 64)  # not the uncompressed form
    off_curve = PublicKey(KeyType.P256, b"\x04" + b"\x01" * 64)
    with pytest.raises(InvalidKey, match="invalid p256 public key"):
        verify_signature(off_curve, b"\x01" * 64, b"m")
    with pytest.raises(InvalidKey, match=r"x25519 keys cannot verify signatures"):
        verify_signature(PublicKey(KeyType.X25519, b"\x09" * 32), b"\x01" * 64, b"m")


def test_p256_compressed_form() -> None:
    key = load_private_key(KeyType.P256, bytes.fromhex("22" * 32))
    compressed = key.public_key.p256_compressed()
    assert len(compressed) == 33
    assert compressed[0] in (2, 3)
    assert compressed[1:] == key.public_key.data[1:33]


def test_private_key_lengths() -> None:
    with pytest.raises(InvalidKey, match=r"a ed25519 private key is"):
        load_private_key(KeyType.ED25519, b"\x01" * 31)
    with pytest.raises(InvalidKey, match="invalid p256 private key"):
        load_private_key(KeyType.P256, bytes(32))  # zero is not a scalar


@pytest.mark.parametrize("algorithm", list(AeadAlgorithm))
def test_aead_round_trip_and_opaque_failure(algorithm: AeadAlgorithm) -> None:
    aead = Aead(algorithm, b"k" * 32)
    nonce = b"n" * 12
    sealed = aead.encrypt(nonce, b"plaintext", b"ad")
    assert aead.decrypt(nonce, sealed, b"ad") == b"plaintext"
    for bad_ad, bad_ct in ((b"ae", sealed), (b"ad", sealed[:-1] + bytes([sealed[-1] ^ 1]))):
        with pytest.raises(CryptoError, match="decryption failed"):
            aead.decrypt(nonce, bad_ct, bad_ad)
    with pytest.raises(CryptoError, match=r"AEAD keys are"):
        Aead(algorithm, b"short")


# -- Ed25519 keys of small order (issue 7: R = identity, S = 0 "verifies" every message) --------

_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P  # RFC 8032 §5.1


def _sqrt(a: int) -> int | None:
    """A square root mod p (RFC 8032 §5.1.3's recipe, p = 5 mod 8), or None."""
    root = pow(a, (_P + 3) // 8, _P)
    if root * root % _P != a % _P:
        root = root * pow(2, (_P - 1) // 4, _P) % _P
    return root if root * root % _P == a % _P else None


def _add(one: tuple[int, int], two: tuple[int, int]) -> tuple[int, int]:
    """Point addition on -x^2 + y^2 = 1 + d x^2 y^2 (RFC 8032 §5.1.4, affine)."""
    (x1, y1), (x2, y2) = one, two
    t = _D * x1 * x2 * y1 * y2 % _P
    return (
        (x1 * y2 + y1 * x2) * pow(1 + t, -1, _P) % _P,
        (y1 * y2 + x1 * x2) * pow(1 - t, -1, _P) % _P,
    )


def _small_order_points() -> list[tuple[int, int]]:
    """The 8 points of order dividing 8, derived from the curve equation alone."""
    i = _sqrt(_P - 1)
    assert i is not None
    points = [(0, 1), (0, _P - 1), (i, 0), (_P - i, 0)]  # orders 1, 2, 4, 4
    # order 8: doubling gives y = 0, i.e. x^2 = -y^2, so d y^4 + 2 y^2 - 1 = 0
    root = _sqrt(1 + _D)
    assert root is not None
    for y_squared in ((-1 + root) * pow(_D, -1, _P) % _P, (-1 - root) * pow(_D, -1, _P) % _P):
        y = _sqrt(y_squared)
        if y is None:
            continue
        for y_signed in (y, _P - y):
            x = _sqrt(-y_signed * y_signed % _P)
            assert x is not None
            points += [(x, y_signed), (_P - x, y_signed)]
    return points


def _encodings(point: tuple[int, int]) -> list[bytes]:
    """Every 32-byte string that decodes to `point`: canonical, y + p, and x = 0 with sign 1."""
    x, y = point
    ys = [y] + ([y + _P] if y + _P < 2**255 else [])
    signs = [0, 1] if x == 0 else [x & 1]
    return [(value | sign << 255).to_bytes(32, "little") for value in ys for sign in signs]


def test_small_order_points_derived_from_the_curve() -> None:
    from troth.crypto.keys import ED25519_SMALL_ORDER_Y

    points = _small_order_points()
    assert len(set(points)) == 8
    for point in points:
        x, y = point
        assert (-x * x + y * y - 1 - _D * x * x * y * y) % _P == 0  # on the curve
        multiple = point
        for _ in range(3):
            multiple = _add(multiple, multiple)
        assert multiple == (0, 1)  # [8]P is the identity
    assert {y for _, y in points} == ED25519_SMALL_ORDER_Y


def test_small_order_ed25519_keys_refused_with_every_encoding() -> None:
    from troth.crypto.keys import ED25519_SMALL_ORDER_ENCODINGS

    encodings = [e for point in _small_order_points() for e in _encodings(point)]
    assert len(encodings) == 14  # 8 canonical, y + p for y = 0 and 1, sign 1 on x = 0
    assert set(encodings) == ED25519_SMALL_ORDER_ENCODINGS
    assert bytes([1]) + bytes(31) in encodings
    for encoding in encodings:
        with pytest.raises(InvalidKey, match="small order"):
            PublicKey(KeyType.ED25519, encoding)
    for _ in range(64):  # honest keys are untouched
        key = generate_private_key(KeyType.ED25519)
        assert PublicKey(KeyType.ED25519, key.public_key.data) == key.public_key


def test_identity_key_signature_that_verifies_everything_is_refused_at_decode() -> None:
    """With A = identity, R = identity and S = 0, OpenSSL verifies any message: the key must never
    reach verification. (pyca is imported here only to show the forgery is real.)"""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from tests.support.histories import raw_body, raw_history
    from troth.errors import IdentityError, IdentityFailure
    from troth.identity import verify_history
    from troth.identity.change import CHANGE_TYPE, FORMAT_VERSION

    identity_point = bytes([1]) + bytes(31)
    forged = identity_point + bytes(32)  # R = identity, S = 0
    raw = ed25519.Ed25519PublicKey.from_public_bytes(identity_point)
    for message in (b"", b"pay mallory", bytes(range(256))):
        raw.verify(forged, message)  # the forgery works against the bare primitive
    with pytest.raises(InvalidKey, match=r"an Ed25519 public key of small order"):
        PublicKey(KeyType.ED25519, identity_point)
    body = raw_body([CHANGE_TYPE, FORMAT_VERSION, 0, None, [1, identity_point], bytes(32), 1, 1, 2])
    with pytest.raises(IdentityError) as caught:
        verify_history(raw_history([[body, forged, None]]), now=1)
    assert caught.value.reason is IdentityFailure.MALFORMED
    assert "small order" in str(caught.value)
