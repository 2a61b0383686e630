"""Review 71c (rows): attacks that worked on main before their fix.

rows 1 (low): the rollback guard's rows of node.db (`rollback_store`'s id, `rollback_counters`'
   counts and restore rows, `rollback_foreign`'s times) were taken as `bytes()` / `int()` of
   whatever SQLite returned: a store id made TEXT failed bare (TypeError) at the opening of the
   first guarded store (the node's policy table), an INTEGER n made n zero bytes (MemoryError
   for a large n), a count of TEXT or a BLOB a bare ValueError, a REAL count truncated (0.5
   read as 0, the store judged a restored copy of it), and `troth node status` failed bare on
   a damaged restore row. Each is now read typed and bounded in SQL (`troth.storage.row_types`:
   its type name in place of a value of another type) and refused with StorageError saying
   node.db is damaged, the row left as it is.

rows 3 (low): a node's own identities' rows of node.db (`identities`: identifier, history,
   change count, creation time) were taken as `bytes()` / `int()` of what SQLite returned, each
   time the node listed or found them (`Node.identities.all()`, `get`, a signer, a rotation):
   a history made TEXT failed bare (TypeError), an INTEGER n made n zero bytes (MemoryError
   for a large n). They are read typed, the history bounded by MAX_IDENTITY_HISTORY_BYTES (what
   any history decodes from), and refused with StorageError saying node.db is damaged.

rows 4 (low): the software vault's rows of node.db beside its sealed keys (`vault_meta`: the
   key check value read at each opening of a node, a rekey's tag and mark) were taken as
   `bytes()` of what SQLite returned: a check value made TEXT failed every start of the node
   bare (TypeError), an INTEGER n made n zero bytes (MemoryError for a large n). They are read
   typed and bounded (a value troth writes is tens of bytes) and refused with StorageError.

rows 5 (low): the credential rows of node.db a node reads at each presentation, sync and
   opening of its authority (`held_credentials`: a chain it holds, `feed_state`: the head of a
   revocation feed it verified, `authority`: its own authority's settings) were taken as
   `bytes()` of what SQLite returned: TEXT failed bare, an INTEGER n made n zero bytes. They
   are read typed and bounded (a chain at most MAX_CHAIN_BYTES, a digest or an id 64 bytes)
   and refused with StorageError saying node.db is damaged.

rows 6 (low): the node's stored policy bundles (`gates_policy_bundles`: authority, revision,
   digest, bundle; `gates_policy_held_back`) were taken as `bytes()` / `int()` of what SQLite
   returned each time the gate checked them (`revisions`, `stamps`, `load`, `held_back`): a
   TEXT revision failed every decision's reload bare (ValueError), an INTEGER bundle made n
   zero bytes (MemoryError), a TEXT held-back authority failed bare (TypeError). They are read
   typed and bounded (a bundle at most MAX_POLICY_BUNDLE_BYTES) and refused with StorageError.

rows 7 (low): what a restore found of the `identity` scope keeps in node.db (an identity's
   hold time, `identity_restore_holds`, read before each signature, channel and rotation of
   it; the feeds' times the copy held, `identity_restore_feeds`) was taken as `int()` of what
   SQLite returned: a TEXT time failed bare (ValueError), a REAL one was truncated.
   They are read typed and refused with StorageError saying node.db is damaged.

rows 8 (low): a verifier's `vouchers` and `refuted_changes` rows (read whole by the node's
   vouchers at each opening, and by each sweep of an authority's lapsed ones) were taken as
   `bytes()` / `int()` of what SQLite returned: TEXT failed bare, an INTEGER n made n zero
   bytes. They are read typed and bounded (a digest 64 bytes) and refused with StorageError.

rows 9 (low): the revocation feed rows of node.db (an authority's own `revocations`, read at
   each revocation, page served and supersession looked up; a holder's verified
   `feed_entries`) were taken as `bytes()` / `int()` of what SQLite returned: TEXT failed bare,
   an INTEGER n made n zero bytes. They are read typed and bounded (an entry at most
   MAX_REVOCATION_ENTRY_BYTES, a head, target or hash 64 bytes) and refused with StorageError.

rows 11 (medium): a rotation takes the identity's purpose keys out of node.db (`purpose_keys`,
   DELETE ... RETURNING) to retire the ones it attested; the row's attestation was taken as
   `bytes()` of what SQLite returned. A node.db writer who made one TEXT (or an INTEGER n: n
   zero bytes) failed every rotation of the identity bare (TypeError, MemoryError), a
   compromised one too: the stolen key kept current for as long as the row stayed. The row is
   now read typed and bounded in SQL: a damaged attestation or handle is none (the record
   names no key the identity attested, as one that does not verify: its key is not retired,
   the row is deleted with the others) and the rotation goes on. Read for a channel
   (`get_purpose_key`), a damaged row is refused with StorageError.

rows 10 (low, closed by review 71k: tests/test_review71k_wave2d.py): the rest of an
   authority's enrollment rows (`members`, `tickets`' RETURNING row, `issued_credentials`'
   credential and ids, `pending_enrollments`, `announcements`, `authority_revoke_again`) were
   still taken as `bytes()` / `int()` of what SQLite returned (TEXT failed bare).

rows 2 (low): a database whose `user_version` is negative (a damaged header, or an edit) was
   "migrated" from that number: Python's negative index ran the last migration first, then
   the first one, which failed on the tables already there ("table meta already exists"), as
   if a migration had a bug. It is now refused before any migration runs, with StorageError
   naming the schema number as no schema troth writes.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.gates import T, make_world
from troth.errors import StorageError
from troth.gates import BundleStore, SqliteBundleTable
from troth.identity.restored import RestoredIdentities, copy_feed_issued, last_rotation
from troth.node import init_node, open_node
from troth.storage import SqliteAuthorityStore, SqliteCredentialStore, SqliteDatabase
from troth.storage.rollback import restored_rows
from troth.storage.sqlite_vouchers import SqliteVoucherStore
from troth.storage.store_id import foreign_found_at
from troth.trace.store import open_trace_store
from troth.vault import KeyPurpose


@pytest.fixture
def node_db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    """A fresh node.db (closed after the test)."""
    db = SqliteDatabase(tmp_path / "node.db")
    yield db
    db.close()


def _damaged(table: str, column: str) -> dict[str, str]:
    """`column` of `table`'s rows made TEXT, an INTEGER n (n bytes to `bytes()`), a 1 MiB BLOB."""
    values = (("text", "'abc'"), ("integer", "1 << 50"), ("huge", "zeroblob(1 << 20)"))
    return {f"{column} {kind}": f"UPDATE {table} SET {column} = {v}" for kind, v in values}  # noqa: S608


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node.db whose policy table stored one bundle (its scope counted once, its store id
    made), with its guard: copied by each test."""
    world = make_world()
    path = tmp_path_factory.mktemp("guarded") / "node.db"
    db = SqliteDatabase(path)
    BundleStore(world.verifier, SqliteBundleTable(db)).accept(
        world.bundle(revision=1), feeds=world.feeds(), now=T + 5
    )
    db.close()
    return path


def _copy(guarded: Path, to: Path, edit: str) -> Path:
    """`guarded` (node.db and its guard) copied to `to`, `edit` run on the copy's node.db."""
    for name in ("node.db", "node.db.guard"):
        shutil.copy(guarded.parent / name, to / name)
    with sqlite3.connect(to / "node.db") as raw:
        raw.execute(edit)
    raw.close()
    return to / "node.db"


