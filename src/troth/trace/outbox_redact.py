"""Deleting a disclosed value from the trace outbox (`troth trace redact`), and truncating
node.db's write-ahead log, whose frames still hold the old pages of rows deleted or redacted
(troth.trace.outbox's module docstring, "Disclosed values"; review 46e). Moved out of
troth.trace.outbox (which re-exports both) to keep it under the file cap (review 70o).
"""

from __future__ import annotations

from troth.errors import StorageError
from troth.faults import crash_point
from troth.identity import Identifier
from troth.storage import SqliteDatabase
from troth.trace.outbox_store import OutboxStore, outbox_exists

__all__ = ["redact_outbox", "scrub_quietly"]


def scrub_quietly(store: OutboxStore) -> bool:
    """`store.scrub()`, a failure (a busy or read-only database) reported as False: the next
    delivery, opening or redaction scrubs again."""
    if store.db.in_transaction:
        return False
    try:
        return store.scrub()
    except StorageError:
        return False


def redact_outbox(
    db: SqliteDatabase, record_id: str, name: str, *, agent: Identifier | None = None
) -> bool | None:
    """Delete disclosed value `name` of record `record_id` (of `agent`, if given) where the
    node's outbox holds it, queued or set aside, and truncate node.db's write-ahead log (the
    old pages of that row, and of rows delivered before, are in its frames): whether a value
    was held; None when the outbox holds no such record (the log is truncated all the same, best
    effort: a reader holding it is no failure then).
    A queued record is then delivered without the value (the log keeps its commitment). A
    batch a running node sent already carries the value as it was read (its resends do not:
    `TraceOutbox.next_batch` reads a changed row again).

    StorageError when a reader keeps the log from being truncated: the value is deleted from
    the row, the command is run again. Crash-safe: the value's deletion is one transaction, and
    a run killed after it is completed by running it again (or by the node's next opening of
    the outbox, or next delivery)."""
    if not outbox_exists(db):
        return None
    store = OutboxStore(db)
    with store.transaction():
        held = store.redact(record_id, name, None if agent is None else agent.digest)
        crash_point("trace.outbox-redact.before-commit")
    crash_point("trace.outbox-redact.after-commit")  # the old page still in the WAL
    if held is None:  # no copy here: truncating for rows delivered before is best effort
        scrub_quietly(store)  # (a reader of node.db failed `troth trace redact` of a record
        return None  # only the log held, before the log was redacted: review 46f, trace 1)
    if not store.scrub():
        raise StorageError(
            f"{db.path}: the outbox's value is deleted, but a reader holds the write-ahead "
            "log: run it again"
        )
    return held
