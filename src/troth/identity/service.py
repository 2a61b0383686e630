"""Identities of a node: create, rotate, look up, export, import (append-only), purpose keys.

Every method takes `now`; storage and vault come from the node. Writes happen in one
transaction each, so a crash leaves either the old state or the new one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from troth.crypto import KeyType
from troth.errors import ConflictError, IdentityError, IdentityFailure, NotFound, TrothError
from troth.identity.attestation import VerifiedPurposeKey, attest_purpose_key, verify_attestation
from troth.identity.create import new_identity, rotate_identity
from troth.identity.history import VerifiedIdentity, change_hashes, check_extends, verify_history
from troth.identity.identifier import Identifier
from troth.identity.signer import Signer
from troth.names import check_name
from troth.storage import IdentityStore, LocalIdentityRecord, PurposeKeyRecord
from troth.vault import KeyHandle, KeyPurpose, Vault

__all__ = ["PRIMARY_KEY_TTL", "PURPOSE_KEY_TTL", "IdentityService", "LocalIdentity"]

PRIMARY_KEY_TTL: Final = 10 * 365 * 86_400
"""Default validity of a primary key: ten years (rotate sooner at will; an expired key can no
longer rotate, so the default is long)."""
PURPOSE_KEY_TTL: Final = 30 * 86_400
"""Default validity of a purpose-key attestation: thirty days."""
_RENEW_BEFORE: Final = 86_400
"""A purpose key within a day of expiry is replaced on next use."""
KNOWN_CACHE_SECONDS: Final = 10.0
"""How long check_known trusts its in-memory copy of a stored history's change hashes."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class LocalIdentity:
    """An identity whose primary key this node's vault holds."""

    name: str | None
    identity: VerifiedIdentity
    primary_key: KeyHandle

    @property
    def identifier(self) -> Identifier:
        return self.identity.identifier