def _row(path: Path, sql: str) -> object:
    with sqlite3.connect(path) as raw:
        found = raw.execute(sql).fetchone()
    raw.close()
    return found


_OPENING = {  # the edit, the row it leaves
    "id text": ("UPDATE rollback_store SET id = 'abc'", "SELECT id FROM rollback_store"),
    "id integer": ("UPDATE rollback_store SET id = 1 << 50", "SELECT id FROM rollback_store"),
    "id huge": (
        "UPDATE rollback_store SET id = zeroblob(1 << 20)",
        "SELECT length(id) FROM rollback_store",
    ),
    "count text": (
        "UPDATE rollback_counters SET counter = 'x'",
        "SELECT counter FROM rollback_counters",
    ),
    "count blob": (
        "UPDATE rollback_counters SET counter = x'00'",
        "SELECT counter FROM rollback_counters",
    ),
    "count real": (
        "UPDATE rollback_counters SET counter = 0.5",
        "SELECT counter FROM rollback_counters",
    ),
}


@pytest.mark.parametrize("what", sorted(_OPENING))
def test_a_damaged_rollback_row_is_refused_at_the_opening(
    guarded: Path, tmp_path: Path, what: str
) -> None:
    """rows 1: the policy table opened on a node.db whose store id or scope count is of
    another type (or past what an id takes) failed bare (TypeError, ValueError, MemoryError)
    or read a REAL count truncated; now StorageError saying node.db is damaged, the row kept."""
    edit, kept = _OPENING[what]
    path = _copy(guarded, tmp_path, edit)
    before = _row(path, kept)
    db = SqliteDatabase(path)
    try:
        with pytest.raises(StorageError, match="is damaged: its"):
            SqliteBundleTable(db)
    finally:
        db.close()
    assert _row(path, kept) == before


