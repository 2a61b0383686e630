"""The rows of the log's own file its writer reads (append, checkpoint, redact), read as its
reader reads them (`troth.trace.stored`): each column not fetched past its bound, a damaged
one refused with TraceError (OVER_LIMIT past its bound, MALFORMED of another type), never
healed. The writer fetched them whole: one crafted row of a few MB in trace.db (an agent's head
hash, a signer's stored history, a checkpoint's root or note, a record's disclosures or the
envelope a resolution's parent link names, the log's `size`) was held in memory by the next
append, checkpoint or redaction before anything judged it (review 70i, leftovers 2)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Final

from troth import limits
from troth.errors import TraceError, TraceFailure
from troth.trace.record import Disclosure
from troth.trace.store import select_in
from troth.trace.stored import (
    STORED_DIGEST_BYTES,
    STORED_DISCLOSURES_BYTES,
    decode_disclosures,
    stored_bytes,
    stored_column,
)

__all__ = [
    "FRONTIER_SQL",
    "SIZE_SQL",
    "HeadRow",
    "agent_head",
    "agent_heads",
    "known_histories",
    "known_history",
    "parent_envelope",
    "stored_checkpoint",
    "stored_disclosures",
    "stored_history",
    "stored_int",
    "stored_int_column",
    "stored_known",
    "taken_ids",
    "times_of_checkpoints",
]

_F = TraceFailure

HeadRow = tuple[int, bytes, int, int]
"""An agent's head as the `agents` table keeps it: (seq, record hash, time, key change)."""


def stored_int_column(expr: str) -> str:
    """The SQL that reads an INTEGER `expr` (a column, a scalar subquery) as `stored_int` takes
    it: its type, then its value, NULL unless it is an INTEGER (a crafted row's TEXT or BLOB
    of any size is loaded in SQLite, never handed to Python)."""
    return f"typeof({expr}), CASE WHEN typeof({expr}) = 'integer' THEN {expr} END"


def stored_int(kind: object, value: object, what: str, *, empty: bool = False) -> int | None:
    """An INTEGER read by `stored_int_column`; None for NULL when `empty` (no row); TraceError
    MALFORMED naming `what` otherwise."""
    if empty and kind == "null":
        return None
    if kind != "integer" or type(value) is not int:
        raise TraceError(_F.MALFORMED, f"the stored {what} is not a whole number ({kind})")
    return value


def _whole(kind: object, value: object, what: str) -> int:
    number = stored_int(kind, value, what)
    if number is None:  # (never: not `empty`)
        raise TraceError(_F.MALFORMED, f"the stored {what} is missing")
    return number


_HEAD: Final = ", ".join(
    (
        stored_int_column("seq"),
        stored_column("hash", STORED_DIGEST_BYTES),
        stored_int_column("time"),
        stored_int_column("change"),
    )
)
_HEAD_OF: Final = f"SELECT {_HEAD} FROM agents WHERE agent = ?"  # noqa: S608
_HEADS_OF: Final = f"SELECT agent, {_HEAD} FROM agents WHERE agent"  # noqa: S608


def _head(row: Sequence[Any]) -> HeadRow:
    return (
        _whole(row[0], row[1], "head's seq"),
        stored_bytes(row[2], row[3], "head's hash"),
        _whole(row[4], row[5], "head's time"),
        _whole(row[6], row[7], "head's key change"),
    )


def agent_head(conn: sqlite3.Connection, agent: bytes) -> HeadRow | None:
    """The head the log keeps of `agent` (a digest), None when it has none."""
    row = conn.execute(_HEAD_OF, (agent,)).fetchone()
    return None if row is None else _head(row)


def agent_heads(conn: sqlite3.Connection, agents: list[bytes]) -> Iterator[tuple[bytes, HeadRow]]:
    """The heads the log keeps of `agents` (one query per chunk)."""
    for agent, *rest in select_in(conn, _HEADS_OF, agents):
        yield bytes(agent), _head(rest)


_KNOWN: Final = f"{stored_int_column('changes')}, {stored_column('current', STORED_DIGEST_BYTES)}"
_KNOWN_OF: Final = f"SELECT {_KNOWN} FROM histories WHERE identifier = ?"  # noqa: S608
_KNOWNS_OF: Final = f"SELECT identifier, {_KNOWN} FROM histories WHERE identifier"  # noqa: S608


def stored_known(row: Sequence[Any]) -> tuple[int, bytes]:
    """(change count, current change hash) of a signer's stored history, from `_KNOWN`."""
    return _whole(row[0], row[1], "history's count"), stored_bytes(row[2], row[3], "history hash")


def known_history(conn: sqlite3.Connection, digest: bytes) -> tuple[int, bytes] | None:
    """(change count, current change hash) the log keeps of signer `digest`; None: none."""
    row = conn.execute(_KNOWN_OF, (digest,)).fetchone()
    return None if row is None else stored_known(row)


