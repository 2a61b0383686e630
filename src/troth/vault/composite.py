"""A node vault built from two: a primary vault for signing keys (e.g. an HSM) and a software
vault for the key types the primary cannot hold (X25519 secure-channel keys on PKCS#11)."""

from __future__ import annotations

from troth.crypto import KeyType, PublicKey
from troth.errors import KeyNotFound
from troth.vault.base import KeyHandle, KeyPurpose, Vault

__all__ = ["CompositeVault"]


class CompositeVault:
    def __init__(self, primary: Vault, fallback: Vault, fallback_types: frozenset[KeyType]) -> None:
        self.name = primary.name
        self._vaults = {primary.name: primary, fallback.name: fallback}
        self._primary = primary
        self._fallback = fallback
        self._fallback_types = fallback_types

    def close(self) -> None:
        for vault in (self._primary, self._fallback):
            close = getattr(vault, "close", None)
            if close is not None:
                close()

    def _route(self, handle: KeyHandle) -> Vault:
        vault = self._vaults.get(handle.vault)
        if vault is None:
            raise KeyNotFound(f"no vault named {handle.vault!r} on this node")
        return vault

    def generate(self, key_type: KeyType, purpose: KeyPurpose) -> KeyHandle:
        vault = self._fallback if key_type in self._fallback_types else self._primary
        return vault.generate(key_type, purpose)

    def public_key(self, handle: KeyHandle) -> PublicKey:
        return self._route(handle).public_key(handle)

    def sign(self, handle: KeyHandle, data: bytes) -> bytes:
        return self._route(handle).sign(handle, data)

    def dh(self, handle: KeyHandle, peer: PublicKey) -> bytes:
        return self._route(handle).dh(handle, peer)

    def delete(self, handle: KeyHandle) -> None:
        self._route(handle).delete(handle)
