"""A node.db restored from a copy taken before a rotation of one of its identities (review 57b,
restore 1, fixed by review 57i; docs/storage.md, "Rollback guard"; docs/vault.md, "A node.db
restored from before a rotation").

A rotation deletes the keys it retires (a compromised one every key a copy of the vault holds):
a copy of node.db taken before it, put back, holds them again, and on a software node signed
with them, unseen. Each rotation is counted in the rollback guard's `identity` scope
(troth.storage.rollback), in its transaction; a store behind its guard there is a restored
copy, found once (`RestoredIdentities.check`, before an identity signs, opens a channel or
rotates, and when a node starts), and every local identity it holds is held in that
transaction (`identity_restore_holds`): which of them rotated after the copy was taken cannot
be known. A hold the copy holds already (taken while an earlier restore held the identity) is
dated by this restore, the later time kept: the release counts feeds issued after it, and the
copy's older time let a feed issued between the copy and this restore count (review 72b,
release 6). A held identity signs nothing, attests no purpose key (so opens no channel) and does
not rotate (a rotation from the copy forks its history): IdentityError ROLLBACK naming the
restore. `troth node status` shows the restore (scope `identity`, `voided`: the identities
held). The operator's recovery: an identity rotated since the copy was taken is lost on this
node (its current keys were in the node.db that was lost): make a new one and enroll it again;
one the operator knows was not rotated since is released (`release`), and signs again:
`troth identity release-restored` (troth.node.release) only on feeds issued after the hold,
or the operator's explicit vouch (review 58b, release 1: the copy's own feeds, older than a
rotation since, let a rotated identity go).

Each rotation also dates the guard's `identity` scope (when it was last raised, never lowered:
troth.storage.rollback, version 3), and a restore found keeps that date (`last_rotation`): the
copy is older than the rotation it lacks, so a feed issued before it, whatever the clock said
at the find, proves nothing (review 60a, release 1: a hold found with the clock behind was
dated early, and a page captured between the copy and the rotation, replayed after the clock
was corrected, released the rotated identity). A guard without it (written before this, or
lost) dates nothing: the hold's time and the copy's feeds alone, as before.

A rotation only is counted, nothing is armed at an identity's creation: a copy taken before
the node's first rotation since this change, put back with its guard deleted (or lost with
the disk), is not found; after it, a copy put back without its guard is found.
"""

from __future__ import annotations

import logging
from typing import Final

from troth.clock import Clock, SystemClock
from troth.errors import IdentityError, IdentityFailure, StorageError
from troth.storage.planted import check_made
from troth.storage.rollback import Restored, RollbackGuard
from troth.storage.row_types import stored_whole, whole_sql
from troth.storage.sqlite import SqliteDatabase

__all__ = ["RestoredIdentities", "copy_feed_issued", "last_rotation"]

