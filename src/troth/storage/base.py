"""Repository interfaces. SQLite implements them today; a PostgreSQL backend implements the
same protocols, and nothing above this package changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "AuthorityConfig",
    "AuthorityStore",
    "CredentialStore",
    "HeldCredential",
    "IdentityStore",
    "LocalIdentityRecord",
    "MemberRecord",
    "PurposeKeyRecord",
    "Transactional",
]


class Transactional(Protocol):
    def transaction(self) -> AbstractContextManager[None]:
        """A unit of work: everything written inside commits together or not at all.
        Re-entrant: an inner `transaction()` joins the outer one."""
        ...


@dataclass(frozen=True, slots=True)
class LocalIdentityRecord:
    """An identity whose primary key this node holds, with its committed next primary key
    (None only for rows written before pre-rotation)."""

    identifier: bytes
    name: str | None
    primary_key: str
    created_at: int
    history: bytes
    changes: int
    next_key: str | None


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
        self,
        identifier: bytes,
        history: bytes,
        name: str | None,
        primary_key: str,
        next_key: str,
        now: int,
    ) -> None:
        """Store a new identity whose primary key (and committed next key) this node holds
        (ConflictError on a taken name or identifier)."""
        ...

    def update_history(
        self,
        identifier: bytes,
        history: bytes,
        changes: int,
        expected_changes: int,
        now: int,
        primary_key: str | None = None,
        next_key: str | None = None,
    ) -> None:
        """Replace a history only if the stored copy still has `expected_changes` changes
        (ConflictError otherwise); for a rotation, also record the new `primary_key` and
        `next_key`."""
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


@dataclass(frozen=True, slots=True)
class AuthorityConfig:
    identifier: bytes
    name: str
    credential_ttl: int
    delegation_depth: int
    created_at: int


@dataclass(frozen=True, slots=True)
class MemberRecord:
    identifier: bytes
    attributes: bytes
    added_by: bytes
    added_at: int


class AuthorityStore(Transactional, Protocol):
    """The state of an authority: members, tickets, issued credentials, revocations."""

    def get_config(self) -> AuthorityConfig | None: ...

    def put_config(self, config: AuthorityConfig) -> None: ...

    def put_ticket(
        self,
        code_hash: bytes,
        attributes: bytes,
        uses: int,
        expires_at: int,
        created_by: bytes,
        now: int,
    ) -> None: ...

    def redeem_ticket(self, code_hash: bytes, now: int) -> tuple[bytes, bytes] | None:
        """One atomic conditional write: take one use of an unexpired ticket with uses left.
        Returns (attributes, created_by), or None. Among N concurrent redeemers of a ticket
        with k uses, exactly min(N, k) win."""
        ...

    def put_member(self, record: MemberRecord) -> None:
        """Insert or replace a member."""
        ...

    def get_member(self, identifier: bytes) -> MemberRecord | None: ...

    def list_members(self) -> list[MemberRecord]: ...

    def remove_member(self, identifier: bytes) -> bool: ...

    def record_issued(
        self, credential_id: bytes, subject: bytes, expires_at: int, now: int
    ) -> None: ...

    def unexpired_issued(self, subject: bytes, now: int) -> list[bytes]:
        """Ids of the credentials issued to `subject` that have not expired at `now`."""
        ...

    def append_revocation(self, make_entry: Callable[[int, bytes], tuple[bytes, bytes]]) -> int:
        """Append an entry atomically: `make_entry(seq, head)` gets the next sequence number and
        the current head and returns (entry bytes, new head). Returns the sequence number."""
        ...

    def revocation_entries(self) -> list[bytes]: ...

    def revocation_head(self) -> bytes | None:
        """The head after the last entry, or None when there is none."""
        ...


@dataclass(frozen=True, slots=True)
class HeldCredential:
    identifier: bytes
    id: bytes
    chain: bytes
    authority: bytes
    expires_at: int


class CredentialStore(Transactional, Protocol):
    """Chains held by local identities, and the newest verified revocation feed per authority."""

    def put_held(self, held: HeldCredential, now: int) -> None:
        """Insert or replace."""
        ...

    def list_held(self, identifier: bytes) -> list[HeldCredential]:
        """Newest expiry first."""
        ...

    def get_feed(self, authority: bytes) -> bytes | None: ...

    def put_feed(self, authority: bytes, feed: bytes, count: int, issued_at: int) -> None: ...

    def trust_authority(self, identifier: bytes, address: str, now: int) -> None:
        """Insert or update an authority this node trusts, with the route to reach it."""
        ...

    def trusted_authorities(self) -> list[tuple[bytes, str]]: ...
