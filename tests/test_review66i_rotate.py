"""Review 66i (performance of identity.rotate, benchmarks/README.md "Pass 66i"): the rollback
guard's raise time moved into the count's row (schema 19).

rotate 1. A rotation's dated count kept its time in a table of its own (`rollback_raised`,
   review 60n): one more statement a rotation (12 -> 11) and, for every rotation dated a
   second or more after the last (every real one; the benchmark's ~250 a second mostly are
   not), one more B-tree page in its commit (5.93 -> 4.93 WAL pages). The time is now
   `rollback_counters.raised_at`, set by the count's own UPDATE; the migration moves each
   scope's kept time there and drops the table. Held here: the migration of a node.db in the
   layout the code before it left (the column absent, the table holding the time), with every
   other table, and every read path of the histories, unchanged byte for byte; a rotation
   killed at any statement of its transaction is all or nothing (the new change, the retired
   key, the count and its time); an old troth's table met after the migration is still read.
   (The failing measure on main: test_review61f_rotate's strict xfail, now a passing test.)
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from tests.support.killed import KILLS, killed_after
from troth.faults import CRASH_EXIT_CODE
from troth.node import init_node, open_node
from troth.storage import SqliteDatabase
from troth.storage.raised_times import SCHEMA
from troth.storage.rollback import RollbackGuard
from troth.storage.sqlite import _MIGRATIONS

NOW = 1_790_000_000
LEGACY_TIME = 4_000_000_000  # later than any clock here: only the old table holds it


def _node(home: Path) -> tuple[Path, bytes]:
    """A node with a rotated identity (dated counts made), another never rotated, and a known
    history imported from elsewhere; node.db's path and the imported identity's digest."""
    init_node("n", home=home)
    with open_node("n", home=home) as node:
        ids = node.identities
        ids.create(name="a", now=NOW)
        ids.create(name="b", now=NOW)
        for step in range(3):
            ids.rotate("a", now=NOW + 1 + step)
        init_node("m", home=home / "other")
        with open_node("m", home=home / "other") as other:
            far = other.identities.create(name="far", now=NOW)
            other.identities.rotate("far", now=NOW + 1)
            history = other.identities.export("far")
        ids.import_history(history, now=NOW + 5)
        path = Path(str(node.db.path))
    return path, far.identity.identifier.digest


def _as_before(path: Path) -> None:
    """node.db in the layout the code before schema 19 left: no `raised_at` column, the time in
    `rollback_raised` (as review 60n's bump made it), `user_version` 18."""
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        assert version == len(_MIGRATIONS)
        conn.execute("ALTER TABLE rollback_counters DROP COLUMN raised_at")
        conn.execute(
            "CREATE TABLE rollback_raised (scope TEXT PRIMARY KEY, raised_at INTEGER NOT NULL) "
            "WITHOUT ROWID"
        )
        conn.execute("INSERT INTO rollback_raised VALUES ('identity', ?)", (LEGACY_TIME,))
        conn.execute(f"PRAGMA user_version = {SCHEMA - 1}")
    conn.close()


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table but the counts' (and the old time's), in key order."""
    with sqlite3.connect(path) as conn:
        names = [
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] not in ("rollback_counters", "rollback_raised", "sqlite_sequence")
        ]
        rows = {n: sorted(conn.execute(f"SELECT * FROM {n}").fetchall()) for n in names}  # noqa: S608
    conn.close()
    return rows


def _reads(home: Path, known: bytes) -> list[object]:
    """What the read paths answer: the local histories (export, get, windows, newest change),
    the known copy's stored changes and history, and the wallet's feeds (none here)."""
    with open_node("n", home=home) as node:
        ids = node.identities
        out: list[object] = []
        for name in ("a", "b"):
            local = ids.get(name, now=NOW + 10)
            digest = local.identity.identifier.digest
            out += [ids.export(name), local.identity.history, str(local.primary_key)]
            out += [ids.history_window(digest, 0, local.identity.current.index)]
            out += [ids.newest_changes([digest])]
        out += [ids.newest_changes([known]), ids.store.get_history(known)]
        return out


def test_the_migration_moves_the_time_and_changes_nothing_else(tmp_path: Path) -> None:
    path, known = _node(tmp_path)
    _as_before(path)
    tables, reads = _tables(path), _reads_raw(path)
    db = SqliteDatabase(path, migrations=_MIGRATIONS[:SCHEMA])  # migrates (this one only)
    assert db.fetch_one("PRAGMA user_version")[0] == SCHEMA
    assert db.fetch_one("SELECT 1 FROM sqlite_master WHERE name = 'rollback_raised'") is None
    row = db.fetch_one("SELECT counter, raised_at FROM rollback_counters WHERE scope = 'identity'")
    assert row[:] == (3, LEGACY_TIME)
    db.close()
    assert _tables(path) == tables
    assert _reads_raw(path) == reads
    first = _reads(tmp_path, known)
    assert first == _reads(tmp_path, known)  # reads write nothing that changes them
    with open_node("n", home=tmp_path) as node:
        assert node.identities.check_restored(NOW + 10) is None  # the guard agrees
        node.identities.rotate("a", now=NOW + 20)
    db = SqliteDatabase(path)
    row = db.fetch_one("SELECT counter, raised_at FROM rollback_counters WHERE scope = 'identity'")
    assert row[:] == (4, LEGACY_TIME)  # never lowered
    db.close()


def _reads_raw(path: Path) -> list[bytes]:
    """The histories node.db holds, as stored (the identities' rows)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT identifier, history FROM identities ORDER BY 1").fetchall()
    conn.close()
    return [bytes(r[0]) + bytes(r[1]) for r in rows]


def test_the_read_paths_answer_the_same_across_the_migration(tmp_path: Path) -> None:
    path, known = _node(tmp_path)
    current = _reads(tmp_path, known)
    _as_before(path)
    assert _reads(tmp_path, known) == current  # opened: migrated, then read


def test_an_old_troths_time_written_after_the_migration_is_read(tmp_path: Path) -> None:
    """A troth from before schema 19 still running makes `rollback_raised` again at its next
    dated count: crash window 2 (the count ahead of the guard) raises the guard with the later
    of the two times."""
    path, _ = _node(tmp_path)
    db = SqliteDatabase(path)
    db.execute(
        "CREATE TABLE rollback_raised (scope TEXT PRIMARY KEY, raised_at INTEGER NOT NULL) "
        "WITHOUT ROWID"
    )
    db.execute("INSERT INTO rollback_raised VALUES ('identity', ?)", (LEGACY_TIME,))
    db.execute("UPDATE rollback_counters SET counter = counter + 1 WHERE scope = 'identity'")
    guard = RollbackGuard(db, "identity")
    assert not guard.behind()  # ahead: raised
    assert guard.raised_at() == LEGACY_TIME
    db.close()


def _state(path: Path) -> tuple[int, ...]:
    with sqlite3.connect(path) as conn:
        changes = conn.execute("SELECT changes FROM identities WHERE name = 'a'").fetchone()
        keys = conn.execute("SELECT count(*) FROM vault_keys").fetchone()
        count = conn.execute(
            "SELECT counter, raised_at IS NOT NULL FROM rollback_counters WHERE scope = 'identity'"
        ).fetchone()
    conn.close()
    return tuple(int(v) for v in (*changes, *keys, *count))


def test_a_rotation_killed_at_any_statement_is_all_or_nothing(tmp_path: Path) -> None:
    """Killed as each statement of the rotation's transaction starts (BEGIN to COMMIT: none of
    it) and after the commit (all of it: the new change, the retired key gone, the count and
    its time); the node opens, finds no restore and rotates after either."""
    path, _ = _node(tmp_path)
    home = path.parent
    saved = tmp_path / "saved"
    shutil.copytree(home, saved)
    before = _state(path)

    def rotate() -> None:
        with open_node("n", home=tmp_path) as node:
            node.identities.rotate("a", now=NOW + 30)

    assert killed_after(0, rotate) == 0
    total, after = KILLS[-1], _state(path)
    assert after[0] == before[0] + 1
    assert after[2] == before[2] + 1
    # the rotation's 11 statements are the child's last (its COMMIT the last of all), then
    # killed once its commit is done, before the guard's raise
    points: list[tuple[int, str | None]] = [(n, None) for n in range(total - 12, total + 1)]
    points.append((0, "identity.rotate.after-commit"))
    for point, crash_at in points:
        shutil.rmtree(home)
        shutil.copytree(saved, home)
        assert killed_after(point, rotate, crash_at) == CRASH_EXIT_CODE
        assert _state(path) == (before if crash_at is None else after), point
        with open_node("n", home=tmp_path) as node:
            assert node.identities.check_restored(NOW + 40) is None, point
            node.identities.rotate("a", now=NOW + 40)
