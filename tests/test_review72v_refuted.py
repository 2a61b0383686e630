"""Review 72v, planted: attacks on a restore's checks of a copy's schema that did not work
(tests/test_review72v_planted.py has those that did)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, release_authority, restore_db, restores_found
from tests.test_review57i_restore import _refused, _restored_after_rotation
from tests.test_review72b_release import early_hold, edit
from tests.test_review72v_planted import tickets_made
from troth.errors import AuthorityError, StorageError
from troth.node import open_node
from troth.storage import SqliteDatabase
from troth.storage.planted import planted

_FIRST_AUDIT = """
CREATE TABLE IF NOT EXISTS secret_audit (
    seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,
    identity BLOB, secret TEXT, lease BLOB, detail TEXT NOT NULL, digest BLOB
);
CREATE TRIGGER IF NOT EXISTS secret_audit_no_update BEFORE UPDATE ON secret_audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS secret_audit_no_delete BEFORE DELETE ON secret_audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
"""
"""The audit log's schema as the first troth to make it wrote it (commit c5e18040)."""


def test_the_audit_triggers_an_older_troth_made_are_troths(tmp_path: Path) -> None:
    """72v refuted: a node.db whose audit triggers the first troth made (its text, as written
    then) is not refused after an upgrade: the text SQLite keeps is the same word for word;
    one of them written otherwise (another case) is another's."""
    path = tmp_path / "node.db"
    conn = sqlite3.connect(path)
    conn.executescript(_FIRST_AUDIT)
    conn.close()
    db = SqliteDatabase(path)
    try:
        assert planted(db) == []
        with db.transaction():
            db.execute("DROP TRIGGER secret_audit_no_delete")
            db.execute(
                "CREATE TRIGGER secret_audit_no_delete BEFORE DELETE ON secret_audit "
                "BEGIN select RAISE(ABORT, 'the audit log is append-only'); END"
            )
        assert planted(db) == ["trigger 'secret_audit_no_delete'"]
    finally:
        db.close()


def test_a_unique_index_on_the_holds_fails_the_restore_closed(troth_home: Path) -> None:
    """72v refuted: a copy holding `identity_restore_holds` as troth makes it, with a UNIQUE
    index on `held_at` beside it (an index carries no conflict clause): the restore's second
    hold, at the same time, fails the restore's transaction (StorageError), nothing recorded,
    no identity signs; dropped, the restore holds both."""
    path = _restored_after_rotation(troth_home)
    made = early_hold(b"\x00")[0]
    edit(path, made, ("CREATE UNIQUE INDEX one ON identity_restore_holds (held_at)", ()))
    with open_node("laptop") as node, pytest.raises(StorageError):
        node.identities.signer("courier", now=NOW + 30)
    assert restores_found(path) == []
    edit(path, ("DROP INDEX one", ()))
    with open_node("laptop") as node:
        for name in ("courier", "clerk"):
            _refused(lambda name=name: node.identities.signer(name, now=NOW + 30))


def test_a_check_in_the_copy_fails_the_authority_restore_closed(
    troth_home: Path, tmp_path: Path
) -> None:
    """72v refuted: a copy put back holding `tickets` made with `CHECK (uses_left <> 0)` (a
    CHECK, a generated column, STRICT or a type change can make a write fail, never skip or
    undo it): the restore's `SET uses_left = 0` fails its transaction (StorageError), nothing
    recorded, so the authority stays failed closed (the ticket redeemed after the copy is not
    redeemed again) until the table is made again."""
    with troth.Node.open("acme") as acme:
        later = acme.create_authority().ticket({"team.name": "y"}, uses=2)
    path = node_db(troth_home, "acme")
    copy = tmp_path / "acme.db"
    copy_db(path, copy)
    with troth.Node.open("b") as b:
        b.enroll(later)
    tickets_made(copy, ", CHECK (uses_left <> 0)")
    restore_db(path, copy)
    with pytest.raises(StorageError):
        release_authority(troth_home, "acme")
    with troth.Node.open("c") as c, pytest.raises((AuthorityError, StorageError)):
        c.enroll(later)
    assert restores_found(path) == []
