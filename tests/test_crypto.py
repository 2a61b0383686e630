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
    with pytest.raises(CryptoError):
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
    with pytest.raises(InvalidSignature):
        verify_signature(key.public_key, signature, b"messagf")
    bad = bytearray(signature)
    bad[5] ^= 1
    with pytest.raises(InvalidSignature):
        verify_signature(key.public_key, bytes(bad), b"message")
    other = generate_private_key(key_type)
    with pytest.raises(InvalidSignature):
        verify_signature(other.public_key, signature, b"message")


def test_p256_signatures_are_low_s_and_high_s_is_rejected() -> None:
    key = generate_private_key(KeyType.P256)
    for message in (b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"):
        signature = key.sign(message)
        r, s = signature[:32], int.from_bytes(signature[32:], "big")
        assert s <= P256_ORDER // 2
        verify_signature(key.public_key, signature, message)
        malleated = r + (P256_ORDER - s).to_bytes(32, "big")
        with pytest.raises(InvalidSignature):
            verify_signature(key.public_key, malleated, message)


def test_p256_deterministic_rfc6979() -> None:
    key = load_private_key(KeyType.P256, bytes.fromhex("11" * 32))
    assert key.sign(b"same") == key.sign(b"same")


def test_p256_rejects_zero_and_out_of_range() -> None:
    key = generate_private_key(KeyType.P256)
    signature = key.sign(b"m")
    for bad in (bytes(32) + signature[32:], signature[:32] + bytes(32), signature[:63]):
        with pytest.raises(InvalidSignature):
            verify_signature(key.public_key, bad, b"m")
    too_big = P256_ORDER.to_bytes(32, "big")
    with pytest.raises(InvalidSignature):
        verify_signature(key.public_key, too_big + signature[32:], b"m")


def test_public_key_shapes() -> None:
    with pytest.raises(InvalidKey):
        PublicKey(KeyType.ED25519, b"\x01" * 31)
    with pytest.raises(InvalidKey):
        PublicKey(KeyType.P256, b"\x03" + b"\x01" * 64)  # not the uncompressed form
    off_curve = PublicKey(KeyType.P256, b"\x04" + b"\x01" * 64)
    with pytest.raises(InvalidKey):
        verify_signature(off_curve, b"\x01" * 64, b"m")
    with pytest.raises(InvalidKey):
        verify_signature(PublicKey(KeyType.X25519, b"\x09" * 32), b"\x01" * 64, b"m")


def test_p256_compressed_form() -> None:
    key = load_private_key(KeyType.P256, bytes.fromhex("22" * 32))
    compressed = key.public_key.p256_compressed()
    assert len(compressed) == 33
    assert compressed[0] in (2, 3)
    assert compressed[1:] == key.public_key.data[1:33]


def test_private_key_lengths() -> None:
    with pytest.raises(InvalidKey):
        load_private_key(KeyType.ED25519, b"\x01" * 31)
    with pytest.raises(InvalidKey):
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
    with pytest.raises(CryptoError):
        Aead(algorithm, b"short")
