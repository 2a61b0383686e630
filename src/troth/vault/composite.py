"""A node vault built from two: a primary vault for signing keys (e.g. an HSM) and a software
vault for the key types the primary cannot hold (X25519 secure-channel keys on PKCS#11).
Seal keys are made by the primary when it can seal (an HSM's AES keys), else by the fallback."""

from __future__ import annotations

from troth.crypto import KeyType, PublicKey
from troth.errors import KeyNotFound, UnsupportedKeyType
from troth.vault.base import (
    KeyHandle,
    KeyPurpose,
    RetiringVault,
    SealingVault,
    SealKey,
    Vault,
)

__all__ = ["CompositeVault"]


class CompositeVault:
    """One vault over two: keys are routed by the vault name in their handle."""

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

    # -- retirement: the routed vault's when it records them (review 48k, pkcs11 3) -----------

    def retire(self, handle: KeyHandle, purpose: KeyPurpose) -> str | None:
        vault = self._route(handle)
        return vault.retire(handle, purpose) if isinstance(vault, RetiringVault) else None

    def delete_retired(self, handle: KeyHandle, proof: str | None) -> None:
        vault = self._route(handle)
        if isinstance(vault, RetiringVault):
            vault.delete_retired(handle, proof)
        else:
            vault.delete(handle)

    def unretire(self, handle: KeyHandle, proof: str) -> None:
        vault = self._route(handle)
        if isinstance(vault, RetiringVault):
            vault.unretire(handle, proof)

    # -- sealing: the primary's seal keys when it can seal, else the fallback's ----------------

    def generate_seal_key(self) -> SealKey:
        for vault in (self._primary, self._fallback):
            if isinstance(vault, SealingVault):
                return vault.generate_seal_key()
        raise UnsupportedKeyType("neither vault of this node can hold seal keys")

    def seal(self, key: SealKey, plaintext: bytes, aad: bytes) -> bytes:
        return self._sealer(key).seal(key, plaintext, aad)

    def unseal(self, key: SealKey, sealed: bytes, aad: bytes) -> bytes:
        return self._sealer(key).unseal(key, sealed, aad)

    def delete_seal_key(self, key: SealKey) -> None:
        self._sealer(key).delete_seal_key(key)

    def _sealer(self, key: SealKey) -> SealingVault:
        vault = self._vaults.get(key.vault)
        if not isinstance(vault, SealingVault):
            raise KeyNotFound(f"no vault that seals named {key.vault!r} on this node")
        return vault
