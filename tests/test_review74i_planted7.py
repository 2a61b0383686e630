"""Review 74i, planted7: what a restored copy of node.db can still change in a table troth
makes (74c planted6 compared keys, CHECKs, NOT NULL and defaults): each column's type (its
affinity) and collation (docs/storage.md, "Rollback guard")."""

from __future__ import annotations

from pathlib import Path

from tests.test_review73a_planted3 import edited_node_db
from troth.secrets import store_schema
from troth.secrets.lease import LeaseState
from troth.secrets.store import SecretRecord, SqliteSecretStore
from troth.storage import SqliteDatabase
from troth.storage.planted import planted

_LEASES = next(s for s in store_schema._SCHEMA if "secret_leases (" in s)
_ROW = (1, b"\x01" * 16, *(b"\x02" * 32,) * 2)
_REST = ("e", "", *(b"\x03" * 32,) * 2, 1, 2, 1, 1, 2, int(LeaseState.ACTIVE), 1, b"")


def test_a_key_made_numeric_does_not_make_two_secrets_one(tmp_path: Path) -> None:
    """74i planted7 1: a copy holding `secret_store` keyed by `name NUMERIC PRIMARY KEY`
    (troth's: TEXT; the key's columns, order and collation as troth's, so 73h's comparison
    passed it): SQLite stores the names `01` and `1` as the number 1, so troth's `INSERT OR
    REPLACE` of secret `1` replaced secret `01`, and `01` read back `1`'s engine and config.
    A table troth makes with a column whose type's affinity no troth gave it is refused."""
    path = edited_node_db(
        tmp_path,
        "CREATE TABLE secret_store (name NUMERIC PRIMARY KEY, engine TEXT NOT NULL, "
        "config TEXT NOT NULL, sealed BLOB NOT NULL, updated_at INTEGER NOT NULL)",
    )
    db = SqliteDatabase(path)
    try:
        store = SqliteSecretStore(db)
        store.put_secret(SecretRecord("01", "static", "{}", b"a", 1))
        store.put_secret(SecretRecord("1", "postgres", "{}", b"b", 2))
        assert store.get_config("01") == ("postgres", "{}")  # one secret of the two
        assert planted(db) == ["table 'secret_store' (a column's type not troth's)"]
    finally:
        db.close()


def test_a_collation_planted_does_not_find_another_secrets_leases(tmp_path: Path) -> None:
    """74i planted7 2: a copy holding `secret_leases` as troth makes it but `secret` compared
    `COLLATE NOCASE` (troth's columns are compared as stored, BINARY; no key, so nothing
    compared it): the leases of secret `db` were the open leases of secret `DB`, revoked with
    it when `DB` was moved or removed. A table troth makes with a column compared otherwise
    than troth makes it is refused."""
    planted_leases = _LEASES.replace("secret TEXT NOT NULL", "secret TEXT NOT NULL COLLATE NOCASE")
    assert planted_leases != _LEASES
    db = SqliteDatabase(edited_node_db(tmp_path, planted_leases))
    try:
        store = SqliteSecretStore(db)
        db.execute(store_schema.INSERT_LEASE[(False, False)], (*_ROW, "db", *_REST))
        assert len(store.open_leases_of_secret("DB")) == 1  # secret db's lease
        assert planted(db) == ["table 'secret_leases' (a column's collation not troth's)"]
    finally:
        db.close()
