"""The vault interface: key handles in, public keys / signatures / shared secrets out.

No method returns private key bytes. A `KeyHandle` names a key inside one vault; every other
layer holds handles only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from troth.crypto import KeyType, PublicKey

__all__ = ["KeyHandle", "KeyPurpose", "Vault"]


class KeyPurpose(enum.IntEnum):
    """What a key is for (stored with it; the wire numbers of purpose-key attestations)."""

    PRIMARY = 0
    SECURE_CHANNEL = 1
    SIGNING = 2


@dataclass(frozen=True, slots=True)
class KeyHandle:
    """A reference to a private key inside a vault: `<vault>:<key type>:<key id>` as text."""

    vault: str
    key_type: KeyType
    key_id: str

    def __str__(self) -> str:
        return f"{self.vault}:{self.key_type.label}:{self.key_id}"

    @classmethod
    def parse(cls, text: str) -> KeyHandle:
        try:
            vault, label, key_id = text.split(":", 2)
            return cls(vault, KeyType.from_label(label), key_id)
        except ValueError as exc:
            raise ValueError(f"not a key handle: {text!r}") from exc


class Vault(Protocol):
    """A key store that uses keys but never reveals them."""

    name: str

    def generate(self, key_type: KeyType, purpose: KeyPurpose) -> KeyHandle:
        """Create a key inside the vault and return its handle."""
        ...

    def public_key(self, handle: KeyHandle) -> PublicKey: ...

    def sign(self, handle: KeyHandle, data: bytes) -> bytes:
        """Ed25519 over `data`; ECDSA P-256 over SHA-256(`data`), raw r||s, low-s."""
        ...

    def dh(self, handle: KeyHandle, peer: PublicKey) -> bytes:
        """X25519 with the peer's public key (RFC 7748)."""
        ...

    def delete(self, handle: KeyHandle) -> None: ...