_TABLE: Final = "identity_restore_holds"
_CREATE: Final = (
    "CREATE TABLE IF NOT EXISTS identity_restore_holds "
    "(identifier BLOB PRIMARY KEY, held_at INTEGER NOT NULL)"
)
_HOLD_ALL: Final = (  # a hold the copy holds already dated by this restore too (the later
    # time: review 72b, release 6, its older time let a feed issued before this restore count)
    "INSERT INTO identity_restore_holds (identifier, held_at) SELECT identifier, ? "
    "FROM identities WHERE primary_key IS NOT NULL ON CONFLICT (identifier) "
    "DO UPDATE SET held_at = max(held_at, excluded.held_at)"
)
_FEEDS: Final = "identity_restore_feeds"
_CREATE_FEEDS: Final = (
    "CREATE TABLE IF NOT EXISTS identity_restore_feeds "
    "(authority BLOB PRIMARY KEY, issued_at INTEGER NOT NULL)"
)
_KEEP_FEEDS: Final = (  # the copy's feeds' dates, each authority's own (a later restore's too)
    "INSERT INTO identity_restore_feeds (authority, issued_at) "
    "SELECT authority, issued_at FROM feed_state WHERE true ON CONFLICT (authority) "
    "DO UPDATE SET issued_at = max(issued_at, excluded.issued_at)"
)
_ROTATED: Final = "identity_restore_rotated"
_CREATE_ROTATED: Final = (
    "CREATE TABLE IF NOT EXISTS identity_restore_rotated (raised_at INTEGER NOT NULL)"
)
_HOLDS: Final = "SELECT 1 FROM identity_restore_holds WHERE identifier = ?"
_HELD_AT: Final = f"SELECT {whole_sql('held_at')} FROM identity_restore_holds WHERE identifier = ?"  # noqa: S608
_ISSUED_AT: Final = (
    f"SELECT {whole_sql('issued_at')} FROM identity_restore_feeds WHERE authority = ?"  # noqa: S608
)
"""The times read typed (review 71c, rows 7: `int()` of a TEXT one failed bare)."""
_KEEP_ROTATED: Final = "INSERT INTO identity_restore_rotated (raised_at) VALUES (?)"
_LAST_ROTATED: Final = (
    "SELECT CASE WHEN max(raised_at) IS NULL THEN NULL "  # noqa: S608
    f"ELSE {whole_sql('max(raised_at)')} END FROM identity_restore_rotated"
)
"""The newest time (a TEXT or BLOB row is the max SQLite finds, then refused: rows 7)."""
_SEE: Final = 'docs/vault.md, "A node.db restored from before a rotation"'
RESTORED_DETAIL: Final = (
    "node.db was restored from a copy taken before a rotation: this identity may hold keys the "
    f"rotation deleted ({_SEE})"
)
"""The detail of the IdentityError a held identity's signer, channel or rotation raises."""

_log = logging.getLogger(__name__)


