"""The rollback guard: a record of node.db's irreversible writes that a restored copy of node.db
cannot roll back (review 51d, rollback 1-2; docs/storage.md, "Rollback guard"; its file:
docs/formats.md, "Rollback guard").

Each scope (`SCOPES`: an authority's ticket redemptions, member removals and feed entries, a
broker's lease revocations, a node's policy bundles stored: review 54p, rollback 1; a local
identity's rotations: review 57i, restore 1, troth.identity.restored) counts its
irreversible writes in node.db (`rollback_counters`), one more in the transaction of each write
(`RollbackGuard.bump`), and the guard file beside it (`node.db.guard`) is raised to the
committed count after the commit, under `node.db.guard.lock` (flock), never lowered; a process
keeps the lock file and the guard open between raises, the guard's path looked up again under
the lock each time (troth.storage.guard_file: review 58a). The file is two fixed slots, each
a numbered, checksummed record of every scope's count; a raise writes the slot not holding the
newest record in place, so a torn write leaves the record before it the newest. It is as
durable as the writes it counts: with `durability = full` the slot is fdatasynced (node.db's
commits are), with `normal` not (nor are they: both survive a crash of
the process, and a power loss may undo the last of either). An fsync per redemption cost ~5 ms
here (it flushes the WAL too: enroll.1000 took twice as long), a new file's fsync, rename and
directory fsync ~8.

A scope's count may carry when it was last raised (version 3: review 60a, release 1): a
`bump` given a time (`identity`'s rotations: troth.identity.restored) writes it beside the
count at the raise, never lowered (`raised_at`), so a restore found later, whatever the clock
says then, knows the copy is older than that time.

A store whose count is behind its guard's, or with an entry of its scope (counted, or armed
at 0 by the first ticket or lease: `RollbackGuard.arm`, review 52c) and no readable guard or
no entry of the scope in it, is a restored copy (`RollbackGuard.check`): the scope's owner
fails closed for what the copy cannot know, and the count is raised to the guard's in that
same transaction, so the restore is found (logged, recorded for `troth node status`) once.

Crash windows (a process killed, SIGKILL, or a power loss), in the order of a bump's writes:
1. before the write commits: neither moved (the first bump of a scope writes its entry, at the
   store's count, before it: window 2 then finds an entry, never none);
2. after the commit, before the slot is written, or while it is (torn): the store is ahead of
   its guard, which is what a current store may be and a restored copy never is (a copy's
   count is at most the guard's once the copy's own writes were published); `check` raises
   the guard to it, with the raise time node.db keeps (`rollback_raised`: review 60n, crash 1);
3. after the slot's write: current.
`check` reads the guard first, then the count: the count only grows and the guard is raised
only to a count committed before, so a current store never reads as behind.

Which node.db (review 64j, rollback 1; troth.storage.store_id): node.db's store id is made in
the transaction of its first guarded write, and the guard is bound to it (version 4) by the
first raise after that commit, never one before it (window 1 then leaves a guard bound to an id
node.db lost). Killed after the commit, before the binding: node.db names an id its guard does
not, which the next check binds (as window 2 raises a count). A node.db whose id is not the
guard's is another node's: the first owner's check marks every other scope either holds an
entry of, takes the guard's id and fails closed, in one transaction (killed before its commit:
found again); each marked scope is found by its owner, once. The guard's id never changes. A
node.db with no id is judged by its counts, and takes the guard's id at its first write.

A power loss with `durability = normal` may undo the last commits and the guard's last raises:
a store left behind its guard is treated as restored, rightly so (the redemption or revocation
it lost is undone exactly as a restored copy's would be); a guard left behind its store is
raised at the next open; both undone are node.db's older state, as `normal` allows.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import sqlite3
import stat
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, StorageError
from troth.faults import crash_point
from troth.storage.guard_codec import (
    _OWN_SCOPES,
    GUARD_BOUND_SLOT_BYTES,
    GUARD_BOUND_VERSION,
    GUARD_RAISED_VERSION,
    GUARD_SLOT_BYTES,
    GUARD_TYPE,
    GUARD_VERSION,
    SCOPES,
    V1_SCOPES,
    _carried,
    _entries,
    _framed,
    _guard_state,
    _State,
    _version,
    decode_guard,
    decode_raised,
    decode_slot,
    decode_store,
    encode_guard,
    encode_slot,
)
from troth.storage.guard_file import Evicted, GuardFiles, guard_files
from troth.storage.peers import Turns
from troth.storage.planted import planted
from troth.storage.raised_times import (
    COUNT,
    COUNT_DATED,
    COUNT_READ,
    FIRST_COUNT,
    FIRST_COUNT_DATED,
    MISSING,
    TIME_READ,
    moved_in_place,
)
from troth.storage.row_types import stored_whole, whole_sql
from troth.storage.sqlite import SqliteDatabase
from troth.storage.store_id import (
    adopt_store_id,
    foreign_found,
    foreign_found_at,
    foreign_pending,
    made_store_id,
    mark_foreign,
    read_store_id,
)

__all__ = [
    "GUARD_BOUND_SLOT_BYTES",
    "GUARD_BOUND_VERSION",
    "GUARD_RAISED_VERSION",
    "GUARD_SLOT_BYTES",
    "GUARD_TYPE",
    "GUARD_VERSION",
    "SCOPES",
    "V1_SCOPES",
    "Restored",
    "RollbackGuard",
    "decode_guard",
    "decode_raised",
    "decode_slot",
    "decode_store",
    "encode_guard",
    "encode_slot",
    "guard_path",
    "read_guard",
    "restored_rows",
]


_log = logging.getLogger(__name__)


def guard_path(db_path: Path) -> Path:
    """The guard file of the database at `db_path`: `<db>.guard` beside it."""
    return db_path.with_name(f"{db_path.name}.guard")


def _read_state(path: Path) -> _State | None:
    """`decode_guard` of the file at `path`; None when there is none or it cannot be read as
    one (anything but a regular file, a symbolic link, damaged bytes). A guard this process
    may not read is a StorageError (it cannot judge)."""
    return _state_of(_read_bytes(path))


def _read_bytes(path: Path) -> bytes | None:
    """The bytes of the guard file at `path` (at most one over its size), None when there is
    none or it is not a regular file (a symbolic link: O_NOFOLLOW; a socket)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            return None  # a symbolic link (O_NOFOLLOW), a socket: no guard
        raise StorageError(f"cannot read {path}: {exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limits.MAX_ROLLBACK_GUARD_BOUND_BYTES + 1)
    finally:
        os.close(fd)


# Guards decoded (or written) by this process, by their bytes: `decode_guard` is a pure
# function of them, and a rotation (review 57i's identity scope) reads the guard it wrote the
# rotation before; decoding both slots anew each time cost more than its own transaction.
_Known = tuple[int, tuple[tuple[str, int], ...], tuple[tuple[str, int], ...], bytes | None]
_KNOWN_GUARDS: dict[bytes, _Known | None] = {}
_COUNT_OF: Final = f"SELECT {whole_sql('counter')} FROM rollback_counters WHERE scope = ?"  # noqa: S608
"""A scope's count, typed (review 71c, rows 1: `int()` of a TEXT one failed bare)."""
_RESTORED: Final = (
    "SELECT scope, CASE WHEN restored_guard IS NULL THEN NULL ELSE "  # noqa: S608
    f"{whole_sql('restored_guard')} END, {whole_sql('restored_counter')}, "
    f"{whole_sql('restored_voided')}, {whole_sql('restored_at')} "
    "FROM rollback_counters WHERE restored_at IS NOT NULL ORDER BY scope"
)
"""Each scope's last restore found (`restored_rows`), typed as `_COUNT_OF`."""
_KNOWN_GUARDS_KEPT: Final = 8


def _state_of(data: bytes | None) -> _State | None:
    """`decode_guard` of `data` (None: not a guard), from `_KNOWN_GUARDS` when known (the
    guard a raise of this process wrote last compared first: hashing its bytes for the look-up,
    and again to keep what it wrote, cost a raise ~2.5 k instructions, review 59c, rotate 4).
    Fresh dicts of the counts and raise times each time (the caller's to change)."""
    if data is None:
        return None
    last = _last_known
    if data == last[0]:
        known = last[1]
    else:
        try:
            known = _KNOWN_GUARDS[data]
        except KeyError:
            try:
                seq, counts, raised, store = _guard_state(data)
                known = (seq, tuple(counts.items()), tuple(raised.items()), store)
            except DecodeError:
                known = None
            _know(data, known)
    return None if known is None else (known[0], dict(known[1]), dict(known[2]), known[3])


def _know(data: bytes, state: _Known | None) -> None:
    known = _KNOWN_GUARDS
    if len(known) >= _KNOWN_GUARDS_KEPT:
        # the oldest key read, then taken out: another thread's `_know` (another node.db's
        # guard, in a turn of its own) may take it, or change the dict, in between (review
        # 59l, guard 1: a `del` of it was a KeyError out of an honest rotation's commit)
        with contextlib.suppress(RuntimeError, StopIteration):
            known.pop(next(iter(known)), None)
    known[data] = state


def _know_written(data: bytes, state: _Known) -> None:
    """`_know` of the guard a raise of this process just wrote, compared first at the next
    (`_state_of`); one assignment, so another thread reads the pair whole."""
    global _last_known
    _last_known = (data, state)
    _know(data, state)


_last_known: tuple[bytes, _Known | None] = (b"", None)


def read_guard(path: Path) -> dict[str, int] | None:
    """The counts of the guard file at `path`; None when there is none or it cannot be read
    as one: every such guard is judged as missing, which fails closed for a store that
    armed or counted its scope (module docstring)."""
    state = _read_state(path)
    return None if state is None else state[1]


def _create_guard(
    path: Path,
    counters: Mapping[str, int],
    raised: Mapping[str, int],
    store: bytes | None = None,
    seq: int = 1,
) -> None:
    """Make the guard at `path` (none, or none readable; or one of version 1 to 3 bound to
    `store` now: version 4's slots are larger, review 64j, rollback 1) holding record `seq`: a
    new temporary file beside it (O_EXCL, 0600), fsynced, renamed over `path` (a symbolic
    link there is replaced), the directory fsynced. Once per node.db, and once more when it is
    bound, unless the guard is taken away."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.write(fd, encode_guard(counters, seq, raised, store))
            os.fsync(fd)
        finally:
            os.close(fd)
        crash_point("storage.rollback-guard.before-write")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    crash_point("storage.rollback-guard.after-write")
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True, slots=True)
class Restored:
    """A restored copy found by `RollbackGuard.check`: its scope, the store's count when found,
    the guard's (None: no readable guard, or no entry of the scope), what the scope's owner
    failed closed on (tickets voided, leases revoked) and when; `another`: node.db was not
    the one the guard names (another node's, or a copy from before its store id was made:
    review 64j, rollback 1)."""

    scope: str
    counter: int
    guard: int | None
    voided: int
    at: int
    another: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "scope": self.scope,
            "counter": self.counter,
            "guard": self.guard,
            "voided": self.voided,
            "at": self.at,
            "another_node": self.another,
        }


class RollbackGuard:
    """One scope's count of irreversible writes in `db` and in its guard file (module
    docstring)."""

    def __init__(self, db: SqliteDatabase, scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown rollback scope {scope!r}")
        self._db = db
        self.scope = scope
        self.path = guard_path(db.path)
        self._lock_path = self.path.with_name(f"{self.path.name}.lock")
        self._armed = False  # the store's entry of the scope seen committed (`arm`)
        self._bumped: int | None = None  # the count the last `bump` wrote (`_publish`)
        self._bumped_at: int | None = None  # the time the last `bump` was given (`_publish`)
        self._in_guard = False  # the scope's entry seen in the guard (`bump` reads it once)
        self._store: bytes | None = None  # node.db's store id, known committed (a raise binds)
        self._store_pending: bytes | None = None  # read or made in a transaction not committed

    def counter(self) -> int:
        """The store's count of this scope's irreversible writes."""
        row = self._row()
        return 0 if row is None else row

    def armed(self) -> bool:
        """Whether the store has an entry of this scope (armed or counted: `arm`)."""
        return self._row() is not None

    def _row(self) -> int | None:
        """The store's count of this scope; None: no entry (never armed nor counted)."""
        row = self._db.fetch_one(_COUNT_OF, (self.scope,))
        return None if row is None else self._count(row[0])

    def _count(self, value: object) -> int:
        """A count read by `whole_sql`; StorageError when node.db holds another type."""
        return stored_whole(value, f"count of {self.scope}", self._db.path)

    def arm(self) -> None:
        """Inside the transaction that first gives a copy of the store something to replay (a
        ticket made, a lease issued): the scope's entry in the store, at 0, and in the guard,
        written before the commit (as a first `bump`'s), so a copy taken since, restored
        with its guard deleted, is found though it counted nothing (review 52c, rollback 4:
        it read as a fresh store). Reads a row once per object after the first commit."""
        if self._armed:
            return
        if not self._db.in_transaction:
            raise StorageError("a rollback guard is armed inside its transaction")
        if self._row() is None:
            guard = read_guard(self.path)
            if guard is None or self.scope not in guard:
                self._raise_guard(0)
            self._db.execute(
                "INSERT INTO rollback_counters (scope, counter) VALUES (?, 0) "
                "ON CONFLICT (scope) DO NOTHING",
                (self.scope,),
            )
            if self._store is None:  # the guard bound to it once committed (`_publish`)
                self._know_store(made_store_id(self._db, self._bound()))
                if self._db.after_commit_once(self._publish):  # no bump in this transaction:
                    self._bumped = self._bumped_at = None  # a rolled back one's (64t rollback 1)
        self._db.after_commit_once(self._armed_now)

    def _armed_now(self) -> None:
        self._armed = True

    def _know_store(self, store: bytes) -> None:
        """`store` as node.db's id once this transaction commits (never before: a guard bound
        to an id its node.db lost with a rollback would read as another node's)."""
        self._store_pending = store
        self._db.after_commit_once(self._store_committed)

    def _bound(self) -> bytes | None:
        """The store id the guard names (version 4), None: none, or no readable guard."""
        state = _read_state(self.path)
        return None if state is None else state[3]

    def _store_committed(self) -> None:
        self._store = self._store_pending

    def bump(self, at: int | None = None) -> None:
        """Count one irreversible write, inside the transaction that makes it; the guard is
        raised once that transaction commits (once for all the bumps of a transaction), with
        `at` (when the write was made), if given, as when the scope was raised (`raised_at`).
        The first bump of a scope writes its entry, at the store's count, before the commit."""
        if not self._db.in_transaction:
            raise StorageError("a rollback guard counts a write inside its transaction")
        if self._store is None:  # node.db's first guarded write makes its id (review 64j)
            self._know_store(made_store_id(self._db, self._bound()))
        if self._db.after_commit_once(self._publish) and not self._in_guard:
            guard = read_guard(self.path)
            if guard is None or self.scope not in guard:
                self._raise_guard(self.counter())  # crash window 1 (module docstring)
            self._in_guard = True  # entries are never taken out of a guard
        # an UPDATE, then the count read: ~2 us where an UPSERT ... RETURNING took ~7.5 (its
        # RETURNING fills a table of its own; review 59c, rotate 3). The write lock is held:
        # the count read is the one this transaction wrote. A dated bump's time is set by the
        # same UPDATE, in the count's row (review 66i, rotate 1: its own table wrote one more
        # page and statement a rotation; the time kept for crash window 2, review 60n)
        db, scope = self._db, self.scope
        self._bumped_at = at
        if self._counted(COUNT if at is None else COUNT_DATED, at):
            (row,) = db.run_rows(_COUNT_OF, (scope,))
            self._bumped = self._count(row[0])
        else:  # the scope's first count
            self._counted(FIRST_COUNT if at is None else FIRST_COUNT_DATED, at)
            self._bumped = 1

    def _counted(self, statement: str, at: int | None) -> int:
        """Run the count's `statement` (the rows it changed); on a node.db without the count's
        `raised_at` (a copy from before review 66i put in place under this process, whose
        migrations ran on the file it replaced) the column is added, as the migration does, in
        this transaction, and the statement run again. Any other failure is raised."""
        params = (self.scope,) if at is None else (at, self.scope)
        db = self._db
        try:
            return int(db.run(statement, params).rowcount)
        except StorageError as exc:  # only the missing column: a failed prepare changes nothing
            if str(exc.__cause__) != MISSING:
                raise
        try:  # its statements on the connection itself: a failure typed here (review 66r,
            # migration 2: a full disk, a damaged page, a trigger came out as sqlite3's own)
            moved_in_place(db.connection())
        except sqlite3.Error as exc:
            raise StorageError(f"{db.path}: {exc}") from exc
        return int(db.run(statement, params).rowcount)

    def raised_at(self) -> int | None:
        """When the guard says this scope was last raised (the latest time a `bump` was given,
        never lowered: review 60a, release 1), or None: no readable guard, or no time of the
        scope in it (a guard of a troth before version 3, or a scope never given one)."""
        state = _read_state(self.path)
        return None if state is None else state[2].get(self.scope)

    def behind(self) -> bool:
        """Whether the store is a restored copy for this scope (read only: the guard, then the
        count). A store ahead of its guard (crash window 2) has its guard raised. A store whose
        id is not the one its guard names, or marked when another scope found that, is a
        restored copy (review 64j, rollback 1)."""
        state = _read_state(self.path)
        row, at = self._dated_row()
        counter = 0 if row is None else row
        if self._foreign(state):
            return True
        known = None if state is None else state[1].get(self.scope)
        if known is None:
            return row is not None  # armed or counted (review 52c, rollback 4: counter > 0)
        if counter > known:  # with the time of its last dated bump (review 60n, crash 1)
            self._raise_guard(counter, self._store_raised_at())
        elif counter == known and self._later(at, state):
            # node.db's time later than the guard's at equal counts: a troth before schema 19
            # raised the guard after a rotation killed in crash window 2 with the time it reads
            # (its table's, gone: review 66z, upgrade 1). Never lowered, so a copy's time can
            # only make a release stricter
            self._raise_guard(counter, at)
        return counter < known

    def _later(self, at: int | None, state: _State | None) -> bool:
        """Whether node.db's raise time `at` is later than the guard's (`state`) for this
        scope; one past the cap is the cap (never raised again at each check)."""
        if at is None or state is None:
            return False
        return min(at, limits.MAX_ROLLBACK_RAISED_AT) > state[2].get(self.scope, -1)

    def _dated_row(self) -> tuple[int | None, int | None]:
        """This scope's count in node.db (None: no row) and its raise time (None: none, not an
        integer, or a node.db without the column, a copy from before schema 19 put in place)."""
        try:
            row = self._db.fetch_one(COUNT_READ, (self.scope,))
        except StorageError as exc:
            if str(exc.__cause__) != MISSING:
                raise
            return self._row(), None
        return (None, None) if row is None else (self._count(row[0]), row[1])

    def _foreign(self, state: _State | None) -> bool:
        """Whether node.db is not the one the guard (`state`) names, or this scope was marked
        when another scope found that (`mark_foreign`); reads node.db's id (committed, outside
        a transaction: known for the next raise, which binds a guard of version 1 to 3)."""
        store = read_store_id(self._db)
        if store is not None and not self._db.in_transaction:
            self._store = store
        bound = None if state is None else state[3]
        # a node.db with no id (from before its first guarded write, or before review 64j) is
        # judged by its counts: it takes the guard's id at that write (`made_store_id`)
        mismatch = None not in (bound, store) and store != bound
        return mismatch or foreign_pending(self._db, self.scope)

    def _store_raised_at(self) -> int | None:
        """When node.db says this scope was last raised (`bump`'s time, in the count's row),
        or None; a `rollback_raised` table still there (a troth from before review 66i wrote
        it after the migration dropped it) is read too, the later time kept."""
        db, scope = self._db, (self.scope,)
        _, at = self._dated_row()
        times = [] if at is None else [int(at)]
        if db.fetch_one("SELECT 1 FROM sqlite_master WHERE name = 'rollback_raised'") is not None:
            legacy = db.fetch_one(TIME_READ, scope)
            times += [] if legacy is None or legacy[0] is None else [int(legacy[0])]
        return max(times, default=None)

    def check(
        self,
        now: int,
        fail_closed: Callable[[], int],
        transaction: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> Restored | None:
        """At open: None for a current store; for a restored copy, `fail_closed()` (what it
        voids, counted) runs in one transaction with the count raised to the guard's and the
        restore recorded, then the guard is raised to the count, and the restore is logged
        and returned. Found once: a second check (here or in another process) finds the store
        current. `fail_closed` must not `bump` (its first write of the guard would come
        before the restore's commit). Temporary guards a process killed while it made the
        guard left beside it are deleted first (review 52c, rollback 3)."""
        self._sweep_leftovers()
        if not self.behind():
            return None
        # again under the write lock (`transaction`: the owner's, default the database's):
        # another may have done it
        with (transaction or self._db.transaction)():
            state = _read_state(self.path)
            known = None if state is None else state[1].get(self.scope)
            row = self._row()
            counter = 0 if row is None else row
            another = self._foreign(state)
            if not another and ((row is None) if known is None else (counter >= known)):
                return None
            made = planted(self._db)  # (review 72k, holds2 4: a trigger undid the holds; 72v,
            if made:  # planted 1: a view hid the identities they hold)
                raise StorageError(
                    f"{self._db.path} is a restored copy holding "
                    + ", ".join(made)
                    + ", which troth never makes: it may undo what the restore fails closed on; "
                    "drop it (sqlite3 node.db 'DROP TRIGGER name', 'DROP VIEW name', 'DROP INDEX "
                    "name'; a table made again without the clause, a table or index made again "
                    "as troth makes it, a database in UTF-8 with .dump) and open node.db again "
                    '(docs/storage.md, "Rollback guard")'
                )
            if another:
                self._adopt(state, now)
            voided = fail_closed()
            self._db.execute(
                "INSERT INTO rollback_counters (scope, counter, restored_at, restored_counter, "
                "restored_guard, restored_voided) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (scope) DO UPDATE SET counter = excluded.counter, "
                "restored_at = excluded.restored_at, "
                "restored_counter = excluded.restored_counter, "
                "restored_guard = excluded.restored_guard, "
                "restored_voided = excluded.restored_voided",
                (self.scope, max(counter, known or 0), now, counter, known, voided),
            )
            self._bumped = self._bumped_at = None  # `_publish` reads the count raised here
            self._db.after_commit_once(self._publish)
        restored = Restored(self.scope, counter, known, voided, now, another)
        _log.warning(
            "%s: node.db is %s for its %s (its count of irreversible writes %d, "
            'the guard\'s %s): failed closed on %d (docs/storage.md, "Rollback guard")',
            self._db.path,
            "another node's node.db" if another else "a restored copy",
            self.scope,
            counter,
            "missing" if known is None else known,
            voided,
        )
        return restored

    def _adopt(self, state: _State | None, now: int) -> None:
        """In the restore's transaction, node.db not the one its guard names (`_foreign`):
        the first scope to find it marks every other scope of this troth's that node.db or
        the guard holds an entry of, each found by its own owner, and node.db takes the
        guard's id (the guard is never bound to another: review 64j, rollback 1); this scope
        is found."""
        bound, store = None if state is None else state[3], read_store_id(self._db)
        if bound is not None and store is not None and store != bound:
            rows = self._db.fetch_all("SELECT scope FROM rollback_counters")
            held = {str(r[0]) for r in rows} | set(() if state is None else state[1])
            mark_foreign(self._db, sorted(held & _OWN_SCOPES - {self.scope}), now)
            adopt_store_id(self._db, bound)
            self._know_store(bound)
        foreign_found(self._db, self.scope, now)

    def _sweep_leftovers(self) -> None:
        """Delete this guard's temporary files (`_create_guard`'s, named as it names them),
        if any, under the guard's lock: one another process is writing is renamed (gone)
        once it has the lock back."""
        pattern = re.compile(rf"\.{re.escape(self.path.name)}\.[0-9a-f]{{16}}\.tmp")
        try:
            with os.scandir(self.path.parent) as entries:
                found = [Path(e.path) for e in entries if pattern.fullmatch(e.name)]
        except OSError as exc:
            raise StorageError(f"cannot read {self.path.parent}: {exc.strerror or exc}") from exc
        if not found:
            return
        turns = Turns(self._lock_path, self._db.busy_timeout)
        try:
            with turns.turn():
                for path in found:
                    path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete a leftover of {self.path}: {exc}") from exc
        finally:
            turns.close()

    def _publish(self) -> None:
        """After a commit: raise the guard to the count the transaction's last `bump` wrote
        (committed: no statement after the commit, review 57i), else to the store's count,
        read now (at least the committed one)."""
        counter, self._bumped = self._bumped, None
        at, self._bumped_at = self._bumped_at, None
        self._raise_guard(self.counter() if counter is None else counter, at)

    def _raise_guard(self, counter: int, at: int | None = None) -> None:
        """Raise this scope's entry of the guard to `counter`, and its raise time to `at` if
        given (at most MAX_ROLLBACK_RAISED_AT; never lower either), the other scopes' entries
        kept, under the guard's lock (so two writers never lower it)."""
        raised = None if at is None else min(max(at, 0), limits.MAX_ROLLBACK_RAISED_AT)
        while True:
            try:
                self._raise_in_turn(guard_files(self.path, self._lock_path), counter, raised)
                return
            except Evicted:  # closed by another thread meanwhile: opened again
                continue
            except OSError as exc:  # a full disk, an I/O error (review 56d, storage 2)
                raise StorageError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def _raise_in_turn(self, files: GuardFiles, counter: int, at: int | None) -> None:
        """`_raise_guard` with the guard's files kept by this process, in a turn of its lock."""
        with files.within(self._db.busy_timeout):
            data = files.read(limits.MAX_ROLLBACK_GUARD_BOUND_BYTES + 1)
            state = _state_of(data)
            scope = self.scope
            if data is None or state is None:
                times = {} if at is None else {scope: at}
                _create_guard(self.path, {scope: counter}, times, self._store)
                return
            seq, counts, raised, bound = state
            known = counts.get(scope)
            later = at is not None and at > raised.get(scope, -1)
            # a guard of version 1 to 3 bound to node.db's id at its next raise (in a file of
            # its own: version 4's slots are larger); a bound one keeps its id, whatever
            # node.db's (a mismatch is the restore `check` finds: review 64j, rollback 1)
            store = self._store if bound is None else bound
            rebind = bound is None and store is not None
            if known is None or known < counter or later or rebind:
                counts[scope] = max(counter, known or 0)  # `_state_of`'s own dicts
                if at is not None and later:
                    raised[scope] = at
                # this troth's scopes and one raise time fit a slot at the largest; more may not
                # (review 60h, guard 1: a newer troth's dates beside `identity`'s)
                if not counts.keys() <= _OWN_SCOPES or len(raised) > 1:
                    counts, raised = _carried(counts, raised, store is not None)
                if rebind:
                    _create_guard(self.path, counts, raised, store, seq + 1)
                    return
                # of exact str and int only (counts as decoded, this scope's from the store;
                # a raise time a list of two): what `cbor.encode`'s walk would find (review
                # 58a: the walk each raise); `_record` without its copy of the counts
                version = _version(counts, raised, store)
                record = [GUARD_TYPE, version, seq + 1, _entries(counts, raised)]
                if store is not None:
                    record.append(store)
                slot = _framed(cbor.encode_checked(record), store is not None)
                size = len(slot)
                # slot `(seq + 1) % 2` in place, never the newest valid one (slot
                # `seq % 2`): a torn write leaves that one the newest; with `full`
                # durability fdatasynced (survives a power loss, not only a crash)
                start = ((seq + 1) % 2) * size
                crash_point("storage.rollback-guard.before-write")
                fd = files.writable()
                os.pwrite(fd, slot, start)
                if self._db.durability == "full":
                    os.fdatasync(fd)
                crash_point("storage.rollback-guard.after-write")
                # known unread only if it decodes as written: a scope added (a newer
                # troth's full guard) or a number past the largest may not (review 57v,
                # guard 1: the cache said so, and the next raise overwrote the only valid
                # slot); decoded at its next read then
                if known is not None and seq < limits.MAX_ROLLBACK_COUNTER:
                    written = data[:start] + slot + data[start + size :]
                    held = (tuple(counts.items()), tuple(raised.items()))
                    _know_written(written, (seq + 1, *held, store))


def restored_rows(db: SqliteDatabase) -> list[Restored]:
    """The last restore found for each scope of `db` (what `troth node status` shows)."""
    another = foreign_found_at(db)
    found = []
    for scope, guard, *numbers in db.fetch_all(_RESTORED):
        what = f"restore of {scope}"
        counter, voided, at = (stored_whole(number, what, db.path) for number in numbers)
        held = None if guard is None else stored_whole(guard, what, db.path)
        found.append(Restored(scope, counter, held, voided, at, another.get(scope) == at))
    return found
