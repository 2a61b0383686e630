"""The vault interface: key handles in, public keys / signatures / shared secrets out.

No method returns private key bytes. A `KeyHandle` names a key inside one vault; every other
layer holds handles only. A `SealingVault` also holds symmetric seal keys (AES-256-GCM) that
seal and unseal data for a caller without ever leaving the vault (docs/vault.md, "Sealing").
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from troth.crypto import Aead, KeyType, PublicKey
from troth.errors import CryptoError, KeyNotFound, MalformedText, TrothError

__all__ = [
    "RETIRE_PROOF_SIZE",
    "SEAL_OVERHEAD",
    "SEAL_VERSION",
    "BatchingVault",
    "KeyBatch",
    "KeyHandle",
    "KeyPurpose",
    "RetiringVault",
    "SealKey",
    "SealingVault",
    "Vault",
    "check_seal_key",
    "key_batch",
    "seal_aad",
    "split_sealed",
]

SEAL_VERSION: Final = 1
SEAL_OVERHEAD: Final = 1 + Aead.NONCE_SIZE + Aead.TAG_SIZE
"""Bytes a sealed blob adds to its plaintext: version, nonce, tag (docs/formats.md)."""
RETIRE_PROOF_SIZE: Final = 16
"""Random bytes of a `RetiringVault.retire` proof (recorded as hex)."""
_SEAL_AAD: Final = b"troth.vault.sealed/1\x00"
_SEAL_KEY_LABEL: Final = "aes256gcm"
_KEY_LABELS: Final = {key_type: key_type.label for key_type in KeyType}  # no property call


class KeyPurpose(enum.IntEnum):
    """What a key is for (stored with it; the wire numbers of purpose-key attestations)."""

    PRIMARY = 0
    SECURE_CHANNEL = 1
    SIGNING = 2


@dataclass(frozen=True, slots=True, init=False)
class KeyHandle:
    """A reference to a private key inside a vault: `<vault>:<key type>:<key id>` as text."""

    vault: str
    key_type: KeyType
    key_id: str

    def __init__(self, vault: str, key_type: KeyType, key_id: str) -> None:
        # frozen: the fields are set through their slots (the generated __init__ goes through
        # object.__setattr__, twice as slow; a batch of identities makes two handles each)
        _set_handle_vault(self, vault)
        _set_handle_key_type(self, key_type)
        _set_handle_key_id(self, key_id)

    def __str__(self) -> str:
        return f"{self.vault}:{_KEY_LABELS[self.key_type]}:{self.key_id}"

    @classmethod
    def parse(cls, text: str) -> KeyHandle:
        try:
            vault, label, key_id = text.split(":", 2)
            return cls(vault, KeyType.from_label(label), key_id)
        except ValueError as exc:
            raise MalformedText(f"not a key handle: {text!r}") from exc


_set_handle_vault = vars(KeyHandle)["vault"].__set__  # the slot descriptors
_set_handle_key_type = vars(KeyHandle)["key_type"].__set__
_set_handle_key_id = vars(KeyHandle)["key_id"].__set__


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


@runtime_checkable
class RetiringVault(Vault, Protocol):
    """A vault whose keys are not rows of the node's database (a PKCS#11 token's): a key
    retired by a commit is destroyed after it, from a record of node.db, and a writer of
    node.db who cannot use the vault must not get a current key destroyed by planting one
    (review 48k, pkcs11 3; docs/vault.md, "PKCS#11 vault")."""

    def retire(self, handle: KeyHandle, purpose: KeyPurpose) -> str | None:
        """Before the commit that retires the key as a key of `purpose`: record that in the
        vault, where only its user can, and return the proof to record with the handle
        (None: the vault needs none). KeyNotFound when it holds no such key of `purpose`."""
        ...

    def delete_retired(self, handle: KeyHandle, proof: str | None) -> None:
        """Delete a key retired with `proof` (`retire`'s; None when none was recorded).
        KeyNotFound when the vault holds no such key or the retirement is not proven."""
        ...

    def unretire(self, handle: KeyHandle, proof: str) -> None:
        """Undo the retirement `retire` made with `proof` when the write that was to commit it
        failed (the key stays in use: docs/vault.md, "Keys of a failed write"); nothing when
        the vault holds no such retirement."""
        ...


class KeyBatch(Vault, Protocol):
    """A vault view whose `generate` may defer storing the new keys until `store()`, which
    writes them together (in the caller's transaction); `discard()` forgets the keys of a
    batch that will not be stored. Its keys are usable (public key, sign) at once."""

    def store(self) -> None:
        """Write the keys generated since the last `store()`; nothing of a batch otherwise."""
        ...

    def discard(self) -> None:
        """Forget the keys generated since the last `store()` (best effort)."""
        ...


@runtime_checkable
class BatchingVault(Vault, Protocol):
    """A vault that can defer the storage of new keys into one write (`key_batch`)."""

    def key_batch(self) -> KeyBatch:
        """A batch of this vault's keys; call it inside the write transaction that will
        `store()` them (the software vault relies on that for unique key ids)."""
        ...


def key_batch(vault: Vault, *, deferred: bool = True) -> KeyBatch:
    """`vault`'s own batch when it has one and `deferred` (worth it for more than a key or
    two: it costs a query), else one that stores each key as it is made."""
    if deferred and isinstance(vault, BatchingVault):
        return vault.key_batch()
    return _ImmediateKeys(vault)


class _ImmediateKeys:
    """A KeyBatch over any vault: each key is stored by `generate`; `discard` deletes them."""

    def __init__(self, vault: Vault) -> None:
        self.name = vault.name
        self._vault = vault
        self._made: list[KeyHandle] = []
        self.public_key = vault.public_key
        self.sign = vault.sign
        self.dh = vault.dh
        self.delete = vault.delete

    def generate(self, key_type: KeyType, purpose: KeyPurpose) -> KeyHandle:
        handle = self._vault.generate(key_type, purpose)
        self._made.append(handle)
        return handle

    def store(self) -> None:
        self._made.clear()

    def discard(self) -> None:
        for handle in self._made:
            with contextlib.suppress(TrothError):
                self._vault.delete(handle)
        self._made.clear()


@dataclass(frozen=True, slots=True)
class SealKey:
    """A symmetric seal key inside a vault: `<vault>:aes256gcm:<key id>` as text."""

    vault: str
    key_id: str

    def __str__(self) -> str:
        return f"{self.vault}:{_SEAL_KEY_LABEL}:{self.key_id}"

    @classmethod
    def parse(cls, text: str) -> SealKey:
        vault, _, rest = text.partition(":")
        label, _, key_id = rest.partition(":")
        if not vault or label != _SEAL_KEY_LABEL or not key_id:
            raise MalformedText(f"not a seal key: {text!r}")
        return cls(vault, key_id)


@runtime_checkable
class SealingVault(Vault, Protocol):
    """A vault that also seals data under symmetric keys it generates and never exports.

    Sealed blob (docs/formats.md, "Sealed secrets") = 0x01 || nonce (12 random bytes) ||
    AES-256-GCM(seal key, nonce, plaintext, AAD = "troth.vault.sealed/1" 0x00 key id 0x00 ||
    the caller's `aad`). The caller's AAD binds a blob to where it is stored.
    """

    def generate_seal_key(self) -> SealKey:
        """Create an AES-256 key inside the vault and return its handle."""
        ...

    def seal(self, key: SealKey, plaintext: bytes, aad: bytes) -> bytes: ...

    def unseal(self, key: SealKey, sealed: bytes, aad: bytes) -> bytes:
        """The plaintext, or VaultError (one opaque error for every failure: no oracle)."""
        ...

    def delete_seal_key(self, key: SealKey) -> None: ...


def seal_aad(key: SealKey, aad: bytes) -> bytes:
    """The AAD given to AES-GCM: the format, the key id, then the caller's AAD."""
    return _SEAL_AAD + key.key_id.encode() + b"\x00" + aad


def split_sealed(key: SealKey, sealed: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext) of a sealed blob; CryptoError if it is not one."""
    if len(sealed) < SEAL_OVERHEAD or sealed[0] != SEAL_VERSION:
        raise CryptoError(f"not a blob sealed under {key}")
    return sealed[1 : 1 + Aead.NONCE_SIZE], sealed[1 + Aead.NONCE_SIZE :]


def seal_under(value: Aead, key: SealKey, plaintext: bytes, aad: bytes) -> bytes:
    """A blob of `plaintext` sealed under `key`'s `value` (an AES-256-GCM key): the version, a
    fresh nonce, then the ciphertext (docs/formats.md)."""
    nonce = os.urandom(Aead.NONCE_SIZE)
    return bytes((SEAL_VERSION,)) + nonce + value.encrypt(nonce, plaintext, seal_aad(key, aad))


def unseal_under(values: Sequence[Aead], key: SealKey, sealed: bytes, aad: bytes) -> bytes | None:
    """The plaintext of a blob sealed under one of `key`'s `values` (tried in their order),
    or None: not a blob, or one no value opens."""
    try:
        nonce, ciphertext = split_sealed(key, sealed)
    except CryptoError:
        return None
    full = seal_aad(key, aad)
    for value in values:
        try:
            return value.decrypt(nonce, ciphertext, full)
        except CryptoError:
            continue
    return None


def check_seal_key(vault: str, key: SealKey) -> None:
    """KeyNotFound unless `key` names a key of `vault`."""
    if key.vault != vault:
        raise KeyNotFound(f"{key} belongs to the {key.vault} vault")
