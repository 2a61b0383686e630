"""Repository interfaces. SQLite implements them today; a PostgreSQL backend implements the
same protocols, and nothing above this package changes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

__all__ = ["IdentityStore", "LocalIdentityRecord", "PurposeKeyRecord", "Transactional"]


class Transactional(Protocol):
    def transaction(self) -> AbstractContextManager[None]:
        """A unit of work: everything written inside commits together or not at all.
        Re-entrant: an inner `transaction()` joins the outer one."""
        ...


@dataclass(frozen=True, slots=True)
class LocalIdentityRecord:
    """An identity whose primary key this node holds."""

    identifier: bytes
    name: str | None
    primary_key: str
    created_at: int
    history: bytes
    changes: int


@dataclass(frozen=True, slots=True)
class PurposeKeyRecord:
    identifier: bytes
    purpose: int
    key_handle: str
    attestation: bytes


class IdentityStore(Transactional, Protocol):
    """Known change histories (local and imported), local identities and their purpose keys."""

    def get_history(self, identifier: bytes) -> tuple[bytes, int] | None:
        """The stored history and its change count."""
        ...

    def insert_history(self, identifier: bytes, history: bytes, changes: int, now: int) -> None:
        """Store the history of an identity this node does not hold (ConflictError if known)."""
        ...

    def add_local(
        self, identifier: bytes, history: bytes, name: str | None, primary_key: str, now: int
    ) -> None:
        """Store a new identity whose primary key this node holds (ConflictError on a taken
        name or identifier)."""
        ...

    def update_history(
        self,
        identifier: bytes,
        history: bytes,
        changes: int,
        expected_changes: int,
        now: int,
        primary_key: str | None = None,
    ) -> None:
        """Replace a history only if the stored copy still has `expected_changes` changes
        (ConflictError otherwise); for a rotation, also record the new `primary_key`."""
        ...

    def find_local(
        self, *, name: str | None = None, identifier: bytes | None = None
    ) -> LocalIdentityRecord | None: ...

    def list_local(self) -> Iterator[LocalIdentityRecord]: ...

    def put_purpose_key(self, record: PurposeKeyRecord) -> None:
        """Insert or replace the identity's key for `record.purpose`."""
        ...

    def get_purpose_key(self, identifier: bytes, purpose: int) -> PurposeKeyRecord | None: ...

    def take_purpose_keys(self, identifier: bytes) -> list[PurposeKeyRecord]:
        """Remove and return every purpose key of the identity (a rotation retires them)."""
        ...
