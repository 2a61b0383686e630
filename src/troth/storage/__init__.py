"""Storage behind small repository interfaces (SQLite today)."""

from troth.storage.base import IdentityStore, LocalIdentityRecord, PurposeKeyRecord, Transactional
from troth.storage.sqlite import Durability, SqliteDatabase
from troth.storage.sqlite_stores import SqliteIdentityStore, SqliteKeyStore

__all__ = [
    "Durability",
    "IdentityStore",
    "LocalIdentityRecord",
    "PurposeKeyRecord",
    "SqliteDatabase",
    "SqliteIdentityStore",
    "SqliteKeyStore",
    "Transactional",
]
