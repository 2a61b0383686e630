"""Review 54p refuted: attacks on the rollback guard's `policy` scope the code already met
(troth.storage.rollback, troth.gates.store; docs/storage.md "Rollback guard")."""

from __future__ import annotations

from pathlib import Path

from tests.support.backups import copy_db, restore_db
from tests.support.gates import T, make_world
from troth.gates import BundleStore, SqliteBundleTable
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, guard_path, read_guard


def test_a_copy_restored_with_its_guard_deleted_is_found(tmp_path: Path) -> None:
    """A copy holding a bundle, put back with the guard deleted (no newer bundle since): the
    store counted its bundle, so no guard is a restore, and the bundle is held back."""
    world = make_world()
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    db = SqliteDatabase(path)
    BundleStore(world.verifier, SqliteBundleTable(db)).accept(
        world.bundle(revision=1), feeds=world.feeds(), now=T + 5
    )
    copy_db(path, copy)
    db.close()
    restore_db(path, copy)
    guard_path(path).unlink()
    db = SqliteDatabase(path)
    table = SqliteBundleTable(db)
    assert table.restored is not None
    assert table.restored.guard is None
    assert table.held_back() == {world.authority.identifier.digest}
    assert read_guard(guard_path(path)) == {"policy": 1}
    db.close()


def test_a_guard_raised_by_another_scope_is_no_restore_of_bundles(tmp_path: Path) -> None:
    """The other scopes' raises keep the `policy` entry (a raise writes every scope's
    count): bundles stored, then an authority scope counted, finds nothing restored."""
    world = make_world()
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    BundleStore(world.verifier, SqliteBundleTable(db)).accept(
        world.bundle(revision=1), feeds=world.feeds(), now=T + 5
    )
    with db.transaction():
        RollbackGuard(db, "authority").bump()
    assert read_guard(guard_path(path)) == {"authority": 1, "policy": 1}
    assert SqliteBundleTable(db).restored is None
    db.close()
