"""Storage behind small repository interfaces (SQLite today)."""

from troth.storage.base import (
    AuthorityConfig,
    AuthorityStore,
    ChangeRow,
    CredentialStore,
    FeedRow,
    FeedState,
    ForkRecord,
    HeldCredential,
    HoldTime,
    IdentityStore,
    LocalIdentityRecord,
    MemberRecord,
    PendingEnrollmentRecord,
    PurposeKeyRecord,
    RevocationRecord,
    Transactional,
    VoucherRow,
    VoucherStore,
)
from troth.storage.peers import PeerLock
from troth.storage.sqlite import Durability, SqliteDatabase
from troth.storage.sqlite_authority import SqliteAuthorityStore
from troth.storage.sqlite_credentials import SqliteCredentialStore
from troth.storage.sqlite_stores import SqliteIdentityStore, SqliteKeyStore
from troth.storage.sqlite_vouchers import SqliteVoucherStore

__all__ = [
    "AuthorityConfig",
    "AuthorityStore",
    "ChangeRow",
    "CredentialStore",
    "Durability",
    "FeedRow",
    "FeedState",
    "ForkRecord",
    "HeldCredential",
    "HoldTime",
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
    "SqliteVoucherStore",
    "Transactional",
    "VoucherRow",
    "VoucherStore",
]