_STATUS = {
    "restored count": "UPDATE rollback_counters SET restored_counter = 'x', "
    "restored_voided = 1, restored_at = 5",
    "restored time": "UPDATE rollback_counters SET restored_counter = 0, "
    "restored_voided = 1, restored_at = x'05'",
}


@pytest.mark.parametrize("what", sorted(_STATUS))
def test_a_damaged_restore_row_is_refused_by_the_status(
    guarded: Path, tmp_path: Path, what: str
) -> None:
    """rows 1: `troth node status` (`restored_rows`) took a restore row's count and time as
    `int()` of what SQLite returned: a bare ValueError; now StorageError (damaged)."""
    db = SqliteDatabase(_copy(guarded, tmp_path, _STATUS[what]))
    try:
        with pytest.raises(StorageError, match="is damaged: its"):
            restored_rows(db)
    finally:
        db.close()


def test_a_damaged_foreign_time_is_refused(guarded: Path, tmp_path: Path) -> None:
    """rows 1: `foreign_found_at` (the status's "another node's node.db") took `int()` of a
    `rollback_foreign` time of any type: a bare ValueError for TEXT; now StorageError."""
    path = _copy(guarded, tmp_path, "SELECT 1")
    with sqlite3.connect(path) as raw:
        raw.execute(
            "CREATE TABLE IF NOT EXISTS rollback_foreign (scope TEXT PRIMARY KEY, "
            "marked_at INTEGER NOT NULL, found_at INTEGER) WITHOUT ROWID"
        )
        raw.execute("INSERT INTO rollback_foreign VALUES ('policy', 1, 'soon')")
    raw.close()
    db = SqliteDatabase(path)
    try:
        with pytest.raises(StorageError, match="is damaged: its"):
            foreign_found_at(db)
    finally:
        db.close()


@pytest.mark.parametrize("file", ["node.db", "trace.db"])
def test_a_negative_schema_is_refused_before_any_migration(tmp_path: Path, file: str) -> None:
    """rows 2: a node.db or trace.db whose `user_version` is -1 ran the last migration, then
    the first, which failed on its tables ("table meta already exists"); now StorageError
    naming schema -1, before any migration ran (the file unchanged)."""
    path = tmp_path / file
    opened = SqliteDatabase(path) if file == "node.db" else open_trace_store(path)
    opened.close()
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version = -1")
    raw.close()
    tables = _row(path, "SELECT group_concat(name) FROM sqlite_master")
    with pytest.raises(StorageError, match="schema -1"):
        SqliteDatabase(path) if file == "node.db" else open_trace_store(path)
    assert _row(path, "PRAGMA user_version") == (-1,)
    assert _row(path, "SELECT group_concat(name) FROM sqlite_master") == tables


_IDENTITY = {
    **_damaged("identities", "history"),
    "identifier text": "UPDATE identities SET identifier = 'x' WHERE name = 'bot'",
    "changes real": "UPDATE identities SET changes = 1.5",
}


