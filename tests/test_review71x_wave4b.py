"""Review 71x (wave4b): 71q's restore-hold release, collector cache and typed storage reads.

Findings:

- 71x wave4b 1: a local identity's change rows (`identity_changes`, node.db) were read untyped
  (`bytes(row[0])`, `int(row[0])`): a change hash stored as TEXT failed bare (TypeError), one
  stored as an INTEGER n became n zero bytes (a hash of zeros compared, or a MemoryError), a
  body, signature or index likewise; now StorageError naming the damage (docs/storage.md,
  "Damaged rows").
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.test_review71c_rows import node_db  # noqa: F401 - a fixture
from troth.errors import StorageError
from troth.storage import SqliteDatabase
from troth.storage.sqlite_stores import SqliteIdentityStore

_ID = b"\x01" * 32
_HASH = b"\x02" * 32
_READS: dict[str, Callable[[SqliteIdentityStore], object]] = {
    "change_hash": lambda store: store.change_hash(_ID, 0),
    "change_rows": lambda store: store.change_rows(_ID, 0, 0),
    "change_index": lambda store: store.change_index(_ID, _HASH),
}
_DAMAGE = {
    "hash text": "UPDATE identity_changes SET change_hash = 'abc'",
    "hash integer": "UPDATE identity_changes SET change_hash = 32",
    "body text": "UPDATE identity_changes SET body = 'abc'",
    "signature integer": "UPDATE identity_changes SET signature = 7",
    "previous huge": "UPDATE identity_changes SET previous_signature = zeroblob(1 << 20)",
    "index text": "UPDATE identity_changes SET idx = 'abc'",
}
_CASES = [  # each read and the damage of a column it reads (the row still found)
    *(("change_hash", damage) for damage in ("hash text", "hash integer")),
    *(("change_rows", damage) for damage in sorted(_DAMAGE) if damage != "index text"),
    ("change_index", "index text"),
]


@pytest.mark.parametrize(("read", "damage"), _CASES)
def test_damaged_change_row_is_storage_error(
    node_db: SqliteDatabase,  # noqa: F811 - the fixture
    read: str,
    damage: str,
) -> None:
    """71x wave4b 1: a damaged `identity_changes` row read by the identity store is
    StorageError naming node.db (a change hash of TEXT was a bare TypeError, an INTEGER n made
    n zero bytes: compared as a hash of zeros), not a value taken for what it is not."""
    store = SqliteIdentityStore(node_db)
    with node_db.transaction():
        store.append_changes(_ID, [(0, b"body", b"sig", b"prev", _HASH)])
        node_db.execute(_DAMAGE[damage])
    with pytest.raises(StorageError, match="damaged"):
        _READS[read](store)
