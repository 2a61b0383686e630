"""The log identity of a node's trace log: the unnamed local identity that signs its checkpoints,
made at the log's first opening and bound to it (`meta` row `log_identity` of trace.db;
docs/formats.md, "Trace log and checkpoints").

It lives in node.db, the binding in trace.db: two files, two commits. It was created (committed
in node.db), then bound, so a process killed in between left an identity no log names, its keys
in the vault and listed by `troth identity list`, one more at each such crash (review 54c, crash
2). Now the new identity is reserved in trace.db (`meta` row `log_identity_pending`) before
node.db commits it, and bound after: the next opening binds the reserved identity when node.db
holds it, else reserves a new one in its place (docs/storage.md, "Recovery rules").

node.db also records, in the transaction that creates it, each log identity it made for the
node's log (table `trace_log_identities`; a log bound before review 58c is recorded at its next
opening). A trace.db that holds no log (deleted, emptied) while node.db made one, or that is
another log than every one node.db made (another node's file put in its place), is damage:
StorageError `trace log damaged`, nothing made in its place (review 58c, trace 1: a new log was
made under a new log identity, and `troth trace verify` answered `unanchored: 0 record(s)`,
exit 0, for a node whose records were gone).

A node with no backup of its lost log declares it lost (`declare_lost`, `troth trace
declare-lost`; review 58h, trace 2: it could never record, so never delegate, again): node.db
then names each log identity it made so far lost (table `trace_log_lost`, with when), those are
no longer its log's, and the next opening makes a new log as a first one does; `lost_logs`
lists them for `troth trace verify` to name, so the loss stays said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from troth.errors import NotFound, StorageError, TraceError
from troth.faults import crash_point
from troth.identity import Identifier
from troth.identity.fresh import new_keys
from troth.storage import SqliteDatabase
from troth.trace.log_rows import stored_int, stored_int_column
from troth.trace.stored import STORED_DIGEST_BYTES, stored_column, stored_identifier

if TYPE_CHECKING:
    from troth.node import Node

__all__ = ["bind_log_identity", "declare_lost", "lost_logs", "node_log_identity"]

_BOUND: Final = "log_identity"
_RESERVED: Final = "log_identity_pending"
_GET: Final = f"SELECT {stored_column('value', STORED_DIGEST_BYTES)} FROM meta WHERE name = ?"  # noqa: S608
"""A log identity row, never fetched past a digest's bound nor of another type than a BLOB
(`_identity`; review 70r, wave2a 1: fetched whole, TEXT failed bare, an INTEGER n was taken as
`bytes(n)`)."""
_NAMED: Final = stored_column("identifier", STORED_DIGEST_BYTES)
"""A log identity node.db names (made, or declared lost), read as `_GET` reads trace.db's
(review 70r, wave2a 1)."""
_TABLES: Final = (
    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
    " AND name IN ('trace_log_identities', 'trace_log_lost')"
)
_HELD: Final = "SELECT 1 FROM leaves UNION ALL SELECT 1 FROM checkpoints LIMIT 1"
_MADE: Final = "CREATE TABLE IF NOT EXISTS trace_log_identities (identifier BLOB PRIMARY KEY)"
_LOST: Final = (
    "CREATE TABLE IF NOT EXISTS trace_log_lost (identifier BLOB PRIMARY KEY, at INTEGER NOT NULL)"
)


def node_log_identity(node: Node, store: SqliteDatabase, *, now: int) -> Identifier:
    """The log identity of `node`'s trace log `store`: the one bound there; else the one a
    killed opening reserved, once node.db holds it; else a new unnamed local identity of the
    node, reserved before node.db commits it, then bound. Processes opening a new log at once
    each make one; the first bound is every one's (the others' stay unnamed, unused)."""
    # the bound row read before what node.db made: node.db commits a log identity before it
    # is bound, so read after, it holds it (review 75r, logbind 2: read the other way round, a
    # loss declared and a new log made in between named the node's own new log another's)
    row = store.fetch_one(_GET, (_BOUND,))
    if row is not None:
        return _recorded(node, _made(node), _identity(store, row))
    identities = node.identities
    # the identity's own transaction joins this one, whose failure before its commit deletes
    # the keys a vault outside node.db made for it (review 54l, trace 1: a PKCS#11 token kept
    # them when trace.db refused the reservation; troth.identity.fresh's rule); node.db's write
    # lock held, what trace.db holds and node.db made are read again (another process's log)
    with new_keys(identities.store, identities.vault, identities.keys_in_store) as fresh:
        # the reserved row read before the bound one: another opening binds its reservation
        # without node.db's lock, in one trace.db transaction, so a reservation gone by now is
        # bound by the second read (review 75p, logbind 1: read the other way round, a bind
        # between the two left neither seen and a log being made was named damaged)
        made = _made(node)
        reserved = store.fetch_one(_GET, (_RESERVED,))
        row = store.fetch_one(_GET, (_BOUND,))
        if row is not None:
            return _recorded(node, made, _identity(store, row))
        if reserved is not None and _held(node, _identity(store, reserved)):
            return _recorded(node, made, bind_log_identity(store, _identity(store, reserved)))
        if made:
            raise StorageError(
                f"trace log damaged: {store.path} holds no log, but this node's log"
                f" {_names(made)} was made there (the file deleted, emptied or replaced):"
                " restore it from a backup (with none, `troth trace declare-lost --node"
                f" {node.name}`); nothing is made in its place (review 58c, trace 1)"
            )
        created = identities.create(now=now)
        fresh.add(created.primary_key, created.next_key)
        node.db.execute(
            "INSERT INTO trace_log_identities (identifier) VALUES (?)", (created.identifier.digest,)
        )
        with store.transaction():
            store.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                (_RESERVED, created.identifier.digest),
            )
        crash_point("trace.log-identity.after-reserve")  # reserved; not in node.db
    crash_point("trace.log-identity.before-bind")  # in node.db, reserved, not bound
    return bind_log_identity(store, created.identifier)


def bind_log_identity(store: SqliteDatabase, identifier: Identifier) -> Identifier:
    """Record `identifier` as the log identity of trace log `store` unless one is recorded
    (any reservation dropped); return the one recorded."""
    with store.transaction():
        store.execute("DELETE FROM meta WHERE name = ?", (_RESERVED,))
        row = store.fetch_one(_GET, (_BOUND,))
        if row is not None:
            return _identity(store, row)
        store.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (_BOUND, identifier.digest))
        return identifier


def _made(node: Node) -> frozenset[Identifier]:
    """The log identities node.db made for the node's log, but those declared lost (the
    tables made on first use)."""
    if _missing(node):  # a write lock only once per node.db
        with node.db.transaction():
            node.db.execute(_MADE)
            node.db.execute(_LOST)
    rows = node.db.fetch_all(
        f"SELECT {_NAMED} FROM trace_log_identities WHERE identifier NOT IN"  # noqa: S608
        " (SELECT identifier FROM trace_log_lost)"
    )
    return frozenset(_named(node, row) for row in rows)


def declare_lost(node: Node, store: SqliteDatabase, *, now: int) -> frozenset[Identifier]:
    """Name `node`'s log lost at `now`, trace.db (`store`) holding no log (deleted, emptied):
    every log identity node.db made for it, so the next opening makes a new log. StorageError
    when trace.db holds a log (the node's own: nothing lost; another's: moved aside first),
    records or checkpoints of one (its log identity row missing), or node.db made none.
    Returns those named lost."""
    _made(node)  # its tables
    with node.db.transaction():
        made = _made(node)
        # reserved before bound, as an opening reads them (review 75r, logbind 1: bound first,
        # an opening's bind in between left neither seen, and the log being made was lost)
        row = store.fetch_one(_GET, (_RESERVED,))
        bound = store.fetch_one(_GET, (_BOUND,))
        row = bound or row
        if row is not None and _identity(store, row) in made:  # (a reservation: bound
            raise StorageError(  # at the next opening)
                f"{store.path} holds this node's log: nothing to declare lost"
            )
        if bound is not None:
            raise StorageError(
                f"{store.path} holds the log of {_identity(store, row)}, not this node's:"
                " move it aside first"
            )
        if not made:
            lost = lost_logs(node)  # run again (its first answer lost): say so (review 58w, cli 2)
            raise StorageError(
                "this node made no trace log to declare lost"
                if not lost
                else "this node's log "
                + ", ".join(f"{who} (at {at})" for who, at in lost)
                + " is already declared lost: its next record starts a new log"
            )
        if store.fetch_one(_HELD) is not None:  # its log identity row gone, not the log (58r,
            raise StorageError(  # trace 4: a new log was bound over its records)
                f"{store.path} holds records of a log (its log identity row missing): nothing"
                " to declare lost; restore it from a backup, or move it aside"
            )
        for identifier in made:
            node.db.execute(
                "INSERT OR IGNORE INTO trace_log_lost (identifier, at) VALUES (?, ?)",
                (identifier.digest, now),
            )
    return made


def lost_logs(node: Node) -> list[tuple[Identifier, int]]:
    """The log identities of `node`'s logs declared lost, with when, oldest first."""
    if _missing(node):
        return []
    rows = node.db.fetch_all(
        f"SELECT {_NAMED}, {stored_int_column('at')} FROM trace_log_lost "  # noqa: S608
        "ORDER BY at, identifier"
    )
    return [(_named(node, row), _at(node, row[2], row[3])) for row in rows]


