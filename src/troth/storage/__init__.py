"""Storage behind small repository interfaces (SQLite today)."""

from troth.storage.base import (
    AuthorityConfig,
    AuthorityStore,
    CredentialStore,
    HeldCredential,
    IdentityStore,
    LocalIdentityRecord,
    MemberRecord,
    PurposeKeyRecord,
    Transactional,
)
from troth.storage.sqlite import Durability, SqliteDatabase
from troth.storage.sqlite_authority import SqliteAuthorityStore, SqliteCredentialStore
from troth.storage.sqlite_stores import SqliteIdentityStore, SqliteKeyStore

__all__ = [
    "AuthorityConfig",
    "AuthorityStore",
    "CredentialStore",
    "Durability",
    "HeldCredential",
    "IdentityStore",
    "LocalIdentityRecord",
    "MemberRecord",
    "PurposeKeyRecord",
    "SqliteAuthorityStore",
    "SqliteCredentialStore",
    "SqliteDatabase",
    "SqliteIdentityStore",
    "SqliteKeyStore",
    "Transactional",
]
