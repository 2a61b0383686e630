"""Review 56p, identity 1: a write of a node's identities that joins a caller's transaction
(`Authority.create` makes its identity in its own; a trace log's identity, review 54l) keeps
the keys it made in a vault outside node.db when it fails, since the caller's transaction "may
still commit the rows naming the keys" (troth.identity.fresh; review 53k, pkcs11 3). When
SQLite rolled that transaction back itself (a full disk, an I/O error, an interrupted write),
nothing of it can commit any more (review 56d, storage 1: every later statement and the
commit are refused), yet the keys stayed in the token for good: named by no row, usable by
any session with the PIN. A failure in a transaction SQLite abandoned now deletes them, as
one in the write's own transaction does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.fixed_vault import FixedKeyVault
from troth.crypto import KeyType
from troth.errors import StorageError
from troth.identity import IdentityExists, IdentityService
from troth.storage import SqliteDatabase
from troth.storage.sqlite_stores import SqliteIdentityStore


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "node.db")
    yield database
    database.close()


def _keys(count: int) -> FixedKeyVault:
    return FixedKeyVault([(KeyType.ED25519, bytes([n + 1]) * 32) for n in range(count)])


def _interrupted(db: SqliteDatabase, write: Callable[..., None]) -> Callable[..., None]:
    """`write`, interrupted: SQLite rolls back the whole transaction (sqlite3_interrupt), as
    it may for a full disk or an I/O error."""

    def interrupted(*args: object) -> None:
        conn = db.connection()
        conn.set_progress_handler(lambda: 1, 1)
        try:
            write(*args)
        finally:
            conn.set_progress_handler(None, 1)

    return interrupted


@pytest.mark.parametrize("count", [1, 3])
def test_identity1_a_joined_write_sqlite_rolled_back_leaves_no_key_in_the_vault(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    store = SqliteIdentityStore(db)
    vault = _keys(2 * count)
    identities = IdentityService(vault, store)
    monkeypatch.setattr(store, "add_locals", _interrupted(db, store.add_locals))
    with pytest.raises(StorageError), db.transaction():  # the caller's (Authority.create's)
        if count == 1:
            identities.create(now=NOW, name="acme")
        else:
            identities.create_many(count, now=NOW, name_prefix="agent")
    assert not db.connection().in_transaction
    assert vault._keys == {}  # was: every key made, kept in the vault for good


def test_identity1_refuted_a_joined_write_whose_transaction_stands_keeps_its_keys(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule stands where it holds: a failure that leaves the caller's transaction open
    (a name taken) keeps the keys, which the rows it inserted may name once it commits."""
    store = SqliteIdentityStore(db)
    vault = _keys(6)
    identities = IdentityService(vault, store)
    identities.create(now=NOW, name="taken")
    with db.transaction():
        with pytest.raises(IdentityExists):
            identities.create(now=NOW, name="taken")
        assert db.connection().in_transaction
    assert len(vault._keys) == 4
