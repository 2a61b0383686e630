"""Review 72b (area: holds, the typed reads around them): a read of node.db 71c to 71x left
untyped, attacked as a writer of node.db.

5. (the change counts a trace log asks for read untyped, low) `change_counts` (the newest
   change of each signer `IdentityService.newest_changes` hands the trace log) read
   `identities.changes` as `int()` of what SQLite returned, where `change_count` beside it
   reads it typed (review 71c, rows 7): TEXT 'abc' failed bare (ValueError), a BLOB b'7' was
   read as 7 (a damaged count healed), a REAL 5.5 truncated to 5. Now
   StorageError naming the damage, as `change_count`.
"""

from __future__ import annotations

import pytest

from tests.test_review71c_rows import node_db  # noqa: F401 - a fixture
from troth.errors import StorageError
from troth.storage import SqliteDatabase
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