@pytest.mark.parametrize("what", sorted(_IDENTITY))
def test_a_damaged_local_identity_row_is_refused(what: str) -> None:
    """rows 3: a node listing its identities read a damaged row of one of them bare (TypeError,
    MemoryError; a REAL change count truncated); now StorageError saying node.db is damaged."""
    with troth.Node.open("acme") as acme:
        acme.identities.create("bot")
        path = acme._stored.db.path
    with sqlite3.connect(path) as raw:
        raw.execute(_IDENTITY[what])
    raw.close()
    with troth.Node.open("acme") as acme, pytest.raises(StorageError, match="is damaged: its"):
        acme.identities.all()


@pytest.mark.parametrize("value", ["'abc'", "1 << 50", "zeroblob(1 << 20)"])
def test_a_damaged_vault_check_value_is_refused_at_the_opening(value: str) -> None:
    """rows 4: a node whose vault key check value (`vault_meta`) is TEXT, an INTEGER or a BLOB
    of 1 MiB failed each opening bare (TypeError, MemoryError) or fetched it whole; now
    StorageError saying node.db is damaged, the row kept."""
    with troth.Node.open("acme") as acme:
        path = acme._stored.db.path
    with sqlite3.connect(path) as raw:
        raw.execute(f"UPDATE vault_meta SET value = {value} WHERE name = 'kek_check'")  # noqa: S608
    raw.close()
    kept = _row(path, "SELECT typeof(value), length(value) FROM vault_meta")
    with pytest.raises(StorageError, match="is damaged: its"):
        troth.Node.open("acme")
    assert _row(path, "SELECT typeof(value), length(value) FROM vault_meta") == kept


_HELD = "INSERT INTO held_credentials VALUES (x'01', x'02', {}, x'03', 5, 5)"
_FEED = "INSERT INTO feed_state VALUES (x'03', {}, {}, 5, 5)"
_CREDENTIAL_ROWS = {  # the row, how it is read
    "held chain text": (_HELD.format("'abc'"), "held"),
    "held chain integer": (_HELD.format("1 << 50"), "held"),
    "held chain huge": (_HELD.format("zeroblob(1 << 18)"), "held"),
    "feed head text": (_FEED.format("1", "'abc'"), "feed"),
    "feed head integer": (_FEED.format("1", "1 << 50"), "feed"),
    "feed count text": (_FEED.format("'one'", "x'00'"), "feed"),
    "authority text": ("INSERT INTO authority VALUES ('abc', 'acme', 5, 1, 5, 100)", "config"),
    "authority integer": ("INSERT INTO authority VALUES (1 << 50, 'acme', 5, 1, 5, 100)", "config"),
}


@pytest.mark.parametrize("what", sorted(_CREDENTIAL_ROWS))
def test_a_damaged_credential_row_is_refused(node_db: SqliteDatabase, what: str) -> None:
    """rows 5: a held chain, a feed's head or count, or the authority's identifier of another
    type was read bare (TypeError, MemoryError); now StorageError saying node.db is damaged."""
    row, read = _CREDENTIAL_ROWS[what]
    node_db.execute(row)
    with pytest.raises(StorageError, match="is damaged: its"):
        if read == "held":
            SqliteCredentialStore(node_db).list_held(b"\x01")
        elif read == "feed":
            SqliteCredentialStore(node_db).feed_state(b"\x03")
        else:
            SqliteAuthorityStore(node_db).get_config()


_BUNDLES = {  # the edit, the read
    "revision text": ("UPDATE gates_policy_bundles SET revision = 'x'", "stamps"),
    "revision blob": ("UPDATE gates_policy_bundles SET revision = x'01'", "revisions"),
    "digest text": ("UPDATE gates_policy_bundles SET digest = 'x'", "stamps"),
    "bundle integer": ("UPDATE gates_policy_bundles SET bundle = 1 << 50", "load"),
    "bundle huge": ("UPDATE gates_policy_bundles SET bundle = zeroblob(1 << 20)", "load"),
    "held back text": ("INSERT INTO gates_policy_held_back VALUES ('abc')", "held_back"),
    "older table's bundle integer": (
        "UPDATE gates_policy_bundles SET digest = NULL, bundle = 1 << 50",
        "__init__",
    ),
}


