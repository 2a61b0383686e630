"""What a restored copy of node.db may carry that troth never makes, refused when the restore
is found (review 72k, holds2 4 and 5; docs/storage.md, "Rollback guard"): a trigger, and a
table a restore writes made otherwise.

A trigger runs with every write to its table, in the writer's transaction: one a copy of
node.db carries when it is put back (made in the copy, say, with the table it fires on)
undoes what the restore found fails closed on as it is written (an identity's hold deleted as
the restore writes it: the identity the copy holds, rotated since, signed with the keys its
rotation retired), or later, with any write. troth makes two, the secrets audit log's
(`secret_audit`: no row updated or deleted); a restore found on a copy holding any other is
refused (`RollbackGuard.check`), nothing recorded, until the operator drops it. So too a
table the restore writes (`identity_restore_holds`, `authority_restore_hold`, ...) the copy
holds made otherwise (`check_made`): one whose `held_at` is `UNIQUE ON CONFLICT REPLACE` kept
one identity's hold of all those the restore wrote at one time.
"""

from __future__ import annotations

import functools
import sqlite3
from typing import Final

from troth.errors import StorageError
from troth.storage.row_types import text_sql
from troth.storage.sqlite import SqliteDatabase

__all__ = ["AUDIT_TABLE", "AUDIT_TRIGGERS", "check_made", "planted_triggers"]

AUDIT_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS secret_audit (\n"
    "    seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,\n"
    "    identity BLOB, secret TEXT, lease BLOB, detail TEXT NOT NULL, digest BLOB\n"
    ")"
)
"""The secrets audit log's table (troth.secrets.audit)."""
AUDIT_TRIGGERS: Final = tuple(
    f"CREATE TRIGGER IF NOT EXISTS secret_audit_no_{action.lower()} BEFORE {action} ON "
    "secret_audit\nBEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    for action in ("UPDATE", "DELETE")
)
"""The triggers troth makes: the audit log's rows are never updated nor deleted."""
_TRIGGER_TEXT_BYTES: Final = 4096  # troth's are ~120 bytes; a longer one is another
_TRIGGERS: Final = (
    f"SELECT {text_sql('name', _TRIGGER_TEXT_BYTES)}, "  # noqa: S608
    f"{text_sql('sql', _TRIGGER_TEXT_BYTES)} FROM sqlite_master WHERE type = 'trigger' "
    "ORDER BY name"
)


@functools.cache
def _made() -> frozenset[bytes]:
    """The text SQLite keeps (`sqlite_master.sql`, its bytes) of each trigger troth makes."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(AUDIT_TABLE)
        for statement in AUDIT_TRIGGERS:
            conn.execute(statement)
        rows = conn.execute(_TRIGGERS).fetchall()
        return frozenset(sql for _, sql in rows if isinstance(sql, bytes))
    finally:
        conn.close()


def planted_triggers(db: SqliteDatabase) -> list[str]:
    """The names of the triggers `db` holds that troth does not make (its audit log's, word
    for word), in order; a name that is not text of at most 4 KiB shown as its type."""
    made = _made()
    return [
        name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        for name, sql in db.fetch_all(_TRIGGERS)
        if sql not in made
    ]


_SCHEMA_ROW: Final = (
    f"SELECT type, {text_sql('sql', _TRIGGER_TEXT_BYTES)} FROM sqlite_master WHERE name = ?"  # noqa: S608
)


@functools.cache
def _made_table(create: str) -> tuple[str, bytes]:
    """The name of the table `create` makes, and the text SQLite keeps of it."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(create)
        ((name, sql),) = conn.execute(
            f"SELECT name, {text_sql('sql', _TRIGGER_TEXT_BYTES)} FROM sqlite_master "  # noqa: S608
            "WHERE type = 'table'"
        ).fetchall()
        return str(name), bytes(sql)
    finally:
        conn.close()


def check_made(db: SqliteDatabase, create: str) -> None:
    """Before a restore found writes the table `create` makes (`CREATE TABLE IF NOT EXISTS`):
    StorageError where `db` holds that name made otherwise (another definition, a view), which
    may undo what the restore holds (module docstring); none, or troth's, passes."""
    name, made = _made_table(create)
    row = db.fetch_one(_SCHEMA_ROW, (name,))
    if row is None or (row[0] == "table" and row[1] == made):
        return
    raise StorageError(
        f"{db.path} is a restored copy holding {name!r} made as troth never makes it: it may "
        f"undo what the restore holds; drop it (sqlite3 node.db 'DROP {str(row[0]).upper()} "
        f'{name}\') and open node.db again (docs/storage.md, "Rollback guard")'
    )
