"""Review 72z, planted2: what a restored copy of node.db may carry past 72v's refusal of
planted schema (troth.storage.planted; docs/storage.md, "Rollback guard")."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.backups import release_authority, restore_db, restores_found
from tests.test_review72v_planted import ticket_kept
from troth.errors import StorageError


def utf16(path: Path) -> None:
    """The SQLite database at `path` made again in UTF-16: the same schema, rows and version."""
    made = path.with_suffix(".utf16")
    source, target = sqlite3.connect(path), sqlite3.connect(made, isolation_level=None)
    try:
        target.execute("PRAGMA encoding = 'UTF-16le'")
        target.executescript(";\n".join(source.iterdump()))
        for pragma in ("user_version", "application_id"):
            (value,) = source.execute(f"PRAGMA {pragma}").fetchone()
            target.execute(f"PRAGMA {pragma} = {int(value)}")
    finally:
        source.close()
        target.close()
    made.replace(path)


def test_a_conflict_clause_in_a_utf16_copy_is_found(troth_home: Path, tmp_path: Path) -> None:
    """72z planted2 1: 72v planted 2's copy (`tickets` made with `UNIQUE (uses_left) ON
    CONFLICT IGNORE`, a used ticket in it) made again in UTF-16 (`PRAGMA encoding`, the same
    schema and rows): `planted` read each definition's bytes as UTF-8, and UTF-16's (a NUL
    after each ASCII letter) are valid UTF-8 of no word longer than a letter, so no clause
    was found; SQLite applies it all the same: the restore's `UPDATE tickets SET uses_left =
    0` was ignored for a ticket of two uses, which once the authority's hold was released was
    redeemed a third time. troth makes node.db in UTF-8 only: now a restore found on a copy
    in another encoding is refused (StorageError naming it, nothing recorded)."""
    path, copy, _ = ticket_kept(troth_home, tmp_path)
    utf16(copy)
    restore_db(path, copy)
    with pytest.raises(StorageError, match="UTF-16le"):
        release_authority(troth_home, "acme")
    assert restores_found(path) == []
