"""AEADs: AES-256-GCM (NIST SP 800-38D) and ChaCha20-Poly1305 (RFC 8439).

Build one `Aead` per key and reuse it (constructing the pyca object costs ~1 us). Every
decryption failure is the same opaque `CryptoError`: no oracle.
"""

from __future__ import annotations

import enum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from troth.errors import CryptoError

__all__ = ["Aead", "AeadAlgorithm"]


class AeadAlgorithm(enum.Enum):
    """The AEAD ciphers troth uses, named as Noise names them."""

    AES_256_GCM = "AESGCM"
    CHACHA20_POLY1305 = "ChaChaPoly"


class Aead:
    """An AEAD cipher under one 32-byte key: 12-byte nonces, 16-byte tags."""

    __slots__ = ("_cipher", "algorithm")

    KEY_SIZE = 32
    NONCE_SIZE = 12
    TAG_SIZE = 16

    def __init__(self, algorithm: AeadAlgorithm, key: bytes) -> None:
        if len(key) != self.KEY_SIZE:
            raise CryptoError(f"AEAD keys are {self.KEY_SIZE} bytes")
        self.algorithm = algorithm
        self._cipher = (
            AESGCM(key) if algorithm is AeadAlgorithm.AES_256_GCM else ChaCha20Poly1305(key)
        )

    def encrypt(self, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        return self._cipher.encrypt(nonce, plaintext, associated_data)

    def encrypt_into(
        self,
        nonce: bytes,
        plaintext: bytes | memoryview,
        associated_data: bytes,
        out: bytearray | memoryview,
    ) -> int:
        """Encrypt into a preallocated buffer (len(plaintext) + 16 bytes); returns the length."""
        return self._cipher.encrypt_into(nonce, plaintext, associated_data, out)

    def decrypt(
        self, nonce: bytes, ciphertext: bytes | memoryview, associated_data: bytes
    ) -> bytes:
        try:
            return self._cipher.decrypt(nonce, ciphertext, associated_data)
        except InvalidTag:
            raise CryptoError("decryption failed") from None

    def decrypt_into(
        self,
        nonce: bytes,
        ciphertext: bytes | memoryview,
        associated_data: bytes,
        out: bytearray | memoryview,
    ) -> int:
        """Decrypt into a preallocated buffer (len(ciphertext) - 16 bytes); returns the
        length. On failure (`CryptoError`) `out` holds no authenticated bytes: drop it."""
        try:
            return self._cipher.decrypt_into(nonce, ciphertext, associated_data, out)
        except InvalidTag:
            raise CryptoError("decryption failed") from None
