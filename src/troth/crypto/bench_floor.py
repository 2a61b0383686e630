"""The raw cryptographic operations benchmarks compare troth against (pyca, no troth code)."""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ed25519

__all__ = [
    "ed25519_keygen_sign",
    "ed25519_sign_loop",
    "ed25519_sign_verify_loop",
    "ed25519_verify_loop",
]


def ed25519_keygen_sign(data: bytes) -> bytes:
    """One Ed25519 key generation and one signature."""
    return ed25519.Ed25519PrivateKey.generate().sign(data)


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