@pytest.mark.parametrize("what", sorted(_BUNDLES))
def test_a_damaged_policy_bundle_row_is_refused(guarded: Path, tmp_path: Path, what: str) -> None:
    """rows 6: a stored bundle's row of another type was read bare (ValueError, TypeError,
    MemoryError) by each check of the gate's table; now StorageError saying node.db is
    damaged."""
    edit, read = _BUNDLES[what]
    db = SqliteDatabase(_copy(guarded, tmp_path, "SELECT 1"))
    try:
        table = SqliteBundleTable(db)
        (authority,) = table.revisions()
        db.execute(edit)
        with pytest.raises(StorageError, match="is damaged: its"):
            if read == "__init__":  # an older troth's table gains its digests
                SqliteBundleTable(db)
            else:
                getattr(table, read)(*([authority] if read == "load" else []))
    finally:
        db.close()


@pytest.mark.parametrize("time", ["'x'", "5.5", "x'05'"])
@pytest.mark.parametrize("table", ["identity_restore_holds", "identity_restore_feeds"])
def test_a_damaged_identity_restore_row_is_refused(
    node_db: SqliteDatabase, table: str, time: str
) -> None:
    """rows 7: an identity's hold time or a restored copy's feed time of another type was read
    bare (ValueError) or, a REAL, truncated; now StorageError (damaged)."""
    node_db.execute(
        "INSERT INTO rollback_counters (scope, counter, restored_counter, restored_voided, "
        "restored_at) VALUES ('identity', 1, 0, 1, 5)"
    )
    key, column = ("identifier", "held_at") if "holds" in table else ("authority", "issued_at")
    node_db.execute(f"CREATE TABLE {table} ({key} BLOB PRIMARY KEY, {column} INTEGER NOT NULL)")
    node_db.execute(f"INSERT INTO {table} VALUES (x'01', {time})")  # noqa: S608
    with pytest.raises(StorageError, match="is damaged: its"):
        if table == "identity_restore_holds":
            RestoredIdentities(node_db).held(b"\x01")
        else:
            copy_feed_issued(node_db, b"\x01")


@pytest.mark.parametrize("time", ["'x'", "5.5", "x'05'"])
def test_a_damaged_restore_rotation_time_is_refused(node_db: SqliteDatabase, time: str) -> None:
    """rows 7: the time of the last rotation a restored copy lacks (`last_rotation`: the max of
    `identity_restore_rotated`, where a TEXT or BLOB row is the max) was read bare (ValueError)
    or truncated; now StorageError (damaged)."""
    node_db.execute("CREATE TABLE identity_restore_rotated (raised_at INTEGER NOT NULL)")
    node_db.execute(f"INSERT INTO identity_restore_rotated VALUES (4), ({time})")  # noqa: S608
    with pytest.raises(StorageError, match="is damaged: its"):
        last_rotation(node_db)


_VOUCHER = "INSERT INTO vouchers VALUES ({}, x'02', {}, x'03', 0, {}, {})"
_VOUCHERS = {  # the row, the read
    "identifier text": (_VOUCHER.format("'abc'", 5, "NULL", "NULL"), "vouchers"),
    "identifier integer": (_VOUCHER.format("1 << 50", 5, "NULL", "NULL"), "vouchers"),
    "expiry text": (_VOUCHER.format("x'01'", "'soon'", "NULL", "NULL"), "vouchers"),
    "since hash integer": (_VOUCHER.format("x'01'", 5, 0, "1 << 50"), "vouchers"),
    "lapsed identifier text": (_VOUCHER.format("'abc'", 5, "NULL", "NULL"), "lapsed"),
    "refuted hash text": ("INSERT INTO refuted_changes VALUES (x'01', 0, 'abc', 1)", "refuted"),
}


@pytest.mark.parametrize("what", sorted(_VOUCHERS))
def test_a_damaged_voucher_row_is_refused(node_db: SqliteDatabase, what: str) -> None:
    """rows 8: a voucher or refuted change row of another type was read bare (TypeError,
    ValueError, MemoryError); now StorageError saying node.db is damaged."""
    row, read = _VOUCHERS[what]
    node_db.execute(row)
    store = SqliteVoucherStore(node_db)
    with pytest.raises(StorageError, match="is damaged: its"):
        if read == "lapsed":
            store.lapsed(b"\x02", 10, 5)
        else:
            getattr(store, read)()