def _recorded(node: Node, made: frozenset[Identifier], bound: Identifier) -> Identifier:
    """`bound` (trace.db's log identity) when node.db made it, recorded when node.db made none
    (a log bound before review 58c); StorageError when node.db made others only, or declared
    `bound` lost (review 58r, trace 1: the old file put back was taken back, still named lost,
    and with no log node.db made, a trace.db lost again made a new log unsaid)."""
    if bound in made:
        return bound
    lost = node.db.fetch_one(
        f"SELECT {stored_int_column('at')} FROM trace_log_lost WHERE identifier = ?",  # noqa: S608
        (bound.digest,),
    )
    if lost is not None:
        raise StorageError(
            f"trace log damaged: the trace log is the log of {bound}, which this node declared"
            f" lost at {_at(node, lost[0], lost[1])}: move it aside (review 58r, trace 1)"
        )
    if made:
        raise StorageError(
            f"trace log damaged: the trace log is the log of {bound}, not this node's log"
            f" {_names(made)} (another log's file put in its place; review 58c, trace 1)"
        )
    with node.db.transaction():
        node.db.execute(
            "INSERT OR IGNORE INTO trace_log_identities (identifier) VALUES (?)", (bound.digest,)
        )
    return bound


def _identity(store: SqliteDatabase, row: tuple[object, ...]) -> Identifier:
    """The log identity of a `_GET` row of trace log `store`; StorageError `trace log damaged`
    when the row is not one (past 32 bytes, not a BLOB: nothing is bound, made or recorded
    over it)."""
    try:
        return stored_identifier(str(row[0]), row[1], "log identity")
    except TraceError as exc:
        raise StorageError(
            f"trace log damaged: {store.path}: {exc} (review 70r, wave2a 1)"
        ) from None


