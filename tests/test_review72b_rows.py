"""Review 72b (area: holds, the typed reads around them): a read of node.db 71c to 71x left
untyped, attacked as a writer of node.db.

5. (the change counts a trace log asks for read untyped, low) `change_counts` (the newest
   change of each signer `IdentityService.newest_changes` hands the trace log) read
   `identities.changes` as `int()` of what SQLite returned, where `change_count` beside it
   reads it typed (review 71c, rows 7): TEXT 'abc' failed bare (ValueError), a BLOB b'7' was
   read as 7 (a damaged count healed), a REAL 5.5 truncated to 5. Now
   StorageError naming the damage, as `change_count`.
7. (a published MCP server's record asked for by reading it whole, low) `check_room` and
   `record` asked whether a server's name has a record by fetching its recorded grantors:
   TEXT that is not UTF-8 failed the statement (the publication refused before the record
   could be replaced), a 1 MiB value was read whole at each publication (71x wave4b 4 bounded
   `get` only). Now `SELECT 1`.
"""

from __future__ import annotations

import pytest

from tests.test_review71c_rows import node_db  # noqa: F401 - a fixture
from troth.errors import StorageError
from troth.storage import SqliteDatabase
from troth.storage.sqlite_mcp import SqliteMcpGrantors
from troth.storage.sqlite_stores import SqliteIdentityStore

_ID = b"\x01" * 32


@pytest.mark.parametrize("changes", ["'abc'", "x'37'", "5.5"])
def test_a_damaged_change_count_is_refused_in_a_batch_too(
    node_db: SqliteDatabase,  # noqa: F811 - the fixture imported above
    changes: str,
) -> None:
    """72b rows 5: `change_counts` of an identity whose `changes` is TEXT, a BLOB or a REAL
    failed bare or read a damaged count as a number; now StorageError, as `change_count`."""
    node_db.execute(
        f"INSERT INTO identities (identifier, history, changes, updated_at) "  # noqa: S608
        f"VALUES (?, x'00', {changes}, 5)",
        (_ID,),
    )
    store = SqliteIdentityStore(node_db)
    with pytest.raises(StorageError, match="is damaged: its"):
        store.change_count(_ID)
    with pytest.raises(StorageError, match="is damaged: its"):
        store.change_counts([_ID])


def test_sound_change_counts_read_as_written(
    node_db: SqliteDatabase,  # noqa: F811 - the fixture imported above
) -> None:
    """72b rows 5: the typed read keeps what troth writes."""
    store = SqliteIdentityStore(node_db)
    store.insert_history(_ID, b"\x00", 3, 5)
    assert store.change_counts([_ID, b"\x02" * 32]) == {_ID: 3}


def test_a_recorded_servers_room_is_checked_without_reading_its_grantors(
    node_db: SqliteDatabase,  # noqa: F811 - the fixture imported above
) -> None:
    """72b rows 7: whether a published MCP server's name has a record (`check_room`, before
    each publication, and `record`) was asked by fetching its recorded grantors whole: TEXT
    that is not UTF-8 failed the statement (StorageError: the publication of that name
    refused before its record could be replaced; a 1 MiB value was read whole each time,
    unobservable here: 71x wave4b 4 bounded `get` only). Now `SELECT 1`: the name has a
    record, which the publication replaces."""
    node_db.execute(
        "INSERT INTO mcp_grantors (name, grantors, recorded_at) "
        "VALUES ('s', CAST(x'ff' AS TEXT), 5)"
    )
    store = SqliteMcpGrantors(node_db)
    store.check_room("s", limit=1)
    store.record("s", ["T" + "a" * 64], now=6, limit=1)
    assert store.get("s") == ("T" + "a" * 64,)
