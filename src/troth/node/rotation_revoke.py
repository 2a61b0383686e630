"""The leases a compromised rotation revokes at its node's broker, kept due in node.db until
revoked (review 67l, rotate 1).

A rotation as compromised on a broker node revokes there every lease whose chain names the
identity (review 67f, secrets 1: `Identities.rotate`, `troth identity rotate --compromised`),
after the rotation commits (before it, the copied key could lease again in between) and before
its announcement (review 68c, revoke 1). A process killed in between (SIGKILL, a power cut, a
Ctrl-C) left those leases live to their expiry, nothing recording that they were due. So the
revocation is recorded due before the rotation (`mark_due`: table `broker_revoke_due`, made on
first use, with the identity's change count then), deleted once done (`done`), and finished by
the node's broker at its start and at each maintenance round (`finish_due`) once the identity
holds more changes than recorded: the rotation committed. A rotation that failed is no
rotation: its row is deleted (`mark_due`'s caller); one whose process was killed before its
commit leaves its row, finished by the next rotation of the identity (deny when in doubt).
"""

from __future__ import annotations

from typing import Final

from troth.identity import Identifier
from troth.node.node import Node
from troth.secrets import Broker
from troth.secrets.wire import BROKER

__all__ = ["done", "due_identities", "failed", "finish_due", "mark_due"]

_CREATE: Final = (
    "CREATE TABLE IF NOT EXISTS broker_revoke_due "
    "(identity BLOB PRIMARY KEY, changes INTEGER NOT NULL, marked INTEGER NOT NULL DEFAULT -1) "
    "STRICT"
)
_TABLE: Final = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'broker_revoke_due'"


def mark_due(node: Node, ref: str) -> bytes | None:
    """Before a compromised rotation of local identity `ref`: on a broker node, its leases
    recorded due for revocation once its history holds more changes than now (the earliest
    count kept, and the latest count a rotation marked at: `marked`); the identity's digest,
    or None on a node that is no broker."""
    if BROKER not in node.config.services:
        return None
    record = node.identities.find(ref)
    with node.db.transaction():
        node.db.execute(_CREATE)
        _with_marked(node)
        node.db.execute(
            "INSERT INTO broker_revoke_due (identity, changes, marked) VALUES (?, ?, ?) "
            "ON CONFLICT (identity) DO UPDATE SET marked = max(marked, excluded.marked)",
            (record.identifier, record.changes, record.changes),
        )
    return record.identifier


def done(node: Node, identity: bytes, changes: int | None) -> None:
    """The revocation due for `identity` made once it held `changes` changes (None: it is
    held here no more): its row deleted, unless a rotation marked at `changes` or later (in
    flight, its commit to come: review 68c, revoke 2), whose row is then due beyond it."""
    with node.db.transaction():
        if node.db.fetch_one(_TABLE) is None:
            return
        _with_marked(node)
        if changes is not None:
            node.db.execute(
                "UPDATE broker_revoke_due SET changes = ? "
                "WHERE identity = ? AND marked >= ? AND changes < ?",
                (changes, identity, changes, changes),
            )
        node.db.execute(
            "DELETE FROM broker_revoke_due WHERE identity = ? AND marked < ?",
            (identity, changes if changes is not None else 1 << 62),
        )


def failed(node: Node, identity: bytes) -> None:
    """The compromised rotation of `identity` failed: its row deleted only while the identity
    holds no more changes than it records (none committed is due)."""
    with node.db.transaction():
        if node.db.fetch_one(_TABLE) is None:
            return
        record = node.identities.store.find_local(identifier=identity)
        changes = -1 if record is None else record.changes
        node.db.execute(
            "DELETE FROM broker_revoke_due WHERE identity = ? AND changes >= ?",
            (identity, changes),
        )


def _with_marked(node: Node) -> None:
    """A table made before review 68c (revoke 2) given its `marked` column (-1: none known)."""
    columns = {str(row[1]) for row in node.db.fetch_all("PRAGMA table_info(broker_revoke_due)")}
    if "marked" not in columns:
        node.db.execute(
            "ALTER TABLE broker_revoke_due ADD COLUMN marked INTEGER NOT NULL DEFAULT -1"
        )


def due_identities(node: Node) -> frozenset[Identifier]:
    """The identities whose compromised rotation committed and whose leases' revocation is not
    recorded done: those `finish_due` revokes (the broker denies them until it did)."""
    return frozenset(identity for identity, _record in _due(node))


def _due(node: Node) -> list[tuple[Identifier, int | None]]:
    """Each identity due (its rotation committed; one since deleted too: deny when in doubt)
    and its change count now (None: held here no more)."""
    if node.db.fetch_one(_TABLE) is None:
        return []
    due: list[tuple[Identifier, int | None]] = []
    for identity, changes in node.db.fetch_all(
        "SELECT identity, changes FROM broker_revoke_due ORDER BY identity"
    ):
        record = node.identities.store.find_local(identifier=bytes(identity))
        if record is not None and record.changes <= changes:
            continue  # not rotated yet: in progress, or killed before its commit
        due.append((Identifier(bytes(identity)), None if record is None else record.changes))
    return due


def finish_due(node: Node, broker: Broker, now: int) -> int:
    """Revoke, at `broker` (node `node`'s), the leases of each identity whose compromised
    rotation committed and whose revocation was not recorded done (its process killed in
    between), as `Broker.revoke_identity` (an identity since deleted too: deny when in doubt);
    each row then `done` (deleted, or due beyond the count read before the revocation); how
    many were revoked."""
    finished = 0
    for identity, changes in _due(node):
        broker.revoke_identity(identity, now=now)
        done(node, identity.digest, changes)
        finished += 1
    return finished
