"""The trace outbox's tables in the node's database (docs/storage.md, "Trace outbox";
docs/formats.md, "Trace outbox"), made on first use (`CREATE TABLE IF NOT EXISTS`):

    trace_outbox          the records queued for the trace service, one row each, in the order
                          they were made (`pos`): agent, record id, seq, hash, time, made (when
                          `record()` was called), the exact envelope, the disclosures (as the
                          log keeps them), the attestation of the signing key, the chain the
                          record names, size, attempts (refusals that had it signed again) and
                          `stale` (it must be signed again before it is sent: a record before
                          it was refused, so its seq and prev are wrong)
    trace_outbox_refused  the records set aside: the same columns, with the reason, the detail
                          and when it was refused (kept until an operator discards them).
                          A record id is unique in the outbox, queued and set aside, every
                          agent's together (`insert` refuses one held: a record set aside is
                          keyed by its id, review 37b, trace 2)
    trace_outbox_agents   per agent, the head the service last reported (seq, hash, time: where
                          the first record chains on when nothing is queued) and the counters
                          of what it holds: rows and bytes queued, rows and bytes set aside
    trace_outbox_sources  per record made on behalf of a member (queued or set aside): that
                          member (`source`) and the record's size, what the per-source bound
                          (TRACE_OUTBOX_SOURCE_PERCENT) counts; made on first use in a database
                          an earlier version wrote (its records count for no member)
    trace_outbox_members  per member, its rows and bytes held (and under the empty key, every
                          member's together: TRACE_OUTBOX_MEMBERS_PERCENT), kept with the rows
                          so a bound is one look-up, not a count over the table; made again
                          from the rows when an outbox is opened (`recount`: an earlier version
                          may have changed the rows without them)
    trace_outbox_held     per agent, why and since when its first queued records wait out a
                          refusal (`TraceOutbox.held_back`: reason, detail, record, since), kept
                          in the transaction that reads the answer so a restart keeps it
    trace_outbox_rotated  per agent, how many changes of its history a rotation retired the key
                          of (`changes`, written in the rotation's transaction): `add` with a
                          signer whose history holds no more asks for the signer again, so no
                          record is acknowledged signed by a retired key (review 72e, tickets 2)
                          (review 68r, outbox 2); made on first use in a database an earlier
                          version wrote

The methods only run statements: the caller (troth.trace.outbox) wraps each change in one
transaction, so a crash leaves every row as it was before the change or after it. A row that
changes is named by its position and its hash, so an answer to bytes that are no longer in the
outbox changes nothing.

A row holds the record's disclosed values (arguments, inputs, reasoning): once it is gone
(delivered, discarded) or a value is redacted, none of their bytes may stay in node.db (review
46e). Every transaction of the outbox runs with `PRAGMA secure_delete = ON` on its connection
(SQLite then zeroes a deleted cell and a freed page, overflow pages too; most builds default
to OFF, and FAST leaves freed pages as they were), and `scrub()` truncates the write-ahead
log, whose frames still hold the old pages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.crypto import sha256
from troth.errors import ConflictError, StorageError, TraceError
from troth.storage import SqliteDatabase
from troth.storage.row_types import stored_whole, whole_sql
from troth.trace.record import encode_disclosures
from troth.trace.signing import VerifiedRecord, open_envelope
from troth.trace.stored import decode_disclosures
from troth.trace.submit import Head

__all__ = ["OutboxRow", "OutboxStore", "RefusedRow", "Tail", "mark_rotated", "outbox_exists"]

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS trace_outbox (
        pos INTEGER PRIMARY KEY, agent BLOB NOT NULL, record TEXT NOT NULL UNIQUE,
        seq INTEGER NOT NULL, hash BLOB NOT NULL, time INTEGER NOT NULL, made INTEGER NOT NULL,
        envelope BLOB NOT NULL, disclosures BLOB, attestation BLOB NOT NULL, chain BLOB,
        size INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        stale INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS trace_outbox_agent ON trace_outbox (agent, pos)",
    """CREATE TABLE IF NOT EXISTS trace_outbox_refused (
        record TEXT PRIMARY KEY, agent BLOB NOT NULL, pos INTEGER NOT NULL,
        seq INTEGER NOT NULL, time INTEGER NOT NULL, made INTEGER NOT NULL,
        envelope BLOB NOT NULL, disclosures BLOB, attestation BLOB NOT NULL, chain BLOB,
        size INTEGER NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
        refused_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS trace_outbox_agents (
        agent BLOB PRIMARY KEY, seq INTEGER, hash BLOB, time INTEGER,
        queued INTEGER NOT NULL DEFAULT 0, queued_bytes INTEGER NOT NULL DEFAULT 0,
        refused INTEGER NOT NULL DEFAULT 0, refused_bytes INTEGER NOT NULL DEFAULT 0)""",
)
_SOURCES: Final = (
    """CREATE TABLE IF NOT EXISTS trace_outbox_sources (
        record TEXT PRIMARY KEY, source BLOB NOT NULL, size INTEGER NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS trace_outbox_members ("
    "source BLOB PRIMARY KEY, rows INTEGER NOT NULL, bytes INTEGER NOT NULL)",
)
_HELD: Final = (
    """CREATE TABLE IF NOT EXISTS trace_outbox_held (
        agent BLOB PRIMARY KEY, reason TEXT NOT NULL, detail TEXT NOT NULL, record TEXT,
        since INTEGER NOT NULL)""",
)
_ROTATED: Final = (
    "CREATE TABLE IF NOT EXISTS trace_outbox_rotated (agent BLOB PRIMARY KEY, "
    "changes INTEGER NOT NULL)",
)
_ROTATED_COUNT: Final = f"SELECT {whole_sql('changes')} FROM trace_outbox_rotated WHERE agent = ?"  # noqa: S608
_RECOUNT: Final = (
    "DELETE FROM trace_outbox_members",
    "INSERT INTO trace_outbox_members SELECT source, COUNT(*), SUM(size) "
    "FROM trace_outbox_sources GROUP BY source",
    "INSERT INTO trace_outbox_members SELECT X'', COUNT(*), COALESCE(SUM(size), 0) "
    "FROM trace_outbox_sources",
)
"""The members' counters made from the rows (`OutboxStore.recount`)."""
_ALL_MEMBERS: Final = b""
"""The key of every member's records together in trace_outbox_members."""
_SELECT_ROWS: Final = (
    "SELECT pos, record, CAST(seq AS INTEGER), CAST(hash AS BLOB), CAST(time AS INTEGER), "
    "CAST(made AS INTEGER), CAST(envelope AS BLOB), CAST(disclosures AS BLOB), "
    "CAST(attestation AS BLOB), CAST(chain AS BLOB), CAST(size AS INTEGER), "
    "CAST(attempts AS INTEGER), CAST(stale AS INTEGER) FROM trace_outbox "
)
"""A queued row read in the types its columns declare: a writer of node.db storing a text in
one (`SET hash = 'x'`) made every reading of the row raise TypeError, every rotation of the
agent failing with it, a compromised one too, and its outbox sending nothing more (review 70b,
outbox 1 and 2). A row is matched by its hash read so (`CAST(hash AS BLOB) = ?`)."""
_REDACT: Final = tuple(
    (
        f"SELECT agent, CAST(disclosures AS BLOB), size FROM {table} WHERE record = ?",  # noqa: S608
        f"UPDATE {table} SET disclosures = ?, size = size + ? WHERE record = ?",  # noqa: S608
    )
    for table in ("trace_outbox", "trace_outbox_refused")
)
"""A record's row and its change by a redaction: queued, then set aside."""
_SELECT_REFUSED: Final = (
    "SELECT record, agent, seq, time, reason, detail, refused_at, size FROM trace_outbox_refused "
)


def outbox_exists(db: SqliteDatabase) -> bool:
    """Whether the node's database has an outbox (without making one)."""
    return _table_exists(db, "trace_outbox_agents")


def _table_exists(db: SqliteDatabase, name: str) -> bool:
    found = db.fetch_one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return found is not None


@dataclass(frozen=True, slots=True)
class Tail:
    """Where an agent's next record chains on: its last queued record (or the head the service
    reported), and whether that record must be signed again (`stale`)."""

    seq: int
    hash: bytes
    time: int
    stale: bool = False


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One queued record as stored."""

    pos: int
    record: str
    seq: int
    hash: bytes
    time: int
    made: int
    envelope: bytes
    disclosures: bytes | None
    attestation: bytes
    chain: bytes | None
    size: int
    attempts: int
    stale: bool

    @classmethod
    def from_sql(cls, row: Any) -> OutboxRow:
        return cls(
            row[0],
            row[1],
            row[2],
            bytes(row[3]),
            row[4],
            row[5],
            bytes(row[6]),
            None if row[7] is None else bytes(row[7]),
            bytes(row[8]),
            None if row[9] is None else bytes(row[9]),
            row[10],
            row[11],
            bool(row[12]),
        )


@dataclass(frozen=True, slots=True)
class RefusedRow:
    """A record set aside: what it was and why the service (or the client) refused it."""

    record: str
    agent: bytes
    seq: int
    time: int
    reason: str
    detail: str
    refused_at: int
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "seq": self.seq,
            "time": self.time,
            "reason": self.reason,
            "detail": self.detail,
            "refused_at": self.refused_at,
            "bytes": self.size,
        }


def row_size(verified: VerifiedRecord, chain: bytes | None) -> int:
    """The bytes a record takes in the outbox (what the bound counts)."""
    shown = verified.stored_disclosures
    return (
        len(verified.envelope)
        + (0 if shown is None else len(shown))
        + len(verified.attestation)
        + (0 if chain is None else len(chain))
    )


def mark_rotated(db: SqliteDatabase, agent: bytes, changes: int) -> None:
    """A rotation of `agent` retired the key of its history's first `changes` changes (in the
    rotation's transaction, on a node.db with an outbox; review 72e, tickets 2)."""
    db.execute(_ROTATED[0])  # a node.db whose outbox an earlier version made
    db.execute(
        "INSERT OR REPLACE INTO trace_outbox_rotated (agent, changes) VALUES (?, ?)",
        (agent, changes),
    )


class OutboxStore:
    """Statements over the outbox tables of `db` (made here on first use)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        for tables, schema in (
            (("trace_outbox_agents",), _SCHEMA),
            (("trace_outbox_sources", "trace_outbox_members"), _SOURCES),
            (("trace_outbox_held",), _HELD),
            (("trace_outbox_rotated",), _ROTATED),
        ):
            if not all(_table_exists(db, table) for table in tables):
                with db.transaction():  # each statement made to run again harmlessly
                    for statement in schema:
                        db.execute(statement)
                    if schema is _SOURCES:
                        self.recount()

    def recount(self) -> None:
        """Make the members' counters (trace_outbox_members) again from the rows (inside the
        caller's transaction). A troth that predates the counters (one release back) keeps
        trace_outbox_sources without moving them: run on this database, then this one again (a
        release rolled back and forward), its deliveries would count for their members for
        good — every member refused with nothing queued (review 22f). A process sending the
        outbox recounts once, when it opens it (troth.trace.outbox)."""
        for statement in _RECOUNT:
            self.db.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One unit of work (re-entrant: inside the caller's transaction, it joins it), with
        secure_delete on (module docstring: the connection keeps it)."""
        with self.db.transaction():
            self.db.execute("PRAGMA secure_delete = ON")
            yield

    def scrub(self) -> bool:
        """Truncate node.db's write-ahead log (a checkpoint, TRUNCATE): the old pages of rows
        deleted or redacted are in its frames. False when a reader keeps the log from being
        truncated (the next scrub does it). Outside a transaction only."""
        return self.db.truncate_wal()

    # -- reads --------------------------------------------------------------------------------

    def usage(self) -> tuple[int, int]:
        """Rows and bytes held, queued and set aside, every agent together (what the bound
        counts)."""
        row = self.db.fetch_one(
            "SELECT COALESCE(SUM(queued + refused), 0), "
            "COALESCE(SUM(queued_bytes + refused_bytes), 0) FROM trace_outbox_agents"
        )
        return int(row[0]), int(row[1])

    def source_usage(self, source: bytes) -> tuple[int, int]:
        """Rows and bytes held (queued and set aside) made on behalf of member `source`."""
        row = self.db.fetch_one(
            "SELECT rows, bytes FROM trace_outbox_members WHERE source = ?", (source,)
        )
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def members_usage(self) -> tuple[int, int]:
        """Rows and bytes held made on behalf of any member (TRACE_OUTBOX_MEMBERS_PERCENT)."""
        return self.source_usage(_ALL_MEMBERS)

    def rotated(self, agent: bytes) -> int:
        """How many of `agent`'s changes a rotation retired the key of (0: none recorded): a
        signer whose history holds no more predates it. Read as its type says: StorageError
        (node.db damaged) for anything but a whole number not below 0 (review 72j, rotated 1:
        a NULL failed `add` with a bare TypeError, a text was cast to some number)."""
        row = self.db.fetch_one(_ROTATED_COUNT, (agent,))
        if row is None:
            return 0
        changes = stored_whole(row[0], "trace_outbox_rotated count", self.db.path)
        if changes < 0:
            raise StorageError(
                f"{self.db.path} is damaged: its trace_outbox_rotated count is {changes}"
            )
        return changes

    def head(self, agent: bytes) -> Tail | None:
        """The head the service last reported for `agent` (None: none, or its log has none)."""
        row = self.db.fetch_one(
            "SELECT CAST(seq AS INTEGER), CAST(hash AS BLOB), CAST(time AS INTEGER) "
            "FROM trace_outbox_agents WHERE agent = ? AND seq IS NOT NULL",
            (agent,),
        )
        return None if row is None else Tail(row[0], bytes(row[1]), row[2])

    def tail(self, agent: bytes) -> Tail | None:
        """Where `agent`'s next record chains on: its last queued record, else the head."""
        row = self.db.fetch_one(
            "SELECT CAST(seq AS INTEGER), CAST(hash AS BLOB), CAST(time AS INTEGER), "
            "CAST(stale AS INTEGER) FROM trace_outbox WHERE agent = ? "
            "ORDER BY pos DESC LIMIT 1",
            (agent,),
        )
        if row is None:
            return self.head(agent)
        return Tail(row[0], bytes(row[1]), row[2], bool(row[3]))

    def first(self, agent: bytes, count: int, *, after: int = -1) -> list[OutboxRow]:
        """`agent`'s first `count` queued records (past position `after`), in order."""
        rows = self.db.fetch_all(
            _SELECT_ROWS + "WHERE agent = ? AND pos > ? ORDER BY pos LIMIT ?",
            (agent, after, count),
        )
        return [OutboxRow.from_sql(row) for row in rows]

    def sizes(self, agent: bytes, rows: Sequence[tuple[int, bytes]]) -> dict[int, int]:
        """The sizes of `agent`'s queued rows among `rows` (position, hash), by position: a
        row gone, or with another hash, is not there."""
        found: dict[int, int] = {}
        for pos, digest in rows:  # a batch's rows: at most TRACE_BATCH_RECORDS primary-key reads
            row = self.db.fetch_one(
                "SELECT CAST(size AS INTEGER) FROM trace_outbox WHERE pos = ? AND agent = ? "
                "AND CAST(hash AS BLOB) = ?",
                (pos, agent, digest),
            )
            if row is not None:
                found[pos] = int(row[0])
        return found

    def pending(self, agent: bytes) -> int:
        """How many of `agent`'s records are queued."""
        row = self.db.fetch_one("SELECT queued FROM trace_outbox_agents WHERE agent = ?", (agent,))
        return 0 if row is None else int(row[0])

    def counts(self) -> list[tuple[bytes, int, int, int, int]]:
        """Per agent: records and bytes queued, records and bytes set aside."""
        rows = self.db.fetch_all(
            "SELECT agent, queued, queued_bytes, refused, refused_bytes FROM trace_outbox_agents "
            "WHERE queued > 0 OR refused > 0 ORDER BY agent"
        )
        return [(bytes(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def refused(self, *, agent: bytes | None = None, limit: int = 100) -> list[RefusedRow]:
        """The records set aside, oldest first (at most `limit`)."""
        if agent is None:
            rows = self.db.fetch_all(_SELECT_REFUSED + "ORDER BY refused_at, pos LIMIT ?", (limit,))
        else:
            rows = self.db.fetch_all(
                _SELECT_REFUSED + "WHERE agent = ? ORDER BY refused_at, pos LIMIT ?",
                (agent, limit),
            )
        return [RefusedRow(r[0], bytes(r[1]), r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]

    # -- changes (inside the caller's transaction) ------------------------------------------

    def insert(
        self,
        agent: bytes,
        verified: VerifiedRecord,
        *,
        made: int,
        chain: bytes | None,
        stale: bool,
        source: bytes | None = None,
    ) -> int:
        """Queue `verified` after `agent`'s last record (made on behalf of member `source`, if
        any); its size. ConflictError when a record under its id is queued or set aside
        (any agent's: record ids are unique in the outbox)."""
        record = verified.record
        size = row_size(verified, chain)
        if self.db.fetch_one(
            "SELECT 1 FROM trace_outbox_refused WHERE record = ?", (record.id,)
        ):  # ids are unique in the outbox, queued and set aside, every agent's together: a
            # record set aside is keyed by its id (review 37b, trace 2: another's replaced it)
            raise ConflictError(f"record {record.id} is set aside in the outbox")
        self.db.execute(
            "INSERT INTO trace_outbox (agent, record, seq, hash, time, made, envelope, "
            "disclosures, attestation, chain, size, stale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?)",
            (
                agent,
                record.id,
                record.seq,
                verified.hash,
                record.time,
                made,
                verified.envelope,
                verified.stored_disclosures,
                verified.attestation,
                chain,
                size,
                int(stale),
            ),
        )
        if source is not None:
            self.db.execute(
                "INSERT INTO trace_outbox_sources (record, source, size) VALUES (?, ?, ?)",
                (record.id, source, size),
            )
            self._count_member(source, 1, size)
        self._count(agent, queued=1, queued_bytes=size)
        return size

    def replace(self, agent: bytes, row: OutboxRow, verified: VerifiedRecord) -> bool:
        """`row` signed again (`verified`): no longer stale. Whether the row was there."""
        size = row_size(verified, row.chain)
        changed = self.db.execute(
            "UPDATE trace_outbox SET seq = ?, hash = ?, time = ?, envelope = ?, "
            "attestation = ?, size = ?, stale = 0 WHERE pos = ? AND agent = ? "
            "AND CAST(hash AS BLOB) = ?",
            (
                verified.record.seq,
                verified.hash,
                verified.record.time,
                verified.envelope,
                verified.attestation,
                size,
                row.pos,
                agent,
                row.hash,
            ),
        ).rowcount
        if changed:
            self._count(agent, queued_bytes=size - row.size)
            member = self.db.fetch_one(
                "UPDATE trace_outbox_sources SET size = ? WHERE record = ? RETURNING source",
                (size, row.record),
            )
            if member is not None:
                self._count_member(bytes(member[0]), 0, size - row.size)
        return bool(changed)

    def delete(self, agent: bytes, pos: int, digest: bytes, record: str) -> bool:
        """A delivered record leaves the outbox; whether it was there: with those bytes, or
        signed again since under its id `record` (a rotation signed it while it was in flight:
        the log holds it all the same; review 69o, wave1c 3)."""
        row = self.db.fetch_one(
            "DELETE FROM trace_outbox WHERE pos = ? AND agent = ? AND (CAST(hash AS BLOB) = ? "
            "OR record = ?) RETURNING CAST(size AS INTEGER), record",
            (pos, agent, digest, record),
        )
        if row is not None:
            self._count(agent, queued=-1, queued_bytes=-int(row[0]))
            self._forget_source(row[1])
        return row is not None

    def set_aside(
        self, agent: bytes, pos: int, digest: bytes, *, reason: str, detail: str, now: int
    ) -> bool:
        """Move a refused record to `trace_outbox_refused`; whether it was there."""
        row = self.db.fetch_one(
            _SELECT_ROWS + "WHERE pos = ? AND agent = ? AND CAST(hash AS BLOB) = ?",
            (pos, agent, digest),
        )
        if row is None:
            return False
        found = OutboxRow.from_sql(row)
        self.db.execute("DELETE FROM trace_outbox WHERE pos = ?", (pos,))
        self.db.execute(
            "INSERT OR REPLACE INTO trace_outbox_refused (record, agent, pos, seq, time, made, "
            "envelope, disclosures, attestation, chain, size, reason, detail, refused_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                found.record,
                agent,
                found.pos,
                found.seq,
                found.time,
                found.made,
                found.envelope,
                found.disclosures,
                found.attestation,
                found.chain,
                found.size,
                reason,
                detail[: limits.MAX_TRACE_REFUSAL_DETAIL],  # kept outside the bound: cut
                now,
            ),
        )
        self._count(agent, queued=-1, queued_bytes=-found.size, refused=1, refused_bytes=found.size)
        return True

    def retry(self, agent: bytes, pos: int, digest: bytes, attempts: int) -> None:
        """A refused record will be signed again, its refusals counted `attempts`
        (troth.trace.batcher.attempts_after)."""
        self.db.execute(
            "UPDATE trace_outbox SET attempts = ? WHERE pos = ? AND agent = ? "
            "AND CAST(hash AS BLOB) = ?",
            (attempts, pos, agent, digest),
        )

    def mark_stale(self, agent: bytes, start: int) -> None:
        """`agent`'s records from position `start` on must be signed again before sending."""
        self.db.execute(
            "UPDATE trace_outbox SET stale = 1 WHERE agent = ? AND pos >= ? AND stale = 0",
            (agent, start),
        )

    def set_head(self, agent: bytes, head: Head | None) -> None:
        """The head the service reported for `agent`."""
        self._ensure(agent)
        values = (None, None, None) if head is None else (head.seq, head.hash, head.time)
        self.db.execute(
            "UPDATE trace_outbox_agents SET seq = ?, hash = ?, time = ? WHERE agent = ?",
            (*values, agent),
        )

    def held(self, agent: bytes) -> dict[str, Any] | None:
        """Why and since when `agent`'s first queued records wait out a refusal, as the last
        answer left it (None: it held none back)."""
        row = self.db.fetch_one(
            "SELECT reason, detail, record, since FROM trace_outbox_held WHERE agent = ?",
            (agent,),
        )
        if row is None:
            return None
        return {"reason": row[0], "detail": row[1], "record": row[2], "since": row[3]}

    def set_held(self, agent: bytes, held: dict[str, Any] | None) -> None:
        """Keep what `held` says of `agent`'s records waiting out a refusal (None: none)."""
        if held is None:
            self.db.execute("DELETE FROM trace_outbox_held WHERE agent = ?", (agent,))
            return
        self.db.execute(
            "INSERT OR REPLACE INTO trace_outbox_held (agent, reason, detail, record, since) "
            "VALUES (?, ?, ?, ?, ?)",
            (agent, held["reason"], held["detail"], held["record"], held["since"]),
        )

    def discard(self, records: Sequence[str]) -> list[str]:
        """Delete set-aside records (an operator's decision, troth trace outbox --discard);
        the ids deleted. Once the caller's transaction commits, node.db's write-ahead log is
        truncated (`scrub`, best effort: a reader holding it, or a busy database, leaves it to
        the next)."""
        gone: list[str] = []
        for record in records:
            row = self.db.fetch_one(
                "DELETE FROM trace_outbox_refused WHERE record = ? RETURNING agent, size",
                (record,),
            )
            if row is not None:
                self._count(bytes(row[0]), refused=-1, refused_bytes=-int(row[1]))
                self._forget_source(record)
                gone.append(record)
        self.db.after_commit(self._scrub_quietly)
        return gone

    def requeue(self, records: Sequence[str]) -> list[str]:
        """Queue set-aside records again, each after its agent's last queued record, to be
        signed again when it comes up (an operator's decision, troth trace outbox --requeue:
        a record a version before review 68i set aside `record dated before a checkpoint that
        precedes it`); the ids queued. Only a row whose envelope verifies as its agent's, by a
        key of its current change, is signed again when it is sent (`TraceOutbox._resign`);
        the bounds are unchanged (they count queued and set-aside records together)."""
        done: list[str] = []
        for record in records:
            row = self.db.fetch_one(
                "DELETE FROM trace_outbox_refused WHERE record = ? RETURNING agent, seq, "
                "time, made, envelope, disclosures, attestation, chain, size",
                (record,),
            )
            if row is None:
                continue
            agent, size, digest = bytes(row[0]), int(row[8]), b""
            with suppress(TraceError):  # undecodable: set aside again when it comes up
                digest = sha256(open_envelope(bytes(row[4]))[1])
            self.db.execute(
                "INSERT INTO trace_outbox (agent, record, seq, hash, time, made, envelope, "
                "disclosures, attestation, chain, size, stale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?, 1)",
                (agent, record, row[1], digest, *row[2:8], size),
            )
            self._count(agent, queued=1, queued_bytes=size, refused=-1, refused_bytes=-size)
            done.append(record)
        return done

    def _scrub_quietly(self) -> None:
        with suppress(StorageError):  # a busy database: the next scrub does it
            self.scrub()

    def redact(self, record: str, name: str, agent: bytes | None = None) -> bool | None:
        """Delete disclosed value `name` of record `record` (of `agent`, if given), queued or
        set aside: whether one was held; None when the outbox holds no such record. A queued
        record is then sent without it (the log keeps its commitment, as after a redaction
        there). Inside the caller's transaction; `scrub()` after it."""
        found: bool | None = None
        for held_at, (select, update) in enumerate(_REDACT):
            row = self.db.fetch_one(select, (record,))
            if row is None or (agent is not None and bytes(row[0]) != agent):
                continue
            old = None if row[1] is None else bytes(row[1])
            held = decode_disclosures(old)
            if held.pop(name, None) is None:
                found = bool(found)
                continue
            new = encode_disclosures(held)
            change = (0 if new is None else len(new)) - (0 if old is None else len(old))
            self.db.execute(update, (new, change, record))
            if held_at == 0:  # queued
                self._count(bytes(row[0]), queued_bytes=change)
            else:
                self._count(bytes(row[0]), refused_bytes=change)
            member = self.db.fetch_one(
                "UPDATE trace_outbox_sources SET size = size + ? WHERE record = ? RETURNING source",
                (change, record),
            )
            if member is not None:
                self._count_member(bytes(member[0]), 0, change)
            found = True
        return found

    def _forget_source(self, record: str) -> None:
        gone = self.db.fetch_one(
            "DELETE FROM trace_outbox_sources WHERE record = ? RETURNING source, size", (record,)
        )
        if gone is not None:
            self._count_member(bytes(gone[0]), -1, -int(gone[1]))

    def _count_member(self, source: bytes, rows: int, size: int) -> None:
        """`source`'s counters, and every member's together, moved by `rows` and `size`."""
        for key in (source, _ALL_MEMBERS):
            self.db.execute(
                "INSERT INTO trace_outbox_members (source, rows, bytes) VALUES (?, ?, ?) "
                "ON CONFLICT (source) DO UPDATE SET rows = rows + excluded.rows, "
                "bytes = bytes + excluded.bytes",
                (key, rows, size),
            )

    def _ensure(self, agent: bytes) -> None:
        """`agent`'s count row, made unless there. An upsert on the agent (troth's key of the
        table in every version), not `INSERT OR IGNORE`, which met every uniqueness the table
        holds: a restored copy's made with `queued UNIQUE` and a row counting 0 had the row
        ignored, no record counted, the outbox unbounded (review 73p, planted5 1)."""
        try:
            self.db.execute(
                "INSERT INTO trace_outbox_agents (agent) VALUES (?) ON CONFLICT (agent) DO NOTHING",
                (agent,),
            )
        except ConflictError as exc:  # a uniqueness troth does not make (a copy's)
            raise StorageError(
                f"{self.db.path}: trace_outbox_agents holds a uniqueness troth never makes "
                f'({exc}): make it again as troth makes it (docs/storage.md, "Rollback guard")'
            ) from exc

    def _count(
        self,
        agent: bytes,
        *,
        queued: int = 0,
        queued_bytes: int = 0,
        refused: int = 0,
        refused_bytes: int = 0,
    ) -> None:
        self._ensure(agent)
        self.db.execute(
            "UPDATE trace_outbox_agents SET queued = queued + ?, queued_bytes = queued_bytes + ?, "
            "refused = refused + ?, refused_bytes = refused_bytes + ? WHERE agent = ?",
            (queued, queued_bytes, refused, refused_bytes, agent),
        )
