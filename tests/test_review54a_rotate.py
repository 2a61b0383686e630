"""Review 54a (performance of identity.rotate, benchmarks/README.md "Pass 54a"): what the
rotation's cheaper statements must keep.

1. A rotation asked SQLite's `PRAGMA data_version` once for each use of a vault key (5 a
   rotation), all inside its write transaction, where the answer cannot change. The database
   now keeps the first answer of a transaction for the rest of it: one statement a
   transaction, and the number is always the one SQLite gives (a property over interleavings
   of transactions, other connections' commits and a transaction SQLite rolled back itself).
2. The rotation's statements run on the thread's kept cursor with byte strings bound as
   bytearrays (`SqliteDatabase.run`, `run_rows`): the rows found, updated and deleted are the
   same, a clash is still a ConflictError, and outside a transaction they are `execute`'s.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from troth.crypto import KeyType
from troth.errors import ConflictError, KeyNotFound, StorageError
from troth.node import init_node, open_node
from troth.storage import PurposeKeyRecord
from troth.storage.sqlite import SqliteDatabase
from troth.storage.sqlite_stores import SqliteIdentityStore, SqliteKeyStore
from troth.vault import KeyPurpose
from troth.vault.software import SoftwareVault

NOW = 1_790_000_000


def _statements(db: SqliteDatabase) -> list[str]:
    """Every statement this thread's connection of `db` runs from now on."""
    seen: list[str] = []
    db.connection().set_trace_callback(seen.append)
    return seen


