"""Review 54t, rollback 1: the rollback guard's `policy` scope (review 54p) counted a node's
bundles from its first install under a troth that knows it, so a node.db holding bundles an
older troth stored had no `policy` entry until then: a copy taken in between (the upgrade
done, no bundle installed since), put back with the guard deleted once a newer bundle was
installed, read as a fresh store, its older bundle deciding. Deleting the guard fails closed
for a store holding something to replay (docs/storage.md, "Rollback guard": the attacker);
bundles held are such a thing, so the table arms the scope when it opens holding some."""

from __future__ import annotations

from pathlib import Path

from tests.support.backups import copy_db, restore_db
from tests.support.gates import T, make_world
from troth.gates import BundleStore, SqliteBundleTable
from troth.storage import SqliteDatabase
from troth.storage.rollback import guard_path, read_guard


def test_a_copy_from_an_upgraded_store_restored_with_its_guard_deleted_is_found(
    tmp_path: Path,
) -> None:
    world = make_world()
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    db = SqliteDatabase(path)
    BundleStore(world.verifier, SqliteBundleTable(db)).accept(
        world.bundle(revision=1), feeds=world.feeds(), now=T + 5
    )
    db.execute("DELETE FROM rollback_counters")  # as an older troth left it
    guard_path(path).unlink()
    table = SqliteBundleTable(db)  # the upgraded troth opens it
    assert table.restored is None
    assert read_guard(guard_path(path)) == {"policy": 0}  # armed: a copy from now replays
    copy_db(path, copy)
    BundleStore(world.verifier, table).accept(
        world.bundle(revision=2), feeds=world.feeds(), now=T + 6
    )
    db.close()
    restore_db(path, copy)
    guard_path(path).unlink()
    db = SqliteDatabase(path)
    table = SqliteBundleTable(db)
    assert table.restored is not None
    assert table.held_back() == {world.authority.identifier.digest}
    db.close()


def test_an_empty_table_arms_nothing(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    assert SqliteBundleTable(db).restored is None
    assert read_guard(guard_path(path)) is None
    db.close()
