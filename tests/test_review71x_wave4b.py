"""Review 71x (wave4b): 71q's restore-hold release, collector cache and typed storage reads.

Findings:

- 71x wave4b 2: what a restore found keeps of the copy (`identity_restore_feeds`,
  `identity_restore_rotated`) held damaged: the release of a member failed with StorageError,
  vouched too; now no feed node.db holds counts, one pulled does, the vouch releases it.
- 71x wave4b 4: a published MCP server's recorded grantors read untyped (a BLOB read as its
  repr, TEXT naming none as a record of no grantors, 1 MiB fetched whole); now StorageError.
- 71x wave4b 3: the checkpoint a local identity's presented history is cut at read its
  authority untyped (a TEXT `feed_entries` authority failed bare, an INTEGER n named as n zero
  bytes); now StorageError.
- 71x wave4b 1: a local identity's change rows (`identity_changes`, node.db) were read untyped
  (`bytes(row[0])`, `int(row[0])`): a change hash stored as TEXT failed bare (TypeError), one
  stored as an INTEGER n became n zero bytes (a hash of zeros compared, or a MemoryError), a
  body, signature or index likewise; now StorageError naming the damage (docs/storage.md,
  "Damaged rows").
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run
from tests.test_review58b_release import _remote_acme
from tests.test_review58g_release import _acme_and_agent
from tests.test_review71c_rows import node_db as fresh_db  # noqa: F401 - a fixture
from troth.clock import FixedClock
from troth.errors import IdentityError, IdentityFailure, StorageError
from troth.node import open_node
from troth.node.release import release_restored
from troth.storage import SqliteDatabase
from troth.storage.sqlite_mcp import SqliteMcpGrantors
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
    fresh_db: SqliteDatabase,  # noqa: F811 - the fixture
    read: str,
    damage: str,
) -> None:
    """71x wave4b 1: a damaged `identity_changes` row read by the identity store is
    StorageError naming node.db (a change hash of TEXT was a bare TypeError, an INTEGER n made
    n zero bytes: compared as a hash of zeros), not a value taken for what it is not."""
    store = SqliteIdentityStore(fresh_db)
    with fresh_db.transaction():
        store.append_changes(_ID, [(0, b"body", b"sig", b"prev", _HASH)])
        fresh_db.execute(_DAMAGE[damage])
    with pytest.raises(StorageError, match="damaged"):
        _READS[read](store)


def _restored_member(home: Path, scratch: Path) -> Path:
    """Node `agent`, its identity a member of acme (acme made remote: no pull), put back to a
    copy taken before `aide` rotated, the restore found now; node.db's path."""
    _acme_and_agent(scratch, member="agent")
    path = node_db(home, "agent")
    copy_db(path, scratch / "agent.db")
    run("identity", "rotate", "aide", "--node", "agent")
    restore_db(path, scratch / "agent.db")
    _remote_acme(held_at=int(time.time()))
    return path


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE identity_restore_feeds SET issued_at = 'abc'",
        "INSERT INTO identity_restore_rotated (raised_at) VALUES ('abc')",
    ],
)
def test_a_damaged_restore_date_is_released_on_the_vouch(
    troth_home: Path, tmp_path: Path, damage: str
) -> None:
    """71x wave4b 2: what a restore found keeps of the copy (its feeds' dates,
    `identity_restore_feeds`; the last rotation it lacks, `identity_restore_rotated`) held
    damaged in node.db: the release failed with StorageError, vouched too (the only way out
    an edit of node.db), as a damaged hold's time did before review 71q, wave3a 1. Now no feed
    node.db holds counts (its floor cannot be read), and the vouch releases it."""
    path = _restored_member(troth_home, tmp_path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM identity_restore_feeds").fetchone()[0] > 0
        db.execute(damage)
    clock = FixedClock(int(time.time()))
    with open_node("agent") as node:
        with pytest.raises(IdentityError) as refused:
            release_restored(node, "agent", clock=clock)
        assert refused.value.reason is IdentityFailure.ROLLBACK
        released = release_restored(node, "agent", clock=clock, vouch=True)
    assert released.released
    assert released.vouched
    assert [f.fresh for f in released.feeds] == [False]


@pytest.mark.parametrize("authority", ["'abc'", "32"])
def test_a_damaged_checkpoints_authority_is_storage_error(
    fresh_db: SqliteDatabase,  # noqa: F811 - the fixture
    authority: str,
) -> None:
    """71x wave4b 3: the newest supersession naming a local identity's own change (the
    checkpoint its presented history is cut at) read its authority untyped (`bytes(row[0])`):
    a `feed_entries` authority stored as TEXT (and the identity's `held_credentials` row of it
    so too) failed bare (TypeError), an INTEGER n was handed on as n zero bytes, named as the
    checkpoint's authority. Now StorageError naming node.db."""
    store = SqliteIdentityStore(fresh_db)
    with fresh_db.transaction():
        store.append_changes(_ID, [(0, b"body", b"sig", None, _HASH)])
        fresh_db.execute(
            f"INSERT INTO feed_entries VALUES ({authority}, 1, 3, ?, 1, ?)",  # noqa: S608
            (_ID, _HASH),
        )
        fresh_db.execute(
            f"INSERT INTO held_credentials VALUES (?, x'01', x'02', {authority}, 0, 0)",  # noqa: S608
            (_ID,),
        )
    with pytest.raises(StorageError, match="damaged"):
        store.checkpoint(_ID)


@pytest.mark.parametrize(
    "grantors", ["x'01'", "''", "' '", "CAST(zeroblob(1 << 20) AS TEXT) || 'a'"]
)
def test_a_damaged_mcp_grantors_record_is_storage_error(
    fresh_db: SqliteDatabase,  # noqa: F811 - the fixture
    grantors: str,
) -> None:
    """71x wave4b 4: a published MCP server's recorded grantors (`mcp_grantors`, node.db) were
    read untyped (`str(row[0]).split()`): a BLOB was read as its Python repr ("b'\\x01'", then
    parsed as an identifier), TEXT naming no authority (which
    `record` never writes) as a record of no grantors, a TEXT of 1 MiB fetched whole. Now
    StorageError naming node.db."""
    store = SqliteMcpGrantors(fresh_db)
    store.record("shop", ["did:troth:a"], now=1, limit=4)
    fresh_db.execute(f"UPDATE mcp_grantors SET grantors = {grantors}")  # noqa: S608
    with pytest.raises(StorageError, match="damaged"):
        store.get("shop")
