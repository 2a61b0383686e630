"""The authority's and the credential holder's repositories over SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final

from troth import limits
from troth.errors import StorageError
from troth.storage.base import (
    AuthorityConfig,
    FeedRow,
    HoldTime,
    MemberRecord,
    RevocationRecord,
)
from troth.storage.planted import check_made
from troth.storage.rollback import Restored, RollbackGuard
from troth.storage.row_types import (
    blob_sql,
    or_null,
    stored_blob,
    stored_text,
    stored_whole,
    text_sql,
    whole_sql,
)
from troth.storage.sqlite import SqliteDatabase

__all__ = ["SqliteAuthorityStore"]

_EXPIRY_INDEXES = {
    "tickets_expiry": "CREATE INDEX IF NOT EXISTS tickets_expiry ON tickets (expires_at)",
    "redemptions_expiry": (
        "CREATE INDEX IF NOT EXISTS redemptions_expiry ON redemptions (ticket_expires_at)"
    ),
    "tickets_made": "CREATE INDEX IF NOT EXISTS tickets_made ON tickets (created_at)",
}
"""Review 56g, redemptions 1: the expired tickets and redemptions found by their expiry, not
by a scan of every row (`forget_tickets` runs at every enrollment, ticket and round); review
59d, tickets 1: the tickets made by a clock since set back found by their making. Made when
the store is opened on a node.db made before them, as a migration is (`SqliteDatabase`)."""


_ANY_TICKET: Final = "SELECT 1 FROM tickets LIMIT 1"
_CREATE_HOLD: Final = (
    "CREATE TABLE IF NOT EXISTS authority_restore_hold "
    "(authority BLOB PRIMARY KEY, held_at INTEGER NOT NULL)"
)
_HOLD: Final = (  # the earliest hold kept: a later restore found while held changes nothing
    "INSERT INTO authority_restore_hold (authority, held_at) SELECT identifier, ? "
    "FROM authority WHERE true ON CONFLICT (authority) DO NOTHING"
)
_HOLD_TABLE: Final = (
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'authority_restore_hold'"
)
_HELD_AT: Final = (  # typed (review 71q, wave3a 5: int() of a TEXT time failed bare, a REAL
    # one was truncated); the earliest, a TEXT or BLOB one the min only when no number is; a
    # row of NULL time held too (review 72b, holds 2: min() of it, NULL, read as not held)
    f"SELECT {whole_sql('min(held_at)')} FROM authority_restore_hold HAVING count(*) > 0"  # noqa: S608
)
_CREATE_AGAIN: Final = (  # what a failed re-revoke lost (review 67d, hold 1)
    "CREATE TABLE IF NOT EXISTS authority_revoke_again "
    "(kind TEXT NOT NULL, target BLOB NOT NULL, PRIMARY KEY (kind, target)) STRICT"
)
_AGAIN_TABLE: Final = (
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'authority_revoke_again'"
)

_DIGEST_BYTES: Final = 64
"""The most of an identifier, a credential id or a feed's head read (32 bytes or fewer; one a
little longer still read, and refused by what decodes it)."""
_CONFIG: Final = (
    f"SELECT {blob_sql('identifier', _DIGEST_BYTES)}, name, "  # noqa: S608
    f"{whole_sql('credential_ttl')}, {whole_sql('delegation_depth')}, "
    f"{whole_sql('created_at')}, {whole_sql('revocation_quota')} FROM authority"
)
_TIP: Final = (
    f"SELECT {whole_sql('seq')}, {blob_sql('head', _DIGEST_BYTES)} "  # noqa: S608
    "FROM revocations ORDER BY seq DESC LIMIT 1"
)
_ENTRIES: Final = (
    f"SELECT {blob_sql('entry', limits.MAX_REVOCATION_ENTRY_BYTES)} "  # noqa: S608
    "FROM revocations WHERE seq >= ? ORDER BY seq"
)
_FEED_ROW: Final = (
    f"{whole_sql('seq')}, {whole_sql('kind')}, {blob_sql('target', _DIGEST_BYTES)}, "
    f"{or_null('changes', whole_sql('changes'))}, "
    f"{or_null('change_hash', blob_sql('change_hash', _DIGEST_BYTES))}"
)
"""The rows read typed and bounded (`troth.storage.row_types`; review 71c, rows 5 and 9:
`bytes()` of a TEXT one failed bare, of an INTEGER n made n bytes)."""
_ATTRIBUTES: Final = limits.MAX_CREDENTIAL_BYTES
"""The most of a member's or a ticket's encoded attributes read: a credential granting them
fits MAX_CREDENTIAL_BYTES (`check_fits`, when the ticket is made)."""
_ISSUED_BYTES: Final = limits.MAX_CREDENTIAL_BYTES + limits.MAX_ATTESTATION_BYTES + 128
"""The most of an issued credential's encoding read: its body, its signature and the issuer's
key attestation, with their CBOR around them."""
_KIND_BYTES: Final = 64  # a kind to revoke again (REVOKE_AGAIN_KINDS: a short name)
_MEMBERS: Final = (  # the enrollment rows typed and bounded too (review 71c, rows 10: `bytes()`
    # of TEXT failed bare, of an INTEGER n made n bytes; closed by review 71k)
    f"SELECT {blob_sql('identifier', _DIGEST_BYTES)}, {blob_sql('attributes', _ATTRIBUTES)}, "  # noqa: S608
    f"{blob_sql('added_by', _DIGEST_BYTES)}, {whole_sql('added_at')}, "
    f"{or_null('quota_ticket', blob_sql('quota_ticket', _DIGEST_BYTES))} FROM members"
)
_REDEEMED: Final = (
    f"RETURNING {blob_sql('attributes', _ATTRIBUTES)}, {blob_sql('created_by', _DIGEST_BYTES)}, "
    f"{whole_sql('expires_at')}, {or_null('uses', whole_sql('uses'))}"
)
_ISSUED_IDS: Final = f"SELECT {blob_sql('id', _DIGEST_BYTES)} FROM issued_credentials "  # noqa: S608


def _digest(value: object, what: str, path: Path) -> bytes:
    return stored_blob(value, what, path, _DIGEST_BYTES)


class SqliteAuthorityStore:
    """An authority's state in a SQLite database (docs/storage.md): its settings, tickets and
    redemptions, members, the credentials it issued and its revocation feed."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        self._guard = RollbackGuard(db, "authority")
        names = {name for (name,) in db.fetch_all("SELECT name FROM sqlite_master")}
        missing = [sql for name, sql in _EXPIRY_INDEXES.items() if name not in names]
        if missing:  # a write only on a node.db made before them
            with db.transaction():
                for statement in missing:
                    db.execute(statement)

    def transaction(self) -> AbstractContextManager[None]:
        return self._db.transaction()

    def count_irreversible(self) -> None:
        """Count a write a restored copy must not undo, in its transaction (a ticket's use,
        a member removed, a feed entry: troth.storage.rollback, docs/storage.md "Rollback
        guard")."""
        self._guard.bump()

    def check_restored(self, now: int) -> Restored | None:
        """Whether this store is a restored copy (troth.storage.rollback): if so, every ticket
        it holds is used up (which of them were redeemed after the copy was taken cannot be
        known) and the authority held (`restore_held`: review 65o, feed 2) in the transaction
        that records the restore, found once. A store holding
        tickets an older troth made (none armed the scope before review 52c) is armed now, so
        a copy taken from here on, put back with its guard deleted, is found (review 56d,
        rollback 1; review 54t, rollback 1 for the bundles)."""
        restored = self._guard.check(now, lambda: self._fail_closed(now))
        if not self._guard.armed() and self._db.fetch_one(_ANY_TICKET) is not None:
            with self._db.transaction():
                self._guard.arm()
        return restored

    def _fail_closed(self, now: int) -> int:
        """In the restore's transaction: every ticket used up (how many: the restore's
        `voided`), and the authority held (review 65o, feed 2: the copy's feed lacks the
        revocations made after it; `restore_held`). A copy taken while a failed re-revoke held
        the authority keeps that hold's list (`revoke_again`): what its feed lost before the
        copy, part of what it lacks (review 67q, again 1: dropped, the refusal told the
        operator to revoke again only what was revoked after the copy, and the list's
        members, revoked before it, were admitted again)."""
        voided = int(
            self._db.execute("UPDATE tickets SET uses_left = 0 WHERE uses_left > 0").rowcount
        )
        self._place_hold(now)
        return voided

    def _place_hold(self, now: int) -> None:
        """Hold the authority (`restore_held`), in the caller's transaction; the earliest
        hold kept; the tables troth's, or none (review 72k, holds2 5)."""
        for create in (_CREATE_HOLD, _CREATE_AGAIN):
            check_made(self._db, create)
        self._db.execute(_CREATE_HOLD)
        self._db.execute(_HOLD, (now,))

    def hold(self, now: int, again: Sequence[tuple[str, bytes]] = ()) -> None:
        """Hold the authority as a restore does (`restore_held`), in a transaction of its own:
        its store went back past the feed a holder held and what it lost could not be revoked
        again (review 65z, hold 1: the holders kept the old line, blind to the new one's
        revocations). `again`: what it lost, (kind, target) (`REVOKE_AGAIN_KINDS`), kept with
        the hold for its operator (`revoke_again`; review 67d, hold 1: it lived only in the
        holder's memory, the feed it dropped). `release_restore_hold` lifts it."""
        with self._db.transaction():
            self._place_hold(now)
            if again:
                self._db.execute(_CREATE_AGAIN)
                for kind, target in again:
                    self._db.execute(
                        "INSERT INTO authority_revoke_again (kind, target) VALUES (?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (kind, target),
                    )

    def revoke_again(self) -> list[tuple[str, bytes]]:
        """What a failed re-revoke found the store's line lost (`hold`), (kind, target) in
        order; empty: none recorded (none held, or held by a restore found of a copy taken
        while not held, whose loss the node cannot know; a copy taken while held keeps its
        list, part of what it lacks: review 67q, again 1)."""
        if self._db.fetch_one(_AGAIN_TABLE) is None:
            return []
        rows = self._db.fetch_all(
            f"SELECT {text_sql('kind', _KIND_BYTES)}, {blob_sql('target', _DIGEST_BYTES)} "  # noqa: S608
            "FROM authority_revoke_again ORDER BY kind, target"
        )
        path = self._db.path
        return [
            (
                stored_text(kind, "kind to revoke again", path, _KIND_BYTES),
                _digest(target, "target", path),
            )
            for kind, target in rows
        ]

    def restore_held(self) -> int | None:
        """When a restore of node.db (`check_restored`) or a re-revoke that failed (`hold`)
        held this authority, or None: not held, or released (`release_restore_hold`);
        StorageError where node.db holds its time damaged (`restore_hold`)."""
        held = self._hold_time()
        return None if held is None else stored_whole(held, "hold's time", self._db.path)

    def restore_hold(self) -> int | HoldTime | None:
        """`restore_held`, a hold whose time node.db holds damaged (not a whole number, or
        NULL) `HoldTime.DAMAGED`: a hold all the same (review 72b, holds 1)."""
        held = self._hold_time()
        return held if held is None or type(held) is int else HoldTime.DAMAGED

    def _hold_time(self) -> object:
        """The earliest hold's time as `whole_sql` reads it, or None: not held. The schema's
        row first (no `restored_at` gate: review 65z, hold 1, a hold with no restore found)."""
        if self._db.fetch_one(_HOLD_TABLE) is None:
            return None
        held = self._db.fetch_one(_HELD_AT)
        return None if held is None else held[0]

    def release_restore_hold(self) -> int | HoldTime | None:
        """Lift the hold a restore found put on this authority (its operator revoked again
        what the copy lacks); when it was held (`restore_hold`: a damaged time released too,
        review 72b, holds 1), or None (not held)."""
        with self._db.transaction():
            held = self.restore_hold()
            if held is not None:
                self._db.execute("DELETE FROM authority_restore_hold")
                if self._db.fetch_one(_AGAIN_TABLE) is not None:
                    self._db.execute("DELETE FROM authority_revoke_again")
        return held

    def get_config(self) -> AuthorityConfig | None:
        row = self._db.fetch_one(_CONFIG)
        if row is None:
            return None
        path = self._db.path
        numbers = (stored_whole(value, "authority's setting", path) for value in row[2:])
        return AuthorityConfig(_digest(row[0], "authority", path), row[1], *numbers)

    def put_config(self, config: AuthorityConfig) -> None:
        self._db.execute(
            "INSERT INTO authority (identifier, name, credential_ttl, delegation_depth, "
            "created_at, revocation_quota) VALUES (?, ?, ?, ?, ?, ?)",
            (
                config.identifier,
                config.name,
                config.credential_ttl,
                config.delegation_depth,
                config.created_at,
                config.revocation_quota,
            ),
        )

    def put_ticket(
        self,
        code_hash: bytes,
        attributes: bytes,
        uses: int,
        expires_at: int,
        created_by: bytes,
        now: int,
    ) -> None:
        self._guard.arm()  # a copy holding a ticket is found, its guard deleted (review 52c)
        self._db.execute(
            "INSERT INTO tickets (code_hash, attributes, uses_left, expires_at, created_by, "
            "created_at, uses) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (code_hash, attributes, uses, expires_at, created_by, now, uses),
        )

    def redeem_ticket(
        self, code_hash: bytes, now: int
    ) -> tuple[bytes, bytes, int, int | None] | None:
        # one conditional write (lessons.md: read-then-delete lets two redeemers win); a
        # ticket made more than the skew after `now` was made by a clock since set back, its
        # window unknown: refused (review 59d, tickets 1: it lived its TTL plus the error)
        row = self._db.fetch_one(
            "UPDATE tickets SET uses_left = uses_left - 1 "  # noqa: S608
            "WHERE code_hash = ? AND uses_left > 0 AND expires_at > ? AND created_at <= ? "
            + _REDEEMED,
            (code_hash, now, now + limits.MAX_CLOCK_SKEW_SECONDS),
        )
        if row is None:
            return None
        path = self._db.path
        attributes, created_by, expires_at, uses = row
        return (
            stored_blob(attributes, "ticket's attributes", path, _ATTRIBUTES),
            _digest(created_by, "ticket's maker", path),
            stored_whole(expires_at, "ticket's expiry", path),
            None if uses is None else _uses(uses, path),
        )

    def forget_tickets(self, now: int, code_hash: bytes | None = None) -> int:
        """Also deletes the redemptions whose ticket expired REDEMPTION_GRACE_SECONDS before
        `now` (review 56g, redemptions 2: kept for good, one chain per member per ticket): its
        ticket was deleted at its expiry, by this same call, so its code redeems nothing after
        (a repeat is `ticket unknown`), and the tickets made more than MAX_CLOCK_SKEW_SECONDS
        after `now`, by a clock since set back (review 59d, tickets 1: their window is not
        known; each statement finds its rows by an index). Returns how many tickets were
        deleted."""
        self._db.execute(
            "DELETE FROM redemptions WHERE ticket_expires_at <= ?",
            (now - limits.REDEMPTION_GRACE_SECONDS,),
        )
        ahead = self._db.execute(
            "DELETE FROM tickets WHERE created_at > ?", (now + limits.MAX_CLOCK_SKEW_SECONDS,)
        ).rowcount
        return int(ahead) + int(
            self._db.execute(
                "DELETE FROM tickets WHERE expires_at <= ? OR code_hash = ?", (now, code_hash)
            ).rowcount
        )

    def find_redemption(self, code_hash: bytes, member: bytes, now: int) -> bytes | None:
        row = self._db.fetch_one(
            f"SELECT {blob_sql('chain', limits.MAX_CHAIN_BYTES)} FROM redemptions "  # noqa: S608
            "WHERE code_hash = ? AND member = ? AND ticket_expires_at > ?",
            (code_hash, member, now),
        )
        path = self._db.path
        return (
            None
            if row is None
            else stored_blob(row[0], "redemption's chain", path, limits.MAX_CHAIN_BYTES)
        )

    def redeemed(self, code_hash: bytes, member: bytes) -> bool:
        row = self._db.fetch_one(
            "SELECT 1 FROM redemptions WHERE code_hash = ? AND member = ?", (code_hash, member)
        )
        return row is not None

    def record_redemption(
        self,
        code_hash: bytes,
        member: bytes,
        credential: bytes,
        chain: bytes,
        ticket_expires_at: int,
        now: int,
    ) -> None:
        self._db.execute(
            "INSERT INTO redemptions VALUES (?, ?, ?, ?, ?, ?)",
            (code_hash, member, credential, chain, ticket_expires_at, now),
        )

    def count_redemptions(self, member: bytes) -> int:
        row = self._db.fetch_one("SELECT count(*) FROM redemptions WHERE member = ?", (member,))
        return int(row[0])

    def put_member(self, record: MemberRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO members (identifier, attributes, added_by, added_at, "
            "quota_ticket) VALUES (?, ?, ?, ?, ?)",
            (
                record.identifier,
                record.attributes,
                record.added_by,
                record.added_at,
                record.quota_ticket,
            ),
        )

    def get_member(self, identifier: bytes) -> MemberRecord | None:
        row = self._db.fetch_one(f"{_MEMBERS} WHERE identifier = ?", (identifier,))
        return None if row is None else _member(row, self._db.path)

    def list_members(self) -> list[MemberRecord]:
        rows = self._db.fetch_all(f"{_MEMBERS} ORDER BY added_at")
        return [_member(r, self._db.path) for r in rows]

    def remove_member(self, identifier: bytes) -> bool:
        return (
            self._db.execute("DELETE FROM members WHERE identifier = ?", (identifier,)).rowcount
            == 1
        )

    def record_issued(
        self,
        credential_id: bytes,
        subject: bytes,
        expires_at: int,
        now: int,
        credential: bytes | None = None,
    ) -> None:
        self._db.execute(
            "INSERT INTO issued_credentials (id, subject, expires_at, issued_at, credential) "
            "VALUES (?, ?, ?, ?, ?)",
            (credential_id, subject, expires_at, now, credential),
        )

    def forget_issued_before(self, subject: bytes, expired_by: int) -> int:
        cursor = self._db.execute(
            "DELETE FROM issued_credentials WHERE subject = ? AND expires_at <= ?",
            (subject, expired_by),
        )
        return cursor.rowcount

    def issued_credential(self, credential_id: bytes) -> bytes | None:
        row = self._db.fetch_one(
            f"SELECT {or_null('credential', blob_sql('credential', _ISSUED_BYTES))} "  # noqa: S608
            "FROM issued_credentials WHERE id = ?",
            (credential_id,),
        )
        if row is None or row[0] is None:
            return None
        return stored_blob(row[0], "issued credential", self._db.path, _ISSUED_BYTES)

    def unexpired_issued(self, subject: bytes, now: int) -> list[bytes]:
        rows = self._db.fetch_all(
            _ISSUED_IDS + "WHERE subject = ? AND expires_at > ? ORDER BY issued_at", (subject, now)
        )
        return [_digest(r[0], "issued credential's id", self._db.path) for r in rows]

    def live_issued(self, subject: bytes, now: int, since: int) -> list[bytes]:
        rows = self._db.fetch_all(
            _ISSUED_IDS + "WHERE subject = ? AND expires_at > ? "
            "AND issued_at >= ? ORDER BY issued_at, rowid",
            (subject, now, since),
        )
        return [_digest(r[0], "issued credential's id", self._db.path) for r in rows]

    def revocation_tip(self) -> tuple[int, bytes | None]:
        row = self._db.fetch_one(_TIP)
        if row is None:
            return 0, None
        return stored_whole(row[0], "feed's seq", self._db.path) + 1, self._head(row[1])

    def _head(self, value: object) -> bytes:
        return _digest(value, "feed's head", self._db.path)

    def find_revocation(self, kind: int, target: bytes) -> int | None:
        row = self._db.fetch_one(
            f"SELECT {whole_sql('seq')} FROM revocations "  # noqa: S608
            "WHERE kind = ? AND target = ? AND kind < 3",
            (kind, target),
        )
        return None if row is None else stored_whole(row[0], "feed's seq", self._db.path)

    def latest_supersession(self, identifier: bytes) -> tuple[int, int] | None:
        row = self._db.fetch_one(
            # the feed's newest: the last written (`VerifiedFeed.supersession`), not the most
            # changes (review 65r, feed 1: a held one published again is the newest)
            f"SELECT {whole_sql('seq')}, {whole_sql('changes')} FROM revocations "  # noqa: S608
            "WHERE kind = 3 AND target = ? ORDER BY seq DESC LIMIT 1",
            (identifier,),
        )
        if row is None:
            return None
        path = self._db.path
        return stored_whole(row[0], "feed's seq", path), stored_whole(row[1], "changes", path)

    def supersession_hash(self, identifier: bytes, changes: int) -> bytes | None:
        row = self._db.fetch_one(
            # the newest at that count, as the feed's `attests` (review 65r, feed 2)
            f"SELECT {blob_sql('change_hash', _DIGEST_BYTES)} FROM revocations "  # noqa: S608
            "WHERE kind = 3 AND target = ? AND changes = ? ORDER BY seq DESC LIMIT 1",
            (identifier, changes),
        )
        return None if row is None else _digest(row[0], "change hash", self._db.path)

    def charged_since(self, member: bytes, since: int) -> list[int]:
        rows = self._db.fetch_all(
            f"SELECT {whole_sql('revoked_at')} FROM revocations "  # noqa: S608
            "WHERE charged_to = ? AND revoked_at >= ? ORDER BY revoked_at",
            (member, since),
        )
        return [stored_whole(r[0], "revocation's time", self._db.path) for r in rows]

    def add_revocation(self, record: RevocationRecord) -> None:
        self._db.execute(
            "INSERT INTO revocations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.seq,
                record.entry,
                record.head,
                record.kind,
                record.target,
                record.revoked_at,
                record.charged_to,
                record.changes,
                record.change_hash,
            ),
        )

    def revocation_page(self, start: int, budget: int, cost: Callable[[bytes], int]) -> list[bytes]:
        entries: list[bytes] = []
        cursor = self._db.execute(_ENTRIES, (start,))
        path = self._db.path
        try:
            for (value,) in cursor:
                entry = stored_blob(value, "feed entry", path, limits.MAX_REVOCATION_ENTRY_BYTES)
                budget -= cost(entry)
                if budget < 0 and entries:
                    break
                entries.append(entry)
        finally:
            cursor.close()
        return entries

    def revocation_rows(self, start: int) -> Iterator[FeedRow]:
        return _rows(
            self._db,
            f"SELECT {_FEED_ROW} FROM revocations WHERE seq >= ? ORDER BY seq",  # noqa: S608
            (start,),
        )

    def head_at(self, count: int) -> bytes | None:
        if count == 0:
            return None
        row = self._db.fetch_one(
            f"SELECT {blob_sql('head', _DIGEST_BYTES)} FROM revocations WHERE seq = ?",  # noqa: S608
            (count - 1,),
        )
        return None if row is None else self._head(row[0])