_REVOCATION = "INSERT INTO revocations VALUES (0, {}, {}, {}, x'01', {}, NULL, {}, {})"
_FEEDS = {  # the row (entry, head, kind, revoked_at, changes, change_hash), the read
    "tip head text": (_REVOCATION.format("x'00'", "'abc'", 1, 5, "NULL", "NULL"), "tip"),
    "head integer": (_REVOCATION.format("x'00'", "1 << 50", 1, 5, "NULL", "NULL"), "head"),
    "page entry integer": (_REVOCATION.format("1 << 50", "x'00'", 1, 5, "NULL", "NULL"), "page"),
    "page entry huge": (
        _REVOCATION.format("zeroblob(1 << 20)", "x'00'", 1, 5, "NULL", "NULL"),
        "page",
    ),
    "row kind text": (_REVOCATION.format("x'00'", "x'00'", "'one'", 5, "NULL", "NULL"), "rows"),
    "supersession hash text": (_REVOCATION.format("x'00'", "x'00'", 3, 5, 2, "'abc'"), "hash"),
    "supersession changes text": (
        _REVOCATION.format("x'00'", "x'00'", 3, 5, "'two'", "x'00'"),
        "latest",
    ),
    "charge time text": (
        "INSERT INTO revocations VALUES (0, x'00', x'00', 1, x'01', 'now', x'01', NULL, NULL)",
        "charged",
    ),
    "held feed target text": (
        "INSERT INTO feed_entries VALUES (x'02', 0, 1, 'abc', NULL, NULL)",
        "held feed",
    ),
}


def _feed_read(db: SqliteDatabase, read: str) -> object:
    authority = SqliteAuthorityStore(db)
    reads: dict[str, Callable[[], object]] = {
        "tip": authority.revocation_tip,
        "head": lambda: authority.head_at(1),
        "page": lambda: authority.revocation_page(0, 1 << 30, len),
        "rows": lambda: list(authority.revocation_rows(0)),
        "hash": lambda: authority.supersession_hash(b"\x01", 2),
        "latest": lambda: authority.latest_supersession(b"\x01"),
        "charged": lambda: authority.charged_since(b"\x01", 0),
        "held feed": lambda: list(SqliteCredentialStore(db).feed_rows(b"\x02", 0)),
    }
    return reads[read]()


@pytest.mark.parametrize("what", sorted(_FEEDS))
def test_a_damaged_revocation_feed_row_is_refused(node_db: SqliteDatabase, what: str) -> None:
    """rows 9: a revocation feed row of another type (an authority's or a held feed's) was read
    bare (TypeError, ValueError, MemoryError) or fetched past what an entry takes; now
    StorageError saying node.db is damaged."""
    row, read = _FEEDS[what]
    node_db.execute(row)
    with pytest.raises(StorageError, match="is damaged: its"):
        _feed_read(node_db, read)


_PURPOSE = {
    **_damaged("purpose_keys", "attestation"),
    "handle blob": "UPDATE purpose_keys SET key_handle = x'00'",
    "handle of nuls": "UPDATE purpose_keys SET key_handle = CAST(zeroblob(1 << 20) AS TEXT)",
}


@pytest.mark.parametrize("what", sorted(_PURPOSE))
def test_a_damaged_purpose_key_row_blocks_no_compromised_rotation(what: str) -> None:
    """rows 11: an identity's purpose key row made TEXT / INTEGER / 1 MiB (attestation) or a
    BLOB (handle) failed its compromised rotation bare, for good; now the rotation commits
    (the row gone, its key not retired: nothing shows it the identity's), and a channel's read
    of such a row is StorageError (damaged)."""
    init_node("n")
    with open_node("n") as node:
        service = node.identities
        local = service.create(now=NOW, name="a")
        service.purpose_key("a", KeyPurpose.SECURE_CHANNEL, now=NOW)
        node.db.execute(_PURPOSE[what])
        with pytest.raises(StorageError, match="is damaged: its"):
            service.store.get_purpose_key(local.identifier.digest, int(KeyPurpose.SECURE_CHANNEL))
        rotated = service.rotate("a", now=NOW + 10, compromised=True)
        assert rotated.identity.changes != local.identity.changes
        assert node.db.fetch_all("SELECT * FROM purpose_keys") == []
