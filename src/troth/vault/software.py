"""The software vault: keys in the node's database, sealed with AES-256-GCM under a
key-encryption key (KEK). Threat model: docs/vault.md.

A key id is 16 hex digits naming a time-ordered 63-bit key number. Sealed key (version 1) =
0x01 || nonce (12 random bytes) || AES-256-GCM(KEK, nonce, raw private key,
AAD = "troth.vault.key/1" 0x00 key-id 0x00 key-type purpose). The AAD binds a ciphertext to its
row, so rows cannot be swapped. A KEK check value in `vault_meta` makes a wrong KEK fail at open.

Seal keys (AES-256, `SealingVault`) are kept the same way in `vault_keys`, with key type 16
(not a signing or DH key type) and AAD = "troth.vault.seal-key/1" 0x00 key-id: a seal key's
row can never unseal as a private key, nor a private key's as a seal key. A seal key's row
holds its value, 32 bytes (a row a rekey before review 62i wrote holds more: the one that
seals, then those the rekey replaced, all of which unseal until the next rekey: `rekey`).
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from troth.crypto import Aead, AeadAlgorithm, KeyType, PublicKey
from troth.crypto.private import PrivateKey, generate_private_key, load_private_key
from troth.errors import ConfigError, ConflictError, CryptoError, KeyNotFound, VaultError
from troth.vault.base import (
    KeyBatch,
    KeyHandle,
    KeyPurpose,
    SealKey,
    check_seal_key,
    seal_under,
    unseal_under,
)
from troth.vault.reseal import Resealer, ResealHook

__all__ = [
    "KEK_SIZE",
    "SEAL_KEY_TYPE",
    "SealedKeyRow",
    "SealedKeyStore",
    "SoftwareVault",
    "kek_opens_check",
]

KEK_SIZE: Final = 32
_KEY_ID: Final = re.compile(r"[0-9a-f]{16}")  # a software key id's one spelling
_SEAL_VERSION: Final = b"\x01"
_KEY_AAD: Final = b"troth.vault.key/1\x00"
_SEAL_KEY_AAD: Final = b"troth.vault.seal-key/1\x00"
SEAL_KEY_TYPE: Final = 16
"""The `vault_keys.key_type` of a seal key (outside KeyType's numbers)."""
_CHECK_AAD: Final = b"troth.vault.kek-check/1"
_CHECK_PLAINTEXT: Final = b"troth vault key check"
_CACHE_SIZE: Final = 4096
_EPOCH_MS: Final = 1_735_689_600_000  # 2025-01-01T00:00:00Z
_MAX_KEY_NUMBER: Final = (1 << 63) - 1  # a SQLite INTEGER
_NONCES_PER_READ: Final = 64  # a key batch's random nonces, read from the OS together
_RESEAL_CHUNK: Final = 1000  # rows a rekey reads and rewrites at a time
_RECHECK_KEYS: Final = 256
"""Keys a thread saw stored that are looked up again in one read after another connection's
commit (SoftwareVault._live); past it each is looked up at its next use. Under
SealedKeyStore.stored_key_nonces' 500 and SQLite's oldest limit on parameters (999)."""

SealedKeyRow = tuple[int, int, int, bytes, int]
"""A `vault_keys` row: key number, key type, purpose, sealed key, created_at."""


class SealedKeyStore(Protocol):
    """Where the software vault keeps sealed keys (troth.storage implements it)."""

    def put_sealed_key(
        self, key_number: int, key_type: int, purpose: int, sealed: bytes, created_at: int
    ) -> None: ...

    def put_sealed_keys(self, rows: Sequence[SealedKeyRow]) -> None:
        """Insert every row (ConflictError if a key number is taken: none is written then
        when the caller's transaction rolls back)."""
        ...

    def max_key_number(self) -> int:
        """The largest stored key number (0 when there is none)."""
        ...

    def get_sealed_key(self, key_number: int) -> tuple[int, int, bytes] | None: ...

    def data_version(self) -> int:
        """A number that changes when, and only when, another connection (process, thread)
        committed to the store since the calling thread last asked (SQLite's `PRAGMA
        data_version`)."""
        ...

    def stored_key_nonces(self, key_numbers: Sequence[int]) -> dict[int, bytes]:
        """The sealed key's nonce (bytes 1-12 of its sealed value) of each of `key_numbers`
        (at most 500) that has a row, read in one statement, writing nothing."""
        ...

    def delete_sealed_key(self, key_number: int, key_type: int | None = None) -> bool:
        """Delete the row `key_number` (of `key_type` only, when given); whether it was
        there."""
        ...

    def get_vault_meta(self, name: str) -> bytes | None: ...

    def put_vault_meta(self, name: str, value: bytes) -> None: ...

    def sealed_keys_after(self, key_number: int, limit: int) -> list[tuple[int, int, int, bytes]]:
        """Up to `limit` rows (key number, key type, purpose, sealed) numbered above
        `key_number`, in key number order."""
        ...

    def replace_sealed_keys(self, rows: Sequence[tuple[int, bytes]]) -> None:
        """Set the sealed value of each (key number, sealed) row."""
        ...


class _Seen(threading.local):
    """What one thread knows of the store (SoftwareVault._live): its connection's data version
    when last asked, and the cached keys whose rows (SoftwareVault._rows) it saw since."""

    def __init__(self) -> None:
        self.version = -1
        self.live: set[str] = set()


class SoftwareVault:
    """Keys in process memory (a bounded cache) and, when `store` is given, sealed at rest.

    With `store=None` the vault is ephemeral: keys live only as long as this object.

    A cached key is used only while its row is in the store: another process (the CLI beside
    a running node, or the node beside a command) that deleted it (a rotation, a renewed
    purpose key) deleted it here too. Before each use of a cached key the vault asks the
    store's data version (one `PRAGMA data_version`, a few microseconds): when another
    connection committed since, the keys the thread had seen stored are looked up again,
    together in one read, before the key is used (review 48l, vault 1: the cache signed on with
    keys a compromised rotation elsewhere had deleted). A deletion writes only the key's row
    (review 50a: no count of deletions beside it). Each look-up compares the row's nonce with
    the cached key's: a number deleted and given to another key is not the cached key's row
    (review 50h, vault 1).
    """

    name = "software"

    def __init__(self, store: SealedKeyStore | None = None, kek: bytes | None = None) -> None:
        self._store = store
        self._cache: dict[str, PrivateKey] = {}
        self._seal_keys: dict[str, tuple[Aead, ...]] = {}
        """Each seal key's values, the one that seals first (`_seal_values`)."""
        self._rows: dict[str, bytes] = {}
        """The row each cached key (private or seal key) was stored as or unsealed from: its
        sealed value's random nonce (a key number can be deleted and given to another key)."""
        self._aead: Aead | None = None
        self._last_number = 0
        self._seen = _Seen()
        self._unstored: set[str] = set()  # a key batch's keys until its store() (no row yet)
        if store is not None:
            if kek is None or len(kek) != KEK_SIZE:
                raise ConfigError(f"a persistent software vault needs a {KEK_SIZE}-byte KEK")
            self._aead = Aead(AeadAlgorithm.AES_256_GCM, kek)
            self._check_kek(store, self._aead)

    @staticmethod
    def _check_kek(store: SealedKeyStore, aead: Aead) -> None:
        check = store.get_vault_meta("kek_check")
        if check is None:
            # no check, yet keys sealed under some KEK (a restore without `vault_meta`, a row
            # deleted): a check written now under a wrong KEK would refuse the right one for
            # good (review 45d, vault 1), so the newest key must open first
            if not _opens_newest_key(store, aead):
                raise ConfigError(
                    "the vault key (TROTH_VAULT_KEY or vault.key) does not open this vault "
                    "(its key check value is missing and its newest sealed key does not unseal)"
                )
            nonce = os.urandom(Aead.NONCE_SIZE)
            store.put_vault_meta(
                "kek_check", nonce + aead.encrypt(nonce, _CHECK_PLAINTEXT, _CHECK_AAD)
            )
            return
        try:
            if len(check) < Aead.NONCE_SIZE + Aead.TAG_SIZE:  # else the library's ValueError
                raise CryptoError("a key check value cut short")  # (review 34a, vault 1)
            aead.decrypt(check[: Aead.NONCE_SIZE], check[Aead.NONCE_SIZE :], _CHECK_AAD)
        except CryptoError:
            raise ConfigError(
                "the vault key (TROTH_VAULT_KEY or vault.key) does not open this vault"
            ) from None

    def rekey(self, new_kek: bytes, reseal: ResealHook | None = None) -> int:
        """Re-seal every stored key (private keys and seal keys) and the key check under
        `new_kek`, each with its own AAD and a fresh nonce; the number of keys re-sealed. Call it
        inside the store's write transaction: a row that does not unseal under the current KEK
        (damaged, or foreign) raises VaultError, and the caller's rollback then leaves every row
        as it was. Afterwards this vault seals under `new_kek` (discard it if the transaction
        rolls back). Each seal key also gets a fresh value that replaces those it had: a stolen
        copy of the vault opened every seal key, and what the node sealed after the rekey too
        (review 55d, vault 1); and a kept old value let the copy's holder seal blobs the node
        took as its own (review 62d, vault 2). `reseal` is then called, in the transaction,
        with a `Resealer` that seals a blob made under an old value again under the new one:
        it rewrites every blob its caller keeps (troth.secrets.reseal); any other opens under
        nothing afterwards. The node's switch-over (the key file, crash safety):
        troth.node.rekey."""
        store, old = self._store, self._aead
        if store is None or old is None:
            raise VaultError("an ephemeral vault has no KEK to change")
        if len(new_kek) != KEK_SIZE:
            raise ConfigError(f"a vault key is {KEK_SIZE} bytes")
        new = Aead(AeadAlgorithm.AES_256_GCM, new_kek)
        replaced: dict[str, tuple[tuple[Aead, ...], Aead]] = {}  # seal key: (old values, new)
        count = 0
        after = 0
        while True:
            found = store.sealed_keys_after(after, _RESEAL_CHUNK)
            if not found:
                break
            resealed: list[tuple[int, bytes]] = []
            for number, key_type, purpose, sealed in found:
                key_id = f"{number:016x}"
                aad = _row_aad(key_id, key_type, purpose)
                raw = None if aad is None else _unseal_with(old, sealed, aad)
                if aad is None or raw is None:
                    raise VaultError(
                        f"key {key_id} does not unseal under the vault's key (damaged or not "
                        "troth's): nothing was re-sealed; delete its row or restore it first"
                    )
                if key_type == SEAL_KEY_TYPE:  # a value the old KEK never opened, alone
                    values = _seal_values(SealKey(self.name, key_id), raw)  # (55d, 62d)
                    raw = os.urandom(Aead.KEY_SIZE)
                    replaced[key_id] = (values, Aead(AeadAlgorithm.AES_256_GCM, raw))
                nonce = os.urandom(Aead.NONCE_SIZE)
                resealed.append((number, _SEAL_VERSION + nonce + new.encrypt(nonce, raw, aad)))
            store.replace_sealed_keys(resealed)
            rows = self._rows
            for number, sealed in resealed:  # the cached keys' rows, re-sealed: still theirs
                if f"{number:016x}" in rows:
                    rows[f"{number:016x}"] = sealed[1 : 1 + Aead.NONCE_SIZE]
            count += len(resealed)
            after = found[-1][0]
        if reseal is not None:
            reseal(Resealer(self.name, replaced))
        nonce = os.urandom(Aead.NONCE_SIZE)
        store.put_vault_meta("kek_check", nonce + new.encrypt(nonce, _CHECK_PLAINTEXT, _CHECK_AAD))
        self._aead = new
        for key_id, (_, value) in replaced.items():
            if key_id in self._seal_keys:  # cached: with the new value alone from now on
                self._seal_keys[key_id] = (value,)
        return count

    # -- the Vault interface ------------------------------------------------------------------

    def generate(self, key_type: KeyType, purpose: KeyPurpose) -> KeyHandle:
        key = generate_private_key(key_type)
        key_id = self._store_new(
            int(key_type),
            int(purpose),
            key.private_bytes(),
            _KEY_AAD,
            _AAD_TAILS[key_type, purpose][0],
        )
        self._remember(key_id, key)
        self._seen.live.add(key_id)
        return KeyHandle(self.name, key_type, key_id)

    def key_batch(self) -> KeyBatch:
        """A batch whose keys are sealed as they are made and stored together by `store()`
        (one multi-row write). Call it inside the store's write transaction: the batch numbers
        its keys above every stored one, so no other process can take them before it commits."""
        self._next_number(os.urandom(3))  # the batch numbers its keys from here on
        if self._store is not None:
            self._last_number = max(self._last_number, self._store.max_key_number())
        return _SoftwareKeyBatch(self)

    def _store_new(
        self, key_type: int, purpose: int, raw: bytes, aad_head: bytes, aad_tail: bytes
    ) -> str:
        """Allocate a key id and (when persistent) store `raw` sealed under the KEK."""
        store = self._store
        if store is None:
            return f"{self._next_number(os.urandom(3)):016x}"
        for _attempt in range(3):
            key_id, row = self._sealed_row(key_type, purpose, raw, aad_head, aad_tail, _now())
            try:
                store.put_sealed_key(*row)
                self._rows[key_id] = row[3][1 : 1 + Aead.NONCE_SIZE]
                return key_id
            except ConflictError:  # another process took this number in the same millisecond
                continue
        raise VaultError("could not allocate a key number")

    def _sealed_row(
        self,
        key_type: int,
        purpose: int,
        raw: bytes,
        aad_head: bytes,
        aad_tail: bytes,
        created_at: int,
    ) -> tuple[str, SealedKeyRow]:
        """A new key id and the row that stores `raw` under it, sealed with AAD = `aad_head`
        || key id || `aad_tail` (persistent vaults only)."""
        rnd = os.urandom(3 + Aead.NONCE_SIZE)
        number = self._next_number(rnd[:3])
        key_id = f"{number:016x}"
        nonce = rnd[3:]
        aead = self._aead
        if aead is None:
            raise VaultError("an ephemeral vault stores no keys")
        sealed = (
            _SEAL_VERSION + nonce + aead.encrypt(nonce, raw, aad_head + key_id.encode() + aad_tail)
        )
        return key_id, (number, key_type, purpose, sealed, created_at)

    def _next_number(self, random3: bytes) -> int:
        """A time-ordered 63-bit key number: milliseconds since 2025-01-01 (41 bits, until
        2094) and 22 random bits, strictly increasing within this process. Time order keeps
        inserts at the end of the table's B-tree; the random bits keep processes apart."""
        number = (time.time_ns() // 1_000_000 - _EPOCH_MS) << 22 | int.from_bytes(random3) >> 2
        if number <= self._last_number:
            number = self._last_number + 1
            if number > _MAX_KEY_NUMBER:
                raise VaultError("no key number left above the stored ones")
        self._last_number = number
        return number

    def public_key(self, handle: KeyHandle) -> PublicKey:
        return self._load(handle).public_key

    def sign(self, handle: KeyHandle, data: bytes) -> bytes:
        return self._load(handle).sign(data)

    def dh(self, handle: KeyHandle, peer: PublicKey) -> bytes:
        return self._load(handle).dh(peer)

    def delete(self, handle: KeyHandle) -> None:
        self._check_handle(handle)
        number = _key_number(handle)  # the one spelling: the cache and the row agree
        key_id = handle.key_id
        cached = self._cache.get(key_id)
        # a cached key of another type is no key of this handle; the row decides, as for a use
        # (`_load`): it is stale once another process deleted it and gave its number to a key
        # of the handle's type (review 50h), which this process could not delete (review 66s,
        # vault 1); deleted, the stale one goes with it
        stale = cached is not None and cached.key_type is not handle.key_type
        if not self._drop(key_id, number, int(handle.key_type), {} if stale else self._cache):
            raise KeyNotFound(f"no key {handle}")
        if stale:
            self._cache.pop(key_id, None)

    # -- sealing (the SealingVault interface) ---------------------------------------------------

    def generate_seal_key(self) -> SealKey:
        raw = os.urandom(Aead.KEY_SIZE)
        key_id = self._store_new(SEAL_KEY_TYPE, 0, raw, _SEAL_KEY_AAD, b"")
        self._seal_keys[key_id] = (Aead(AeadAlgorithm.AES_256_GCM, raw),)
        self._seen.live.add(key_id)
        return SealKey(self.name, key_id)

    def seal(self, key: SealKey, plaintext: bytes, aad: bytes) -> bytes:
        return seal_under(self._seal_key(key)[0], key, plaintext, aad)

    def unseal(self, key: SealKey, sealed: bytes, aad: bytes) -> bytes:
        # its value (then, in a row from before 62i, older ones)
        plaintext = unseal_under(self._seal_key(key), key, sealed, aad)
        if plaintext is None:
            raise VaultError(f"cannot unseal under {key} (tampered, moved or another key)")
        return plaintext

    def delete_seal_key(self, key: SealKey) -> None:
        check_seal_key(self.name, key)
        if not self._drop(key.key_id, _key_number(key), SEAL_KEY_TYPE, self._seal_keys):
            raise KeyNotFound(f"no seal key {key}")

    def _drop(
        self,
        key_id: str,
        number: int,
        key_type: int,
        cache: dict[str, PrivateKey] | dict[str, tuple[Aead, ...]],
    ) -> bool:
        """Delete key `key_id` (its row, numbered `number`, and its entry in `cache`) when it
        is of `key_type` (a private key's, or SEAL_KEY_TYPE); whether there was one. A row of
        another type is no key of that handle and stays: a handle naming an Ed25519 key as
        X25519, or a seal key's id as a private key's, deleted that key, and with a seal key
        every blob sealed under it (review 66g, vault 1; as the PKCS#11 vault, review 62d).
        The type is a condition of the one deletion statement (no look-up before it: every
        rotation deletes a key, review 59c, rotate 6)."""
        store = self._store
        deleted = store is not None and store.delete_sealed_key(number, key_type)
        found = cache.pop(key_id, None) is not None  # its row deleted by another process
        if deleted or found:
            self._seen.live.discard(key_id)
            self._rows.pop(key_id, None)
        return deleted or found

    def _seal_key(self, key: SealKey) -> tuple[Aead, ...]:
        values = self._seal_keys.get(key.key_id)
        if values is not None and key.vault == self.name:
            if self._live(key.key_id):
                return values
            self._seal_keys.pop(key.key_id, None)  # deleted by another process
        check_seal_key(self.name, key)
        raw = self._unseal_row(key, SEAL_KEY_TYPE, lambda _purpose: _seal_key_aad(key.key_id))
        values = self._seal_keys[key.key_id] = _seal_values(key, raw)
        self._seen.live.add(key.key_id)
        return values

    # -- internals ----------------------------------------------------------------------------

    def _check_handle(self, handle: KeyHandle) -> None:
        if handle.vault != self.name:
            raise KeyNotFound(f"{handle} belongs to the {handle.vault} vault")

    def _remember(self, key_id: str, key: PrivateKey) -> None:
        cache = self._cache
        if len(cache) >= _CACHE_SIZE:  # drop the older half (amortised O(1)); they reload on use
            self._cache = cache = dict(itertools.islice(cache.items(), _CACHE_SIZE // 2, None))
            seal_keys = self._seal_keys
            self._rows = {
                kept: nonce
                for kept, nonce in self._rows.items()
                if kept == key_id or kept in cache or kept in seal_keys or kept in self._unstored
            }
        cache[key_id] = key

    def _load(self, handle: KeyHandle) -> PrivateKey:
        if handle.vault != self.name:  # _check_handle, inlined (hot path: every sign)
            raise KeyNotFound(f"{handle} belongs to the {handle.vault} vault")
        key_id = handle.key_id
        key = self._cache.get(key_id)  # after the check: another vault's handle signs nothing
        if key is not None and key.key_type is handle.key_type:
            if self._live(key_id):
                return key
            self._cache.pop(key_id, None)  # deleted by another process
        raw = self._unseal_row(
            handle,
            int(handle.key_type),
            lambda purpose: _aad(key_id, handle.key_type, purpose),
        )
        key = load_private_key(handle.key_type, raw)
        self._remember(key_id, key)
        self._seen.live.add(key_id)
        return key

    def _live(self, key_id: str) -> bool:
        """Whether the cached key `key_id` may be used: its row is still stored, as this
        thread's connection last saw it, unless another connection committed since (a
        rotation in another process may have deleted it: the store's data version moved),
        then looked up again. The keys this thread saw stored are looked up together at the
        first use after such a commit, in one read (`stored_key_nonces`), those whose row is
        still the one the key was cached from kept (the same nonce: a deleted key's number may
        be given to another key, review 50h): a commit that deleted no key costs one
        statement, not a look-up per key (a node's own storage thread commits between
        handshakes: channel.establish.tcp 1.04x -> 1.10x its floor with a look-up per key),
        and a deletion writes nothing more than the key's row (identity.rotate: a count of
        deletions beside it cost ~15 us of ~217 us, review 50a). Past _RECHECK_KEYS seen
        keys, each is looked up again at its next use instead. An ephemeral vault's keys are
        its cache."""
        store = self._store
        if store is None or key_id in self._unstored:
            return True
        seen = self._seen
        version = store.data_version()
        if version != seen.version:  # written elsewhere: which of the seen keys are left?
            live: set[str] = set()
            if 0 < len(seen.live) <= _RECHECK_KEYS:  # key ids: _key_number's spelling
                numbers = {int(seen_id, 16): seen_id for seen_id in seen.live}
                rows = self._rows
                live = {
                    numbers[n]
                    for n, nonce in store.stored_key_nonces(list(numbers)).items()
                    if n in numbers and rows.get(numbers[n]) == nonce  # the cached key's row
                }
            # both after the look-up (a failed one leaves the next use to ask again); the
            # version read before it: a commit after the look-up moves the version again
            seen.version = version
            seen.live = live
        if key_id in seen.live:
            return True
        row = store.get_sealed_key(int(key_id, 16))  # key ids: _key_number's spelling
        # deleted, its number given to another key (review 50h, vault 1), or damaged: not bytes
        # (review 72k, holds2 6: slicing it was a bare TypeError out of sign)
        sealed = None if row is None else row[2]
        if not isinstance(sealed, bytes):
            return False
        if sealed[1 : 1 + Aead.NONCE_SIZE] != self._rows.get(key_id):
            return False
        seen.live.add(key_id)
        return True

    def _unseal_row(
        self, handle: KeyHandle | SealKey, key_type: int, aad_for: Callable[[int], bytes]
    ) -> bytes:
        """The raw key stored for `handle`, checked against its type and unsealed."""
        if self._store is None or self._aead is None:
            raise KeyNotFound(f"no key {handle}")
        row = self._store.get_sealed_key(_key_number(handle))
        if row is None:
            raise KeyNotFound(f"no key {handle}")
        stored_type, purpose, sealed = row
        if (
            stored_type != key_type
            or not isinstance(sealed, bytes)
            or sealed[:1] != _SEAL_VERSION
            # a purpose troth makes none of: no AAD byte (review 60e, vault 2: a ValueError)
            or (key_type != SEAL_KEY_TYPE and purpose not in _PURPOSE_NUMBERS)
        ):
            raise VaultError(f"key {handle} does not match its stored record")
        nonce, ciphertext = sealed[1 : 1 + Aead.NONCE_SIZE], sealed[1 + Aead.NONCE_SIZE :]
        try:
            if len(ciphertext) < Aead.TAG_SIZE:  # cut short: not the library's ValueError for
                raise CryptoError("a sealed key cut short")  # the nonce (review 34a, vault 1)
            raw = self._aead.decrypt(nonce, ciphertext, aad_for(purpose))
        except CryptoError:
            raise VaultError(f"key {handle} failed to unseal (tampered or another KEK)") from None
        self._rows[handle.key_id] = nonce  # the row the key is cached from (_live)
        return raw


class _SoftwareKeyBatch:
    """The software vault's KeyBatch: keys sealed as they are made, their rows written by
    `store()` in one multi-row insert per chunk (SoftwareVault.key_batch)."""

    def __init__(self, vault: SoftwareVault) -> None:
        self.name = vault.name
        self._vault = vault
        self._rows: list[SealedKeyRow] = []
        self._made: list[str] = []
        self._created_at = _now()
        self._encrypt = None if vault._store is None or vault._aead is None else vault._aead.encrypt
        self._nonces = b""  # random bytes read _NONCES_PER_READ nonces at a time
        self._next_nonce = 0
        self.public_key = vault.public_key
        self.sign = vault.sign
        self.dh = vault.dh

    def generate(self, key_type: KeyType, purpose: KeyPurpose) -> KeyHandle:
        vault = self._vault
        key = generate_private_key(key_type)
        # one after another above every stored number (key_batch): no clock, no random bits
        number = vault._last_number + 1
        if number > _MAX_KEY_NUMBER:
            raise VaultError("no key number left above the stored ones")
        vault._last_number = number
        key_id = f"{number:016x}"
        encrypt = self._encrypt
        if encrypt is not None:
            tail, type_number, purpose_number = _AAD_TAILS[key_type, purpose]
            at = self._next_nonce
            if at >= len(self._nonces):  # one system call for many nonces (each ~1 us)
                self._nonces = os.urandom(Aead.NONCE_SIZE * _NONCES_PER_READ)
                at = 0
            self._next_nonce = at + Aead.NONCE_SIZE
            nonce = self._nonces[at : at + Aead.NONCE_SIZE]
            vault._rows[key_id] = nonce
            sealed = encrypt(nonce, key.private_bytes(), _KEY_AAD + key_id.encode() + tail)
            self._rows.append(
                (
                    number,
                    type_number,
                    purpose_number,
                    _SEAL_VERSION + nonce + sealed,
                    self._created_at,
                )
            )
        cache = vault._cache
        if len(cache) < _CACHE_SIZE:  # _remember, inlined while the cache has room
            cache[key_id] = key
        else:
            vault._remember(key_id, key)
        self._made.append(key_id)
        vault._unstored.add(key_id)
        return KeyHandle(self.name, key_type, key_id)

    def delete(self, handle: KeyHandle) -> None:
        if handle.vault == self.name and handle.key_id in self._made:  # not stored yet
            number = _key_number(handle)
            self._rows = [row for row in self._rows if row[0] != number]
            self._made.remove(handle.key_id)
            self._vault._cache.pop(handle.key_id, None)
            self._vault._unstored.discard(handle.key_id)
            self._vault._rows.pop(handle.key_id, None)
            return
        self._vault.delete(handle)

    def store(self) -> None:
        store = self._vault._store
        # read before the rows are written: a commit of another connection after it moves it
        version = None if store is None else store.data_version()
        if self._rows and store is not None:
            try:
                store.put_sealed_keys(self._rows)
            except ConflictError:  # only when key_batch() was not called inside the transaction
                raise VaultError("a key number of the batch was taken meanwhile") from None
        self._vault._unstored.difference_update(self._made)
        if version is not None:
            self._seen_stored(version)
        self._rows.clear()
        self._made.clear()

    def _seen_stored(self, version: int) -> None:
        """The batch's keys seen stored by this thread, as `generate` leaves its key (one
        look-up each at its first use spared: each rotation of a batch's identity ran two,
        review 59c, rotate 6). A thread that never asked the data version (-1: the first
        `_live` drops what it saw) starts at `version`, read before the rows were written
        (inside the write transaction that stores them no other connection commits; outside
        one, a commit after the read moves it), with these keys only; one that did keeps its
        version, so a commit elsewhere since has every seen key looked up again, these too."""
        seen = self._vault._seen
        if seen.version == -1:
            seen.version, seen.live = version, set()
        seen.live.update(self._made)

    def discard(self) -> None:
        cache, rows = self._vault._cache, self._vault._rows
        for key_id in self._made:
            cache.pop(key_id, None)
            rows.pop(key_id, None)
        self._vault._unstored.difference_update(self._made)
        self._rows.clear()
        self._made.clear()


def _opens_newest_key(store: SealedKeyStore, aead: Aead) -> bool:
    """Whether `aead` (a KEK) unseals the newest sealed key of `store`, or it holds none."""
    number = store.max_key_number()
    if number <= 0:
        return True
    row = store.get_sealed_key(number)
    if row is None:
        return True  # deleted meanwhile: nothing sealed to judge by
    key_type, purpose, sealed = row
    aad = _row_aad(f"{number:016x}", key_type, purpose)
    return aad is not None and _unseal_with(aead, sealed, aad) is not None


def kek_opens_check(store: SealedKeyStore, kek: bytes) -> bool:
    """Whether `kek` opens the store's key check value (False without one): which of two keys
    a vault is sealed under, as a rekey killed half-way leaves the node (troth.node.rekey)."""
    check = store.get_vault_meta("kek_check")
    if check is None or len(kek) != KEK_SIZE or len(check) < Aead.NONCE_SIZE + Aead.TAG_SIZE:
        return False
    try:
        Aead(AeadAlgorithm.AES_256_GCM, kek).decrypt(
            check[: Aead.NONCE_SIZE], check[Aead.NONCE_SIZE :], _CHECK_AAD
        )
    except CryptoError:
        return False
    return True


def _row_aad(key_id: str, key_type: int, purpose: int) -> bytes | None:
    """The AAD a stored row is sealed with (None: a row of no type troth makes)."""
    if key_type == SEAL_KEY_TYPE:
        return _seal_key_aad(key_id)
    if key_type in _KEY_TYPE_NUMBERS and purpose in _PURPOSE_NUMBERS:
        return _aad(key_id, key_type, purpose)
    return None


def _unseal_with(aead: Aead, sealed: object, aad: bytes) -> bytes | None:
    """A stored row's raw key unsealed by `aead`, or None (not version 1, cut short, tampered
    or another KEK)."""
    if not isinstance(sealed, bytes) or sealed[:1] != _SEAL_VERSION:
        return None
    nonce, ciphertext = sealed[1 : 1 + Aead.NONCE_SIZE], sealed[1 + Aead.NONCE_SIZE :]
    if len(nonce) != Aead.NONCE_SIZE or len(ciphertext) < Aead.TAG_SIZE:
        return None
    try:
        return aead.decrypt(nonce, ciphertext, aad)
    except CryptoError:
        return None


_KEY_TYPE_NUMBERS: Final = frozenset(int(key_type) for key_type in KeyType)
_PURPOSE_NUMBERS: Final = frozenset(int(purpose) for purpose in KeyPurpose)


def _key_number(handle: KeyHandle | SealKey) -> int:
    """The key's row number, from its one spelling (16 lowercase hex digits): another spelling
    of the same number (`0X…`, upper case) names no key, so no operation can reach a row by
    one text and the in-memory cache by another; nor does one past the largest row number."""
    if not _KEY_ID.fullmatch(handle.key_id):
        raise KeyNotFound(f"no key {handle}")
    number = int(handle.key_id, 16)
    if number > _MAX_KEY_NUMBER:  # no row has it: SQLite was asked, and raised OverflowError
        raise KeyNotFound(f"no key {handle}")  # (review 60e, vault 1)
    return number


def _seal_key_aad(key_id: str) -> bytes:
    return _SEAL_KEY_AAD + key_id.encode()


def _seal_values(key: SealKey, raw: bytes) -> tuple[Aead, ...]:
    """A seal key's values from its unsealed row: 32 bytes each, the one that seals first, then
    (a row a rekey before review 62i wrote) those earlier rekeys replaced, newest first."""
    size = Aead.KEY_SIZE
    if not raw or len(raw) % size:
        raise VaultError(f"seal key {key} does not match its stored record")
    return tuple(
        Aead(AeadAlgorithm.AES_256_GCM, raw[at : at + size]) for at in range(0, len(raw), size)
    )


def _aad(key_id: str, key_type: KeyType | int, purpose: KeyPurpose | int) -> bytes:
    return _KEY_AAD + key_id.encode() + _aad_tail(key_type, purpose)


def _aad_tail(key_type: KeyType | int, purpose: KeyPurpose | int) -> bytes:
    """What follows the key id in a private key's AAD: 0x00, key type, purpose."""
    return bytes((0, int(key_type), int(purpose)))


_AAD_TAILS: Final = {
    (key_type, purpose): (_aad_tail(key_type, purpose), int(key_type), int(purpose))
    for key_type in KeyType
    for purpose in KeyPurpose
}
"""Per (key type, purpose): the AAD's tail and the row's numbers (the batch's hot path)."""


def _now() -> int:
    return int(time.time())  # bookkeeping only: when the row was written
