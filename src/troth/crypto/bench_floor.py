"""The raw cryptographic operations benchmarks compare troth against (pyca, no troth code)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ed25519_sign_loop",
    "ed25519_sign_verify_loop",
    "ed25519_signer",
    "ed25519_verify_loop",
    "identity_floor",
    "rotation_floor",
    "x25519_xx_floor",
]


def identity_floor(*, sealed: bool) -> Callable[[int], None]:
    """The raw operations of one new identity: two Ed25519 key generations (the primary key and
    the next key it commits to) and their public keys, one signature, and two SHA-256s over
    change-sized inputs (the change hash, the next-key digest). `sealed` adds what keeping both
    private keys at rest needs: their raw bytes, a fresh 12-byte nonce and one AES-256-GCM
    encryption each (the software vault's seal)."""
    body = bytes(160)
    seal = AESGCM(os.urandom(32)).encrypt
    aad = bytes(28)
    generate = ed25519.Ed25519PrivateKey.generate

    def batch(n: int) -> None:
        for _ in range(n):
            key, following = generate(), generate()
            key.public_key().public_bytes_raw()
            hashlib.sha256(following.public_key().public_bytes_raw()).digest()
            key.sign(body)
            hashlib.sha256(body).digest()
            if sealed:
                seal(os.urandom(12), key.private_bytes_raw(), aad)
                seal(os.urandom(12), following.private_bytes_raw(), aad)

    return batch


def rotation_floor() -> Callable[[int], None]:
    """The raw operations of one rotation: one Ed25519 key generation (the new next key), the
    public keys of the revealed key and of the new next key, two signatures (by the revealed
    key and by the previous key), two SHA-256s (change hash, next-key digest) and the seal of
    the new next key."""
    body = bytes(160)
    seal = AESGCM(os.urandom(32)).encrypt
    aad = bytes(28)
    generate = ed25519.Ed25519PrivateKey.generate
    revealed, previous = generate(), generate()

    def batch(n: int) -> None:
        for _ in range(n):
            following = generate()
            revealed.public_key().public_bytes_raw()
            hashlib.sha256(following.public_key().public_bytes_raw()).digest()
            revealed.sign(body)
            previous.sign(body)
            hashlib.sha256(body).digest()
            seal(os.urandom(12), following.private_bytes_raw(), aad)

    return batch


def ed25519_verify_loop(count: int) -> Callable[[int], None]:
    """A batch that performs `count` (public-key load + signature verification) per iteration."""
    key = ed25519.Ed25519PrivateKey.generate()
    data = os.urandom(150)
    signature = key.sign(data)
    public = key.public_key().public_bytes_raw()
    load = ed25519.Ed25519PublicKey.from_public_bytes

    def batch(n: int) -> None:
        for _ in range(n):
            for _ in range(count):
                load(public).verify(signature, data)

    return batch


def ed25519_sign_loop(count: int) -> Callable[[int], None]:
    """A batch that performs `count` Ed25519 signatures (key already loaded) per iteration."""
    key = ed25519.Ed25519PrivateKey.generate()
    data = os.urandom(200)

    def batch(n: int) -> None:
        for _ in range(n):
            for _ in range(count):
                key.sign(data)

    return batch


def ed25519_signer() -> Callable[[bytes], bytes]:
    """The raw signature of a fresh Ed25519 key (a benchmark ceiling signs with it)."""
    return ed25519.Ed25519PrivateKey.generate().sign


def ed25519_sign_verify_loop(signs: int, verifies: int) -> Callable[[int], None]:
    """`signs` signatures and `verifies` key loads + verifications per iteration."""
    sign = ed25519_sign_loop(signs)
    verify = ed25519_verify_loop(verifies)

    def batch(n: int) -> None:
        sign(n)
        verify(n)

    return batch


def x25519_xx_floor() -> Callable[[int], None]:
    """The X25519 work of one Noise XX handshake, both sides: 2 ephemeral key generations and
    6 key agreements (ee, es, se on each side), each with the peer's public key loaded."""
    statics = [x25519.X25519PrivateKey.generate() for _ in range(2)]
    static_publics = [k.public_key().public_bytes_raw() for k in statics]
    load = x25519.X25519PublicKey.from_public_bytes

    def batch(n: int) -> None:
        for _ in range(n):
            e_i, e_r = x25519.X25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()
            ei_pub, er_pub = (
                e_i.public_key().public_bytes_raw(),
                e_r.public_key().public_bytes_raw(),
            )
            e_i.exchange(load(er_pub))  # ee (initiator)
            e_r.exchange(load(ei_pub))  # ee (responder)
            statics[1].exchange(load(ei_pub))  # es (responder)
            e_i.exchange(load(static_publics[1]))  # es (initiator)
            statics[0].exchange(load(er_pub))  # se (initiator)
            e_r.exchange(load(static_publics[0]))  # se (responder)

    return batch