def known_histories(
    conn: sqlite3.Connection, digests: list[bytes]
) -> Iterator[tuple[bytes, tuple[int, bytes]]]:
    """`known_history` of each of `digests` the log keeps (one query per chunk)."""
    for identifier, *rest in select_in(conn, _KNOWNS_OF, digests):
        yield bytes(identifier), stored_known(rest)


_HISTORY_OF: Final = (
    f"SELECT {stored_column('history', limits.MAX_IDENTITY_HISTORY_BYTES)} "  # noqa: S608
    "FROM histories WHERE identifier = ?"
)


def stored_history(conn: sqlite3.Connection, digest: bytes) -> bytes:
    """The history the log keeps of signer `digest` (its row read by `known_history`)."""
    row = conn.execute(_HISTORY_OF, (digest,)).fetchone()
    if row is None:
        raise TraceError(_F.MALFORMED, "the stored history is missing")
    return stored_bytes(row[0], row[1], "history")


_TAKEN: Final = (
    f"SELECT record_id, {stored_column('agent', STORED_DIGEST_BYTES)} "  # noqa: S608
    "FROM leaves WHERE record_id"
)


def taken_ids(conn: sqlite3.Connection, ids: list[str]) -> Iterator[tuple[str, bytes]]:
    """(record id, agent digest) of the records the log holds under `ids`."""
    for record_id, kind, agent in select_in(conn, _TAKEN, ids):
        yield record_id, stored_bytes(kind, agent, "agent")


_PARENT: Final = (
    f"SELECT {stored_column('envelope', limits.MAX_TRACE_ENVELOPE_BYTES)} "  # noqa: S608
    "FROM leaves WHERE record_id = ? AND agent = ?"
)


def parent_envelope(conn: sqlite3.Connection, key: tuple[str, bytes]) -> bytes | None:
    """The envelope of the record (id, agent digest) `key`; None when the log holds none."""
    row = conn.execute(_PARENT, key).fetchone()
    return None if row is None else stored_bytes(row[0], row[1], "envelope")


_CHECKPOINT: Final = (
    f"SELECT {stored_column('root', STORED_DIGEST_BYTES)}, "  # noqa: S608
    f"{stored_column('note', limits.MAX_TRACE_CHECKPOINT_BYTES)} "
    "FROM checkpoints WHERE size = ?"
)


def stored_checkpoint(conn: sqlite3.Connection, size: int) -> tuple[bytes, bytes] | None:
    """(root, note) of the checkpoint of `size` the log keeps; None: none."""
    row = conn.execute(_CHECKPOINT, (size,)).fetchone()
    if row is None:
        return None
    return stored_bytes(row[0], row[1], "root"), stored_bytes(row[2], row[3], "note")


_TIMES: Final = (
    f"SELECT {stored_int_column('(SELECT max(time) FROM checkpoints)')}, "  # noqa: S608
    f"{stored_int_column('(SELECT max(time) FROM agents)')}"
)


def times_of_checkpoints(conn: sqlite3.Connection) -> tuple[int | None, int | None]:
    """The newest checkpoint's time and the newest record's (of the agents' heads); None: none
    (an INTEGER column's max is a TEXT or a BLOB when a row holds one: MALFORMED)."""
    row = conn.execute(_TIMES).fetchone()
    return (
        stored_int(row[0], row[1], "checkpoint time", empty=True),
        stored_int(row[2], row[3], "head's time", empty=True),
    )


_SIZE: Final = "(SELECT value FROM meta WHERE name = 'size')"
FRONTIER_SQL: Final = (
    f"SELECT {stored_int_column(_SIZE)}, "  # noqa: S608
    "(SELECT max(idx) FROM leaves), (SELECT max(size) FROM checkpoints), "
    f"{stored_int_column('(SELECT time FROM checkpoints ORDER BY size DESC LIMIT 1)')}"
)
"""The log's size, its last index, its newest checkpoint's size and time (`stored_int`)."""
SIZE_SQL: Final = f"SELECT {stored_int_column(_SIZE)}"
"""The log's size (`stored_int`)."""

_DISCLOSURES_AT: Final = (
    f"SELECT {stored_column('disclosures', STORED_DISCLOSURES_BYTES)} "  # noqa: S608
    "FROM leaves WHERE idx = ?"
)


def stored_disclosures(conn: sqlite3.Connection, index: int | None) -> dict[str, Disclosure]:
    """The disclosures kept with the record at `index` (none for a NULL row or no record)."""
    row = conn.execute(_DISCLOSURES_AT, (index,)).fetchone()
    if row is None or row[0] == "null":
        return {}
    return decode_disclosures(stored_bytes(row[0], row[1], "disclosures", index=index))
