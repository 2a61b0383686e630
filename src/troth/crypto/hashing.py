"""SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104) and HKDF-SHA256 (RFC 5869)."""

from __future__ import annotations

import hashlib
import hmac as _hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["constant_time_equal", "hkdf_sha256", "hmac_sha256", "noise_hkdf", "sha256"]


_sha256 = hashlib.sha256  # bound once: every signed document is hashed (hot path)


def sha256(data: bytes) -> bytes:
    """SHA-256 of `data` (32 bytes)."""
    return _sha256(data).digest()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of `data` under `key` (32 bytes)."""
    # the one-shot form (OpenSSL's HMAC in one C call): `hmac.new(...).digest()` makes an HMAC
    # object in Python, ~2.5x slower, for the same bytes (a Noise handshake makes 12 a side)
    return _hmac.digest(key, data, "sha256")


def hkdf_sha256(key_material: bytes, *, salt: bytes | None, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA256: `length` bytes from `key_material`, `salt` and `info`."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key_material)


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Whether `a` equals `b`, in time independent of where they differ."""
    return _hmac.compare_digest(a, b)


def noise_hkdf(chaining_key: bytes, input_key_material: bytes, outputs: int) -> tuple[bytes, ...]:
    """HKDF as the Noise spec defines it (rev 34, §4.3) over HMAC-SHA256: 2 or 3 outputs of
    32 bytes. (It is RFC 5869 HKDF with salt = chaining_key and empty info; written out here
    because Noise calls it per message and building a pyca HKDF object each time costs more.)"""
    temp_key = hmac_sha256(chaining_key, input_key_material)
    output1 = hmac_sha256(temp_key, b"\x01")
    output2 = hmac_sha256(temp_key, output1 + b"\x02")
    if outputs == 2:
        return output1, output2
    return output1, output2, hmac_sha256(temp_key, output2 + b"\x03")
