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
    "ed25519_verify_loop",
    "identity_floor",
    "x25519_xx_floor",
]


def identity_floor(*, sealed: bool) -> Callable[[int], None]:
    """The raw operations of one new identity: an Ed25519 key generation, its public key (it
    goes into the first change), one signature and one SHA-256 over a change-sized body.
    `sealed` adds what keeping the private key at rest needs: its raw bytes, a fresh 12-byte
    nonce and one AES-256-GCM encryption (the software vault's seal)."""
    body = bytes(120)
    seal = AESGCM(os.urandom(32)).encrypt
    aad = bytes(28)
    generate = ed25519.Ed25519PrivateKey.generate

    def batch(n: int) -> None:
        for _ in range(n):
            key = generate()
            key.public_key().public_bytes_raw()
            key.sign(body)
            hashlib.sha256(body).digest()
            if sealed:
                seal(os.urandom(12), key.private_bytes_raw(), aad)

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
