"""Where a node keeps each authority's last good policy bundle: `BundleTable`, in memory or
in the node's SQLite database (troth.gates.store's module docstring, "Persistence", says what
the tables promise and why; split from troth.gates.store, review 68j)."""

from __future__ import annotations

import threading
import time
from typing import Final, Protocol

from troth.crypto import sha256
from troth.faults import crash_point
from troth.limits import MAX_POLICY_BUNDLE_BYTES
from troth.storage.rollback import Restored, RollbackGuard
from troth.storage.row_types import blob_sql, stored_blob, stored_whole, whole_sql
from troth.storage.sqlite import SqliteDatabase

__all__ = ["TABLES", "BundleTable", "MemoryBundleTable", "SqliteBundleTable", "Stamp"]

Stamp = tuple[int, bytes]
"""What a table says of a stored bundle without reading it: its revision and digest."""


class BundleTable(Protocol):
    """Where a node keeps the last good bundle of each authority."""

    def save_if_newer(self, authority: bytes, revision: int, data: bytes, now: int) -> bool:
        """Store `data` unless a bundle of `revision` or higher is stored; whether it was."""
        ...

    def replace(self, authority: bytes, held: bytes, revision: int, data: bytes, now: int) -> bool:
        """Store `data` in place of `held`, whatever their revisions, if `held` is still the
        stored bundle (one compare-and-set: of two replacements of `held`, one wins); whether
        it was. Only for a held bundle no longer in force (`BundleStore.accept`)."""
        ...

    def revisions(self) -> dict[bytes, int]:
        """The stored revision of each authority."""
        ...

    def stamps(self) -> dict[bytes, Stamp]:
        """The stored revision and digest of each authority's bundle (cheap: read at every
        decision of a gate that shares the table with another process)."""
        ...

    def load(self, authority: bytes) -> bytes | None:
        """The stored bundle of `authority`, if any."""
        ...

    def held_back(self) -> frozenset[bytes]:
        """The authorities whose stored bundle came back with a restored copy of the table and
        decides nothing until confirmed (module docstring)."""
        ...

    def confirm(self, authority: bytes) -> bool:
        """Let `authority`'s held-back bundle decide again; whether it was held back."""
        ...


class MemoryBundleTable:
    """A BundleTable in memory (agents without a node, tests)."""

    def __init__(self) -> None:
        self._rows: dict[bytes, tuple[int, bytes, bytes]] = {}
        self._lock = threading.Lock()

    def save_if_newer(self, authority: bytes, revision: int, data: bytes, now: int) -> bool:
        with self._lock:
            held = self._rows.get(authority)
            if held is not None and held[0] >= revision:
                return False
            self._rows[authority] = (revision, data, sha256(data))
            return True

    def replace(self, authority: bytes, held: bytes, revision: int, data: bytes, now: int) -> bool:
        with self._lock:
            row = self._rows.get(authority)
            if row is None or row[1] != held:
                return False
            self._rows[authority] = (revision, data, sha256(data))
            return True

    def revisions(self) -> dict[bytes, int]:
        return {authority: row[0] for authority, row in list(self._rows.items())}

    def stamps(self) -> dict[bytes, Stamp]:
        return {authority: (row[0], row[2]) for authority, row in list(self._rows.items())}

    def load(self, authority: bytes) -> bytes | None:
        row = self._rows.get(authority)
        return None if row is None else row[1]

    def held_back(self) -> frozenset[bytes]:
        return frozenset()  # memory is never restored from a copy

    def confirm(self, authority: bytes) -> bool:
        return False


TABLES: Final = (
    "CREATE TABLE IF NOT EXISTS gates_policy_bundles (authority BLOB PRIMARY KEY, "
    "revision INTEGER NOT NULL, bundle BLOB NOT NULL, stored_at INTEGER NOT NULL, "
    "digest BLOB)",
    "CREATE TABLE IF NOT EXISTS gates_policy_held_back (authority BLOB PRIMARY KEY) WITHOUT ROWID",
)
"""The gates' tables in node.db, made on first use (compared on a restore found:
troth.storage.lazy_tables)."""
_ANY_BUNDLE = "SELECT 1 FROM gates_policy_bundles LIMIT 1"
_KEY_BYTES = 64  # an authority's identifier, a bundle's digest: 32 bytes
_AUTHORITY = blob_sql("authority", _KEY_BYTES)
_DIGEST = blob_sql("coalesce(digest, x'')", _KEY_BYTES)  # NULL: an older troth's, none yet
_STAMPS = (
    f"SELECT {_AUTHORITY}, {whole_sql('revision')}, {_DIGEST} "  # noqa: S608
    "FROM gates_policy_bundles"
)
_HELD_BACK = f"SELECT {_AUTHORITY} FROM gates_policy_held_back"  # noqa: S608
_BUNDLE = blob_sql("bundle", MAX_POLICY_BUNDLE_BYTES)
_LOAD = f"SELECT {_BUNDLE} FROM gates_policy_bundles WHERE authority = ?"  # noqa: S608
"""The stored bundles' rows, read typed and bounded (`troth.storage.row_types`; review 71c,
rows 6: `int()` of a TEXT revision failed every reload bare, `bytes()` of an INTEGER bundle n
made n bytes, also when an older troth's table gains its digests)."""


