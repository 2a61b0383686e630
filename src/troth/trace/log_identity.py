"""The log identity of a node's trace log: the unnamed local identity that signs its checkpoints,
made at the log's first opening and bound to it (`meta` row `log_identity` of trace.db;
docs/formats.md, "Trace log and checkpoints").

It lives in node.db, the binding in trace.db: two files, two commits. It was created (committed
in node.db), then bound, so a process killed in between left an identity no log names, its keys
in the vault and listed by `troth identity list`, one more at each such crash (review 54c, crash
2). Now the new identity is reserved in trace.db (`meta` row `log_identity_pending`) before
node.db commits it, and bound after: the next opening binds the reserved identity when node.db
holds it, else reserves a new one in its place (docs/storage.md, "Recovery rules").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from troth.errors import NotFound
from troth.faults import crash_point
from troth.identity import Identifier
from troth.identity.fresh import new_keys
from troth.storage import SqliteDatabase

if TYPE_CHECKING:
    from troth.node import Node

__all__ = ["bind_log_identity", "node_log_identity"]

_BOUND: Final = "log_identity"
_RESERVED: Final = "log_identity_pending"
_GET: Final = "SELECT value FROM meta WHERE name = ?"


def node_log_identity(node: Node, store: SqliteDatabase, *, now: int) -> Identifier:
    """The log identity of `node`'s trace log `store`: the one bound there; else the one a
    killed opening reserved, once node.db holds it; else a new unnamed local identity of the
    node, reserved before node.db commits it, then bound. Processes opening a new log at once
    each make one; the first bound is every one's (the others' stay unnamed, unused)."""
    row = store.fetch_one(_GET, (_BOUND,))
    if row is not None:
        return Identifier(bytes(row[0]))
    row = store.fetch_one(_GET, (_RESERVED,))
    if row is not None and _held(node, Identifier(bytes(row[0]))):
        return bind_log_identity(store, Identifier(bytes(row[0])))
    identities = node.identities
    # the identity's own transaction joins this one, whose failure before its commit deletes
    # the keys a vault outside node.db made for it (review 54l, trace 1: a PKCS#11 token kept
    # them when trace.db refused the reservation; troth.identity.fresh's rule)
    with new_keys(identities.store, identities.vault, identities.keys_in_store) as fresh:
        made = identities.create(now=now)
        fresh.add(made.primary_key, made.next_key)
        created = made.identifier
        with store.transaction():
            store.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                (_RESERVED, created.digest),
            )
        crash_point("trace.log-identity.after-reserve")  # reserved; not in node.db
    crash_point("trace.log-identity.before-bind")  # in node.db, reserved, not bound
    return bind_log_identity(store, created)


def bind_log_identity(store: SqliteDatabase, identifier: Identifier) -> Identifier:
    """Record `identifier` as the log identity of trace log `store` unless one is recorded
    (any reservation dropped); return the one recorded."""
    with store.transaction():
        store.execute("DELETE FROM meta WHERE name = ?", (_RESERVED,))
        row = store.fetch_one(_GET, (_BOUND,))
        if row is not None:
            return Identifier(bytes(row[0]))
        store.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (_BOUND, identifier.digest))
        return identifier


def _held(node: Node, identifier: Identifier) -> bool:
    """Whether `node` holds local identity `identifier` (its keys, in node.db)."""
    try:
        node.identities.find(str(identifier))
    except NotFound:
        return False
    return True