def _named(node: Node, row: tuple[object, ...]) -> Identifier:
    """The log identity a `_NAMED` row of node.db names; StorageError `node.db damaged` when it
    is not one (it was taken as `bytes(...)`: review 70r, wave2a 1)."""
    try:
        return stored_identifier(str(row[0]), row[1], "log identity node.db made")
    except TraceError as exc:
        raise StorageError(f"node.db damaged: {node.db.path}: {exc}") from None


def _at(node: Node, kind: object, value: object) -> int:
    """When a log was declared lost (a `stored_int_column` pair); StorageError otherwise."""
    try:
        at = stored_int(kind, value, "time a log was declared lost")
    except TraceError as exc:
        raise StorageError(f"node.db damaged: {node.db.path}: {exc}") from None
    return 0 if at is None else at


def _missing(node: Node) -> bool:
    """Whether node.db lacks a table of these (an older node's)."""
    row = node.db.fetch_one(_TABLES)
    return row is None or int(row[0]) < 2


def _names(made: frozenset[Identifier]) -> str:
    return " or ".join(sorted(str(identifier) for identifier in made))


def _held(node: Node, identifier: Identifier) -> bool:
    """Whether `node` holds local identity `identifier` (its keys, in node.db)."""
    try:
        node.identities.find(str(identifier))
    except NotFound:
        return False
    return True