class RestoredIdentities:
    """The `identity` scope of node.db's rollback guard, and the identities a restore holds."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        self._guard = RollbackGuard(db, "identity")
        self._checked = False

    def count_rotation(self, at: int | None = None) -> None:
        """Inside a rotation's transaction: count it (its retired keys deleted; a copy from
        before it holds them), dated `at`, default the system clock's time now: the guard's
        raise time of the scope, which dates a restore found later (`last_rotation`)."""
        self._guard.bump(SystemClock().now() if at is None else at)

    def check(self, now: int | Clock) -> Restored | None:
        """Find a restored copy once per object: if node.db is one, hold every local identity
        it holds, in the transaction that records the restore (a caller's, if in one: its
        rollback undoes the record, and the guard is left as it was, so it is found again).
        A Clock is read only when a restore is to be recorded."""
        if self._checked:
            return None
        if not self._guard.behind():
            self._checked = True
            return None

        at = now if isinstance(now, int) else now.now()  # the holds' time, read once (a Clock
        # bound as the statement's parameter failed it: review 57r, clock 1)

        def hold_all() -> int:
            for create in (_CREATE, _CREATE_FEEDS, _CREATE_ROTATED):  # troth's, or none (review
                check_made(self._db, create)  # 72k, holds2 5: one made otherwise dropped holds)
            self._db.execute(_CREATE)
            # the date of each feed the copy holds, kept: a release counts only a feed of an
            # authority issued after both the hold and the copy's own feed of it
            # (troth.node.release, `copy_feed_issued`): with the clock behind (a machine booted
            # before NTP set it) the copy's own feeds postdate the hold (review 58g, release
            # 1); one authority's feed dated ahead dates no other's (review 59f, restore 1:
            # the hold dated by the newest feed of any authority held every member of another
            # until that date)
            self._db.execute(_CREATE_FEEDS)
            self._db.execute(_KEEP_FEEDS)
            # and when the guard says the last rotation was (the copy lacks it): no feed issued
            # before it counts, though the clock now is behind it (review 60a, release 1)
            self._db.execute(_CREATE_ROTATED)
            raised_at = self._guard.raised_at()
            if raised_at is not None:
                self._db.execute(_KEEP_ROTATED, (raised_at,))
            return int(self._db.execute(_HOLD_ALL, (at,)).rowcount)

        restored = self._guard.check(at, hold_all)
        self._db.after_commit(self._checked_now)
        return restored

    def _checked_now(self) -> None:
        self._checked = True

    def held(self, identifier: bytes) -> int | None:
        """When the identity `identifier` was held by a restore found, or None."""
        if not self._holds_table():
            return None
        row = self._db.fetch_one(_HELD_AT, (bytes(identifier),))
        return None if row is None else stored_whole(row[0], "hold's time", self._db.path)

    def _holds_table(self) -> bool:
        """Whether node.db may hold holds: a restore of the `identity` scope was recorded (its
        `restored_at`, set in the transaction that makes the holds' table: a primary-key read,
        ~1 us, before each rotation, signer and channel; review 59c, rotate 1: a scan of the
        whole schema was ~10 us), and the table is there. Nothing is remembered between calls
        (review 59l, restored 1: a miss remembered at a schema cookie was taken for one after a
        copy written in place, whose holds another process then made at that same cookie)."""
        row = self._db.fetch_one(
            "SELECT restored_at FROM rollback_counters WHERE scope = 'identity'"
        )
        return row is not None and row[0] is not None and _table(self._db, _TABLE)

    def check_usable(self, identifier: bytes, name: str | None, now: int) -> None:
        """IdentityError ROLLBACK if the identity is held (`check` first): a hold whose time
        node.db holds damaged too (review 71q, wave3a 1: it was StorageError, which the
        operator's release failed with as well; docs/storage.md, "Schema")."""
        self.check(now)
        try:
            held_at = self.held(identifier)
        except StorageError as damaged:
            since = f"since a time node.db does not hold readable ({damaged})"
        else:
            if held_at is None:
                return
            since = f"since {held_at}"
        shown = repr(name) if name is not None else "of this node"
        raise IdentityError(
            IdentityFailure.ROLLBACK, f"identity {shown} held {since}: {RESTORED_DETAIL}"
        )

    def release(self, identifier: bytes) -> bool:
        """Let a held identity sign, open channels and rotate again (the operator knows it was
        not rotated after the copy was taken); whether it was held. Its hold's row is deleted
        whatever time it holds: one damaged is released too (review 71q, wave3a 1)."""
        if not self._holds_table() or self._db.fetch_one(_HOLDS, (bytes(identifier),)) is None:
            return False
        with self._db.transaction():
            released = self._db.execute(
                "DELETE FROM identity_restore_holds WHERE identifier = ?", (bytes(identifier),)
            ).rowcount
        if released:
            _log.warning("%s: identity released from a restore's hold", self._db.path)
        return bool(released)


def copy_feed_issued(db: SqliteDatabase, authority: bytes) -> int | None:
    """When the feed of `authority` held by the restored copy of node.db `db` was issued (as
    the copy said: the authority's signed date capped at the page's acceptance), or None: the
    copy held none of it (or no restore was found)."""
    if not _table(db, _FEEDS):
        return None
    row = db.fetch_one(_ISSUED_AT, (bytes(authority),))
    return None if row is None else stored_whole(row[0], "restored feed's time", db.path)


def last_rotation(db: SqliteDatabase) -> int | None:
    """When the last rotation a restored copy of node.db `db` lacks was made, as its rollback
    guard said when the restore was found (the latest, of every restore found), or None: the
    guard did not say (no guard, or one without raise times), or no restore was found."""
    if not _table(db, _ROTATED):
        return None
    row = db.fetch_one(_LAST_ROTATED)
    if row is None or row[0] is None:
        return None
    return stored_whole(row[0], "restore's rotation time", db.path)


def _table(db: SqliteDatabase, name: str) -> bool:
    exists = db.fetch_one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return exists is not None
