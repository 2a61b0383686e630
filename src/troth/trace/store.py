"""The trace log's storage: `<node>/trace.db`, a SQLite database of its own (docs/traces.md,
"Storage").

It is a `troth.storage.SqliteDatabase` with this schema and `durability = "full"` (WAL with
`synchronous = FULL`): a commit is fsynced before COMMIT returns, so an acknowledged append
survives a crash of the process and a power loss; group commit (`troth.trace.log`) shares one
fsync among concurrent appenders. One connection per thread; SQLite's locking (BEGIN IMMEDIATE,
busy timeout) orders writers across threads and processes. Nothing here repairs damage: what
does not add up is reported by the verifier.

    meta          name -> value: 'size' (records appended), 'log_identity' (32-byte identifier)
    leaves        idx, record id, leaf hash, envelope (the exact bytes appended), disclosures
                  (JSON {field: [salt hex, value text]}, NULL when none: rewriting it without
                  a field redacts that value), agent (32-byte digest of the signer); (record
                  id, agent) is unique: ids are per agent (schema 4). Record ids are
                  time-ordered (UUIDv7 layout, increasing within a second for one process's
                  recorders), so their index grows at its right edge
    nodes         (level, idx) -> hash of the perfect subtree, for levels 4, 8, 12, ...
    agents        agent -> seq, hash, time and key change of its latest record
    histories     identifier -> newest verified history (agents and the log identity)
    history_windows  (identifier, last change) -> an older history the newest no longer holds
    attestations  keyid -> (identifier, attestation) of every key that signed a record or a
                  checkpoint (indexed by identifier too)
    chains        digest -> delegation chain bytes that records name with at = "log"
    checkpoints   size -> root, time, signed note
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from troth import limits
from troth.errors import ConflictError, IdentityError
from troth.identity import Identifier
from troth.storage import SqliteDatabase
from troth.storage.sqlite import Migration

__all__ = [
    "NODE_LEVEL_STRIDE",
    "TRACE_MIGRATIONS",
    "TraceStore",
    "envelope_agent",
    "insert_rows",
    "open_trace_store",
    "select_in",
]

_ID_CHUNK: Final = 500  # keys per lookup (SQLite allows 999 parameters at least)
_INSERT_PARAMS: Final = 999  # values per multi-row INSERT

NODE_LEVEL_STRIDE: Final = 4
"""Perfect subtrees are stored at levels 4, 8, 12, ...: 1/15 of a row per append; any other
subtree is at most 15 stored hashes away."""


def envelope_agent(envelope: bytes) -> bytes:
    """The 32-byte digest of the agent an envelope's payload names, read without verifying
    anything (b"" when it names none: the verifier reports such a row); what a schema 3 log's
    rows are filed under when migrated."""
    try:
        payload = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
        return Identifier.parse(payload["agent"]).digest
    except (ValueError, TypeError, KeyError, IdentityError, binascii.Error, RecursionError):
        return b""


_ENVELOPE_READ: Final = (
    f"typeof(envelope) = 'blob' AND length(envelope) <= {int(limits.MAX_TRACE_ENVELOPE_BYTES)}"
)
"""The envelopes the schema 4 migration reads (the others are no record's)."""


def _ids_per_agent(conn: sqlite3.Connection) -> None:
    """Schema 4: `leaves` files each record under (record id, agent), unique together, in
    place of a record id unique in the log; the rows are copied with their agent, in SQLite
    (the agent read from the envelope alone). A row whose envelope is not one (another type, or
    past what an envelope takes) is copied unread, filed under no agent (b""), as one that
    does not decode: the verifier reports it (review 70i, leftovers 2: each row was fetched
    whole, a crafted one of a few GB with it)."""
    conn.execute(
        "CREATE TABLE leaves_4 ("
        "idx INTEGER PRIMARY KEY, record_id TEXT NOT NULL, leaf BLOB NOT NULL, "
        "envelope BLOB NOT NULL, disclosures BLOB, agent BLOB NOT NULL, "
        "UNIQUE (record_id, agent))"
    )
    copy = "INSERT INTO leaves_4 SELECT idx, record_id, leaf, envelope, disclosures, ? FROM leaves"
    conn.execute(f"{copy} WHERE NOT ({_ENVELOPE_READ})", (b"",))
    rows = conn.execute(f"SELECT idx, envelope FROM leaves WHERE {_ENVELOPE_READ}")  # noqa: S608
    while chunk := rows.fetchmany(_ID_CHUNK):
        conn.executemany(
            f"{copy} WHERE idx = ?", [(envelope_agent(envelope), idx) for idx, envelope in chunk]
        )
    conn.execute("DROP TABLE leaves")
    conn.execute("ALTER TABLE leaves_4 RENAME TO leaves")


TRACE_MIGRATIONS: Final[tuple[Migration, ...]] = (
    """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE leaves (
        idx INTEGER PRIMARY KEY, record_id TEXT NOT NULL UNIQUE, leaf BLOB NOT NULL,
        envelope BLOB NOT NULL, disclosures BLOB
    );
    CREATE TABLE nodes (
        level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID;
    CREATE TABLE agents (
        agent BLOB PRIMARY KEY, seq INTEGER NOT NULL, hash BLOB NOT NULL, time INTEGER NOT NULL,
        change INTEGER NOT NULL
    );
    CREATE TABLE histories (
        identifier BLOB PRIMARY KEY, history BLOB NOT NULL, changes INTEGER NOT NULL,
        current BLOB NOT NULL
    );
    CREATE TABLE attestations (
        keyid TEXT PRIMARY KEY, identifier BLOB NOT NULL, attestation BLOB NOT NULL
    );
    CREATE TABLE chains (digest BLOB PRIMARY KEY, chain BLOB NOT NULL);
    CREATE TABLE checkpoints (
        size INTEGER PRIMARY KEY, root BLOB NOT NULL, time INTEGER NOT NULL, note BLOB NOT NULL
    );
    INSERT INTO meta (name, value) VALUES ('size', 0);
    """,
    # the histories a signer's newest one no longer holds (it rotated past 64 changes since):
    # kept to resolve the keys of its older records (docs/traces.md, "Signer histories")
    """
    CREATE TABLE history_windows (
        identifier BLOB NOT NULL, last INTEGER NOT NULL, history BLOB NOT NULL,
        PRIMARY KEY (identifier, last)
    ) WITHOUT ROWID;
    """,
    # one identity's keys (the log's own, for a proof bundle) without reading every agent's:
    # a member's `prove` read them all (review 34g, trace 2); one entry per key, not per record
    """
    CREATE INDEX IF NOT EXISTS attestations_by_identifier ON attestations (identifier);
    """,
    # record ids are unique per agent, not per log (docs/formats.md, "Trace records": another
    # agent that learnt an id first kept the record out: review 34g, trace 5)
    _ids_per_agent,
)


class TraceStore(SqliteDatabase):
    """trace.db. The trace log runs its statements on the connection itself (multi-row
    inserts, its commit leader's `dedicated` one), not through `execute` and `fetch_*`: a
    failure of one of them inside `transaction()` or `transaction_on` (a full disk, an I/O
    error, a damaged page, a locked file, a constraint) is mapped as theirs are, to
    StorageError (ConflictError for a constraint), where it leaves the transaction, once
    rolled back. It was a bare sqlite3 error: a node's "internal error", `troth trace`'s exit
    70 (review 56v, trace 1)."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.failures(), super().transaction():
            yield

    @contextmanager
    def transaction_on(self, conn: sqlite3.Connection) -> Iterator[None]:
        with self.failures(), super().transaction_on(conn):
            yield

    @contextmanager
    def failures(self) -> Iterator[None]:
        """A statement run on a connection of this file inside the block fails as `execute`
        would: StorageError naming the file, ConflictError for a constraint."""
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"{self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc


def open_trace_store(path: str | Path) -> TraceStore:
    """Open (creating it if needed) the trace log database at `path`."""
    return TraceStore(path, durability="full", migrations=TRACE_MIGRATIONS)


def insert_rows(
    conn: sqlite3.Connection, table: str, rows: Sequence[tuple[Any, ...]], *, verb: str = "INSERT"
) -> None:
    """Insert `rows` with one multi-row statement per chunk: executemany would run (and let
    go of the GIL for) one statement per row, and a thread busy signing takes the GIL back
    for up to a switch interval each time."""
    if not rows:
        return
    width = len(rows[0])
    per = _INSERT_PARAMS // width
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        marks = ",".join(["(" + ",".join("?" * width) + ")"] * len(chunk))
        values = [value for row in chunk for value in row]
        conn.execute(f"{verb} INTO {table} VALUES {marks}", values)


def select_in(conn: sqlite3.Connection, sql: str, keys: list[Any]) -> Iterator[Any]:
    """The rows of `sql` + " IN (keys)", one query per chunk of keys."""
    for start in range(0, len(keys), _ID_CHUNK):
        chunk = keys[start : start + _ID_CHUNK]
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(f"{sql} IN ({marks})", chunk).fetchall()