def _rows(db: SqliteDatabase, sql: str, params: tuple[object, ...]) -> Iterator[FeedRow]:
    """Feed rows (seq, kind, target, changes, change hash) of a query, streamed."""
    cursor = db.execute(sql, params)
    try:
        for seq, kind, target, changes, change_hash in cursor:
            yield (
                stored_whole(seq, "feed's seq", db.path),
                stored_whole(kind, "feed entry's kind", db.path),
                _digest(target, "feed entry's target", db.path),
                None if changes is None else stored_whole(changes, "changes", db.path),
                None if change_hash is None else _digest(change_hash, "change hash", db.path),
            )
    finally:
        cursor.close()


def _member(row: tuple[object, ...], path: Path) -> MemberRecord:
    """A `members` row read by `_MEMBERS`."""
    identifier, attributes, added_by, added_at, ticket = row
    return MemberRecord(
        _digest(identifier, "member", path),
        stored_blob(attributes, "member's attributes", path, _ATTRIBUTES),
        _digest(added_by, "member's adder", path),
        stored_whole(added_at, "member's time", path),
        None if ticket is None else _digest(ticket, "member's quota ticket", path),
    )


def _uses(value: object, path: Path) -> int:
    """A ticket's `uses` as `redeem_ticket` read it (`whole_sql`): 1 to MAX_TICKET_USES, as
    `create_ticket` allows, else StorageError (node.db damaged: review 71h, wave2a 1: TEXT
    failed the redemption bare, a REAL 1.5 was truncated to a single use, a 0 taken as
    many)."""
    uses = stored_whole(value, "ticket's uses", path)
    if not 1 <= uses <= limits.MAX_TICKET_USES:
        raise StorageError(f"{path} is damaged: its ticket's uses is {uses}, which no troth writes")
    return uses
