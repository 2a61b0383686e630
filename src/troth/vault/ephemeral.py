"""Keys for Diffie-Hellman inside a handshake: the vault's static keys by handle, and ephemeral
X25519 keys that live in memory for one handshake and are never stored or exported."""

from __future__ import annotations

from typing import Protocol

from troth.crypto import KeyType, PublicKey
from troth.crypto.private import PrivateKey, generate_private_key
from troth.vault.base import KeyHandle, Vault

__all__ = ["DhKey", "EphemeralKey", "VaultDhKey"]


class DhKey(Protocol):
    """An X25519 key that can agree with a peer but never reveals itself."""

    @property
    def public_key(self) -> PublicKey: ...

    def dh(self, peer: PublicKey) -> bytes: ...


class EphemeralKey:
    """A fresh X25519 key for one handshake (forward secrecy: dropped after it)."""

    __slots__ = ("_key",)

    def __init__(self) -> None:
        self._key: PrivateKey = generate_private_key(KeyType.X25519)

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key

    def dh(self, peer: PublicKey) -> bytes:
        return self._key.dh(peer)


class VaultDhKey:
    """A static X25519 key held in a vault, used by handle."""

    __slots__ = ("_public", "handle", "vault")

    def __init__(self, vault: Vault, handle: KeyHandle) -> None:
        self.vault = vault
        self.handle = handle
        self._public = vault.public_key(handle)

    @property
    def public_key(self) -> PublicKey:
        return self._public

    def dh(self, peer: PublicKey) -> bytes:
        return self.vault.dh(self.handle, peer)