class SqliteBundleTable:
    """A BundleTable in the node's SQLite database (its own table, made on first use; a
    table an older troth made gains its `digest` column). Opened, it checks the rollback
    guard's `policy` scope (`restored`: the restore found then, if any; module docstring)."""

    def __init__(self, db: SqliteDatabase, *, now: int | None = None) -> None:
        self.db = db
        for table in TABLES:
            self.db.execute(table)
        if not self._current():
            with self.db.transaction():
                if not self._current():
                    self._add_digests()
        self._guard = RollbackGuard(db, "policy")
        self.restored: Restored | None = self._guard.check(
            int(time.time()) if now is None else now, self._hold_back
        )
        if not self._guard.armed() and self.db.fetch_one(_ANY_BUNDLE) is not None:
            # bundles an older troth stored, never counted: armed now, so a copy taken from
            # here on and put back with its guard deleted is found (review 54t, rollback 1)
            with self.db.transaction():
                self._guard.arm()

    def _hold_back(self) -> int:
        """A restored copy found: hold back every bundle it holds (module docstring)."""
        return int(
            self.db.execute(
                "INSERT INTO gates_policy_held_back (authority) SELECT authority FROM "
                "gates_policy_bundles WHERE true ON CONFLICT (authority) DO NOTHING"
            ).rowcount
        )

    def _stored(self, authority: bytes) -> None:
        """In the transaction that stored a bundle of `authority`: count it in the rollback
        guard (a copy from before it is found), and let it decide."""
        self._guard.bump()
        self.db.execute("DELETE FROM gates_policy_held_back WHERE authority = ?", (authority,))

    def held_back(self) -> frozenset[bytes]:
        rows = self.db.fetch_all(_HELD_BACK)
        return frozenset(self._key(row[0], "held-back authority") for row in rows)

    def _key(self, value: object, what: str) -> bytes:
        return stored_blob(value, what, self.db.path, _KEY_BYTES)

    def confirm(self, authority: bytes) -> bool:
        with self.db.transaction():
            cursor = self.db.execute(
                "DELETE FROM gates_policy_held_back WHERE authority = ?", (authority,)
            )
        return cursor.rowcount == 1

    def _current(self) -> bool:
        """Whether the table has its digest column, filled in."""
        columns = {row[1] for row in self.db.fetch_all("PRAGMA table_info(gates_policy_bundles)")}
        return "digest" in columns and not self.db.fetch_all(
            "SELECT 1 FROM gates_policy_bundles WHERE digest IS NULL LIMIT 1"
        )

    def _add_digests(self) -> None:
        columns = {row[1] for row in self.db.fetch_all("PRAGMA table_info(gates_policy_bundles)")}
        if "digest" not in columns:
            self.db.execute("ALTER TABLE gates_policy_bundles ADD COLUMN digest BLOB")
        rows = self.db.fetch_all(
            f"SELECT authority, {_BUNDLE} FROM gates_policy_bundles WHERE digest IS NULL"  # noqa: S608
        )
        for authority, data in rows:
            bundle = stored_blob(data, "bundle", self.db.path, MAX_POLICY_BUNDLE_BYTES)
            self.db.execute(
                "UPDATE gates_policy_bundles SET digest = ? WHERE authority = ?",
                (sha256(bundle), authority),
            )

    def save_if_newer(self, authority: bytes, revision: int, data: bytes, now: int) -> bool:
        with self.db.transaction():
            cursor = self.db.execute(
                "INSERT INTO gates_policy_bundles (authority, revision, bundle, stored_at, "
                "digest) VALUES (?, ?, ?, ?, ?) ON CONFLICT (authority) DO UPDATE SET "
                "revision = excluded.revision, bundle = excluded.bundle, "
                "stored_at = excluded.stored_at, digest = excluded.digest "
                "WHERE excluded.revision > revision",
                (authority, revision, data, now, sha256(data)),
            )
            if cursor.rowcount == 1:
                self._stored(authority)
            crash_point("node.policy-bundle.before-commit")
        crash_point("node.policy-bundle.after-commit")
        return cursor.rowcount == 1

    def replace(self, authority: bytes, held: bytes, revision: int, data: bytes, now: int) -> bool:
        with self.db.transaction():
            cursor = self.db.execute(  # compared by the bytes: a digest column is only a hint
                "UPDATE gates_policy_bundles SET revision = ?, bundle = ?, stored_at = ?, "
                "digest = ? WHERE authority = ? AND bundle = ?",
                (revision, data, now, sha256(data), authority, held),
            )
            if cursor.rowcount == 1:
                self._stored(authority)
            crash_point("node.policy-bundle.before-commit")
        crash_point("node.policy-bundle.after-commit")
        return cursor.rowcount == 1

    def revisions(self) -> dict[bytes, int]:
        return {authority: revision for authority, (revision, _) in self.stamps().items()}

    def stamps(self) -> dict[bytes, Stamp]:
        path = self.db.path
        return {
            self._key(a, "bundle's authority"): (
                stored_whole(r, "bundle's revision", path),
                self._key(d, "bundle's digest"),
            )
            for a, r, d in self.db.fetch_all(_STAMPS)
        }

    def load(self, authority: bytes) -> bytes | None:
        rows = self.db.fetch_all(_LOAD, (authority,))
        path = self.db.path
        return stored_blob(rows[0][0], "bundle", path, MAX_POLICY_BUNDLE_BYTES) if rows else None
