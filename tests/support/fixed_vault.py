"""A test-only vault whose keys are injected as raw bytes, for golden vectors.

The library never accepts raw private keys from outside the vault; this helper exists only in
tests (Noise and identity vectors need fixed keys)."""

from __future__ import annotations

from troth.crypto import KeyType, PublicKey
from troth.crypto.private import PrivateKey, load_private_key
from troth.errors import KeyNotFound
from troth.vault import KeyHandle, KeyPurpose


class FixedKeyVault:
    """Hands out pre-loaded keys in order on `generate`."""

    name = "fixed"

    def __init__(self, keys: list[tuple[KeyType, bytes]]) -> None:
        self._pending = [load_private_key(t, raw) for t, raw in keys]
        self._keys: dict[str, PrivateKey] = {}

    def generate(self, key_type: KeyType, purpose: KeyPurpose) -> KeyHandle:
        key = self._pending.pop(0)
        if key.key_type is not key_type:
            raise ValueError(f"next fixed key is {key.key_type.label}, asked for {key_type.label}")
        key_id = str(len(self._keys))
        self._keys[key_id] = key
        return KeyHandle(self.name, key_type, key_id)

    def _key(self, handle: KeyHandle) -> PrivateKey:
        try:
            return self._keys[handle.key_id]
        except KeyError:
            raise KeyNotFound(str(handle)) from None

    def public_key(self, handle: KeyHandle) -> PublicKey:
        return self._key(handle).public_key

    def sign(self, handle: KeyHandle, data: bytes) -> bytes:
        return self._key(handle).sign(data)

    def dh(self, handle: KeyHandle, peer: PublicKey) -> bytes:
        return self._key(handle).dh(peer)

    def delete(self, handle: KeyHandle) -> None:
        self._keys.pop(handle.key_id, None)