class IdentityService:
    def __init__(
        self,
        vault: Vault,
        store: IdentityStore,
        *,
        primary_key_ttl: int = PRIMARY_KEY_TTL,
        purpose_key_ttl: int = PURPOSE_KEY_TTL,
    ) -> None:
        self.vault = vault
        self.store = store
        self.primary_key_ttl = primary_key_ttl
        self.purpose_key_ttl = purpose_key_ttl
        self._known: dict[bytes, tuple[float, list[bytes] | None]] = {}

    # -- creation -----------------------------------------------------------------------------

    def create(
        self, *, now: int, name: str | None = None, key_type: KeyType = KeyType.ED25519
    ) -> LocalIdentity:
        if name is not None:
            check_name(name, "identity name")
        with self.store.transaction():
            return self._create_one(name, key_type, now)

    def create_many(
        self,
        count: int,
        *,
        now: int,
        key_type: KeyType = KeyType.ED25519,
        name_prefix: str | None = None,
        progress: Progress | None = None,
    ) -> list[LocalIdentity]:
        """Create `count` identities in one transaction: all of them, or none on failure."""
        if name_prefix is not None:
            check_name(f"{name_prefix}-{count}", "identity name")
        created: list[LocalIdentity] = []
        with self.store.transaction():
            for number in range(count):
                name = None if name_prefix is None else f"{name_prefix}-{number}"
                created.append(self._create_one(name, key_type, now))
                if progress is not None:
                    progress(number + 1, count)
        return created

    def _create_one(self, name: str | None, key_type: KeyType, now: int) -> LocalIdentity:
        handle, identity = new_identity(
            self.vault, key_type, now=now, valid_for=self.primary_key_ttl
        )
        digest = identity.identifier.digest
        try:
            self.store.add_local(digest, identity.history, name, str(handle), now)
        except ConflictError:
            self._forget_keys([handle])
            if name is not None and self.store.find_local(name=name) is not None:
                raise ConflictError(f"an identity named {name!r} exists") from None
            raise
        return LocalIdentity(name, identity, handle)

    # -- lookup -------------------------------------------------------------------------------

    def find(self, ref: str) -> LocalIdentityRecord:
        """The local identity named `ref`, or whose identifier (text or DID form) is `ref`."""
        if Identifier.looks_like(ref):
            record = self.store.find_local(identifier=Identifier.parse(ref).digest)
        else:
            record = self.store.find_local(name=ref)
        if record is None:
            raise NotFound(f"no local identity {ref!r}")
        return record

    def get(self, ref: str, *, now: int) -> LocalIdentity:
        record = self.find(ref)
        return LocalIdentity(
            record.name,
            verify_history(record.history, now=now),
            KeyHandle.parse(record.primary_key),
        )

    def list_local(self) -> Iterator[LocalIdentityRecord]:
        return self.store.list_local()

    def export(self, ref: str) -> bytes:
        return self.find(ref).history

    # -- rotation -----------------------------------------------------------------------------

    def rotate(self, ref: str, *, now: int, key_type: KeyType | None = None) -> LocalIdentity:
        """Append a change with a new primary key; retire the old key and all purpose keys."""
        with self.store.transaction():
            record = self.find(ref)
            identity = verify_history(record.history, now=now)
            old = KeyHandle.parse(record.primary_key)
            handle, rotated = rotate_identity(
                self.vault,
                identity,
                old,
                key_type or old.key_type,
                now=now,
                valid_for=self.primary_key_ttl,
            )
            digest = rotated.identifier.digest
            try:
                self.store.update_history(
                    digest,
                    rotated.history,
                    len(rotated.changes),
                    len(identity.changes),
                    now,
                    primary_key=str(handle),
                )
                retired = self.store.take_purpose_keys(digest)
            except TrothError:
                self._forget_keys([handle])
                raise
        self._known.pop(rotated.identifier.digest, None)
        self._forget_keys([old, *(KeyHandle.parse(r.key_handle) for r in retired)])
        return LocalIdentity(record.name, rotated, handle)

    # -- known identities (append-only) --------------------------------------------------------

    def import_history(self, data: bytes | VerifiedIdentity, *, now: int) -> VerifiedIdentity:
        """Store a history (verified here unless it already is); a stored identity only accepts
        an extension of itself."""
        identity = data if isinstance(data, VerifiedIdentity) else verify_history(data, now=now)
        digest = identity.identifier.digest
        try:
            with self.store.transaction():
                stored = self.store.get_history(digest)
                if stored is None:
                    self.store.insert_history(digest, identity.history, len(identity.changes), now)
                    return identity
                check_extends(change_hashes(stored[0]), identity)
                if len(identity.changes) > stored[1]:
                    if self.store.find_local(identifier=digest) is not None:
                        raise IdentityError(
                            IdentityFailure.FORK, "a local identity is rotated only by its own node"
                        )
                    self.store.update_history(
                        digest, identity.history, len(identity.changes), stored[1], now
                    )
        finally:
            self._known.pop(digest, None)  # after the write: check_known reads it afresh
        return identity

    def check_known(self, identity: VerifiedIdentity) -> None:
        """Raise IdentityError if a stored copy exists and `identity` is not an extension of it.

        Called on every handshake and chain check, so the stored change hashes are kept in
        memory for KNOWN_CACHE_SECONDS (this process's own writes refresh them at once; a copy
        another process stores is seen within that time)."""
        digest = identity.identifier.digest
        now = time.monotonic()
        cached = self._known.get(digest)
        if cached is None or now - cached[0] > KNOWN_CACHE_SECONDS:
            stored = self.store.get_history(digest)
            cached = (now, None if stored is None else change_hashes(stored[0]))
            if len(self._known) >= 4096:
                self._known.clear()
            self._known[digest] = cached
        if cached[1] is not None:
            check_extends(cached[1], identity)

    # -- purpose keys ------------------------------------------------------------------------

    def purpose_key(
        self, ref: str, purpose: KeyPurpose, *, now: int
    ) -> tuple[KeyHandle, VerifiedPurposeKey]:
        """The identity's key for `purpose`, attested under its current change; created (or
        replaced when it nears expiry or was made under an older change) on demand."""
        _local, handle, verified = self._purpose_key(ref, purpose, now=now)
        return handle, verified

    def _purpose_key(
        self, ref: str, purpose: KeyPurpose, *, now: int
    ) -> tuple[LocalIdentity, KeyHandle, VerifiedPurposeKey]:
        with self.store.transaction():
            local = self.get(ref, now=now)
            digest = local.identifier.digest
            record = self.store.get_purpose_key(digest, int(purpose))
            if record is not None:
                try:
                    verified = verify_attestation(
                        local.identity, record.attestation, purpose=purpose, now=now
                    )
                    if verified.expires_at - now > _RENEW_BEFORE:
                        return local, KeyHandle.parse(record.key_handle), verified
                except IdentityError:
                    pass  # stale or expired: replace it below
            key_type = (
                KeyType.X25519
                if purpose is KeyPurpose.SECURE_CHANNEL
                else local.primary_key.key_type
            )
            handle = self.vault.generate(key_type, purpose)
            attestation = attest_purpose_key(
                self.vault,
                local.primary_key,
                local.identity,
                purpose,
                self.vault.public_key(handle),
                now=now,
                expires_at=now + self.purpose_key_ttl,
            )
            self.store.put_purpose_key(
                PurposeKeyRecord(digest, int(purpose), str(handle), attestation)
            )
            verified = verify_attestation(local.identity, attestation, purpose=purpose, now=now)
        if record is not None:
            self._forget_keys([KeyHandle.parse(record.key_handle)])
        return local, handle, verified

    def signer(self, ref: str, *, now: int) -> Signer:
        """Sign as local identity `ref` with its (created or renewed on demand) signing key."""
        local, handle, key = self._purpose_key(ref, KeyPurpose.SIGNING, now=now)
        return Signer(local.identity, self.vault, handle, key.attestation, key.expires_at)

    def _forget_keys(self, handles: list[KeyHandle]) -> None:
        """Delete keys that no longer back anything (best effort: an orphan is harmless)."""
        for handle in handles:
            with contextlib.suppress(TrothError):
                self.vault.delete(handle)