def test_a_rotation_asks_the_data_version_once(tmp_path: Path) -> None:
    """1: one `PRAGMA data_version` in a rotation's transaction (it used 5 keys: 5 before)."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        node.identities.create(now=NOW, name="a")
        node.identities.rotate("a", now=NOW + 1)  # the thread's first use of the vault
        seen = _statements(node.db)
        node.identities.rotate("a", now=NOW + 2)
        node.db.connection().set_trace_callback(None)
    assert seen[0] == "BEGIN IMMEDIATE"
    assert seen[-1] == "COMMIT"
    assert sum(s == "PRAGMA data_version" for s in seen) == 1


def test_a_key_deleted_before_the_transaction_is_not_used_in_it(tmp_path: Path) -> None:
    """1: the kept answer is the transaction's own: another connection's deletion committed
    before it began is seen by the first use of the key inside it."""
    path = tmp_path / "node.db"
    kek = bytes(range(32))
    db = SqliteDatabase(path)
    vault = SoftwareVault(SqliteKeyStore(db), kek)
    other = SoftwareVault(SqliteKeyStore(SqliteDatabase(path)), kek)
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    with db.transaction():
        vault.sign(handle, b"x")
        vault.sign(handle, b"x")
    other.delete(handle)
    with db.transaction(), pytest.raises(KeyNotFound):
        vault.sign(handle, b"x")


_ACTIONS = st.lists(
    st.sampled_from(["begin", "end", "fail", "auto-rollback", "foreign", "ask"]), max_size=30
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ACTIONS)
def test_the_kept_data_version_is_the_one_sqlite_gives(
    tmp_path_factory: pytest.TempPathFactory, actions: list[str]
) -> None:
    """1: whatever the interleaving of this thread's transactions (committed, failed, rolled
    back by SQLite itself), other connections' commits and questions, `data_version()` is
    what `PRAGMA data_version` on the same connection answers at that moment."""
    path = tmp_path_factory.mktemp("dv") / "node.db"
    db = SqliteDatabase(path)
    db.execute("CREATE TABLE t (v INTEGER)")
    foreign = sqlite3.connect(path, isolation_level=None, timeout=0)
    open_transactions: list[AbstractContextManager[None]] = []

    def raw() -> int:
        return int(db.connection().execute("PRAGMA data_version").fetchone()[0])

    try:
        for action in actions:
            if action == "begin" and not open_transactions:
                manager = db.transaction()
                manager.__enter__()
                open_transactions.append(manager)
            elif action in ("end", "fail") and open_transactions:
                manager = open_transactions.pop()
                if action == "fail":
                    error = RuntimeError("failed")
                    manager.__exit__(RuntimeError, error, None)
                elif db.connection().in_transaction:
                    manager.__exit__(None, None, None)
                else:  # SQLite rolled it back: nothing to commit
                    with pytest.raises(StorageError, match="transaction was rolled back"):
                        manager.__exit__(None, None, None)
            elif action == "auto-rollback" and db.connection().in_transaction:
                db.connection().execute("ROLLBACK")  # as SQLite does on a full disk
            elif action == "foreign":
                try:
                    foreign.execute("INSERT INTO t VALUES (1)")
                except sqlite3.OperationalError:
                    assert db.connection().in_transaction  # the write lock is held
            elif action == "ask":
                assert db.data_version() == raw()
            assert db.data_version() == raw()
    finally:
        foreign.close()
        db.close()


def test_the_rotation_statements_find_and_change_the_same_rows(tmp_path: Path) -> None:
    """2: in and out of a transaction, the stores' kept-cursor statements read, update and
    delete the rows `execute` did; a clash is a ConflictError, a lost race one too."""
    db = SqliteDatabase(tmp_path / "node.db")
    keys, identities = SqliteKeyStore(db), SqliteIdentityStore(db)
    digest, history = bytes(range(32)), b"\x01" * 90
    identities.add_locals([(digest, history, "a", "software:1", "software:2", NOW)])
    for inside in (False, True):
        number = 7 + inside
        with db.transaction() if inside else _nothing():
            keys.put_sealed_key(number, 1, 0, b"\x01sealed", NOW)
            with pytest.raises(ConflictError):
                keys.put_sealed_key(number, 1, 0, b"\x01other", NOW)
            assert keys.get_sealed_key(number) == (1, 0, b"\x01sealed")
            assert keys.get_sealed_key(99) is None
            found = identities.find_local(name="a")
            assert found is not None
            assert found.history == history
            assert identities.find_local(identifier=digest) == found
            assert identities.find_local(name="b") is None
            identities.put_purpose_key(PurposeKeyRecord(digest, 2, "software:3", b"att"))
            taken = identities.take_purpose_keys(digest)
            assert taken == [PurposeKeyRecord(digest, 2, "software:3", b"att")]
            assert identities.take_purpose_keys(digest) == []
            changes = found.changes
            identities.update_history(digest, history + b"\x02", changes + 1, changes, NOW)
            with pytest.raises(ConflictError):  # the stored count moved: a lost race
                identities.update_history(digest, history, changes + 1, changes, NOW)
            identities.update_history(
                digest, history, changes + 2, changes + 1, NOW, primary_key="software:4"
            )
            again = identities.find_local(identifier=digest)
            assert again is not None
            assert (again.history, again.changes, again.primary_key) == (
                history,
                changes + 2,
                "software:4",
            )
            assert keys.delete_sealed_key(number)
            assert not keys.delete_sealed_key(number)
    row = db.fetch_one("SELECT typeof(history), typeof(identifier) FROM identities")
    assert row == ("blob", "blob")
    last = identities.find_local(name="a")
    assert last is not None
    identities.update_history(digest, history, 9, last.changes, NOW, linked=False)
    assert db.fetch_one("SELECT linked, changes FROM identities") == (0, 9)


def test_a_failing_statement_is_a_storage_error_in_a_transaction(tmp_path: Path) -> None:
    """2: `run_rows` maps SQLite's errors as `fetch_all` does."""
    db = SqliteDatabase(tmp_path / "node.db")
    with db.transaction(), pytest.raises(StorageError, match="no such table"):
        db.run_rows("SELECT * FROM nowhere")
    with pytest.raises(StorageError, match="no such table"):
        db.run_rows("SELECT * FROM nowhere")


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None
