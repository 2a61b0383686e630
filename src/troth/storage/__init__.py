"""Storage behind small repository interfaces (SQLite today)."""

from troth.storage.base import (
    AuthorityConfig,
    AuthorityStore,
    ChangeRow,
    CredentialStore,
    FeedRow,
    FeedState,
    HeldCredential,
    IdentityStore,
    LocalIdentityRecord,
    MemberRecord,
    PendingEnrollmentRecord,
    PurposeKeyRecord,
    RevocationRecord,
    Transactional,
)
from troth.storage.peers import PeerLock
from troth.storage.sqlite import Durability, SqliteDatabase
from troth.storage.sqlite_authority import SqliteAuthorityStore, SqliteCredentialStore
from troth.storage.sqlite_stores import SqliteIdentityStore, SqliteKeyStore

__all__ = [
    "AuthorityConfig",
    "AuthorityStore",
    "ChangeRow",
    "CredentialStore",
    "Durability",
    "FeedRow",
    "FeedState",
    "HeldCredential",
    "IdentityStore",
    "LocalIdentityRecord",
    "MemberRecord",
    "PeerLock",
    "PendingEnrollmentRecord",
    "PurposeKeyRecord",
    "RevocationRecord",
    "SqliteAuthorityStore",
    "SqliteCredentialStore",
    "SqliteDatabase",
    "SqliteIdentityStore",
    "SqliteKeyStore",
    "Transactional",
]
