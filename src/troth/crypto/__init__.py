"""The crypto boundary: the only package that imports `cryptography.hazmat`.

Thin typed wrappers over pyca/cryptography; troth never implements a primitive itself.
"""

from troth.crypto.aead import Aead, AeadAlgorithm
from troth.crypto.hashing import (
    constant_time_equal,
    hkdf_sha256,
    hmac_sha256,
    noise_hkdf,
    sha256,
)
from troth.crypto.keys import KeyType, PublicKey, verify_signature

__all__ = [
    "Aead",
    "AeadAlgorithm",
    "KeyType",
    "PublicKey",
    "constant_time_equal",
    "hkdf_sha256",
    "hmac_sha256",
    "noise_hkdf",
    "sha256",
    "verify_signature",
]
