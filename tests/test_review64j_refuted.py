"""Review 64j, refuted: attacks on the rollback guard's store id (version 4) and on the hosted
feed's restored path that did not work (each test fails if the defence it names breaks).

- Counting on another node's node.db before any owner checks it: the raise keeps the guard's
  id (a bound guard's id never changes), so the next check still finds it.
- A version 4 guard's newer slot torn: the record before it is the guard (in-place writes in
  turn, as for 128-byte slots), never a restore.
- A version 4 guard cut to version 3's size (256 bytes), or its id's bytes changed: no guard /
  another node's, failed closed, never read as current.
- The hosted feed growing as usual (its line extends the held one) revokes nothing again.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.conftest import NOW
from tests.support.backups import copy_db, restore_db
from tests.support.nodes import MemNet, run_memnet
from troth import limits
from troth.storage import SqliteDatabase
from troth.storage.rollback import (
    RollbackGuard,
    decode_store,
    encode_guard,
    guard_path,
    read_guard,
)


def _node(path: Path, **writes: int) -> SqliteDatabase:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(path)
    for scope, count in writes.items():
        for _ in range(count):
            with db.transaction():
                RollbackGuard(db, scope).bump()
    return db


def test_a_count_on_another_nodes_store_before_its_check_keeps_the_guards_id(
    tmp_path: Path,
) -> None:
    mine = _node(tmp_path / "mine" / "node.db", authority=1)
    bound = decode_store(guard_path(mine.path).read_bytes())
    mine.close()
    _node(tmp_path / "other" / "node.db", authority=3).close()
    copy_db(tmp_path / "other" / "node.db", tmp_path / "copy.db")
    restore_db(tmp_path / "mine" / "node.db", tmp_path / "copy.db")
    db = SqliteDatabase(tmp_path / "mine" / "node.db")
    try:
        with db.transaction():  # the broker counts first, unchecked
            RollbackGuard(db, "broker").bump()
        assert decode_store(guard_path(db.path).read_bytes()) == bound
        found = RollbackGuard(db, "authority").check(NOW, lambda: 1)
        assert found is not None
        assert found.another
    finally:
        db.close()


def test_a_torn_newer_slot_of_version_4_leaves_the_record_before_it(tmp_path: Path) -> None:
    db = _node(tmp_path / "node.db", identity=3)
    path = guard_path(db.path)
    try:
        data = bytearray(path.read_bytes())
        assert len(data) == limits.MAX_ROLLBACK_GUARD_BOUND_BYTES
        with db.transaction():
            RollbackGuard(db, "identity").bump()  # record 5, written over record 3's slot
        newer = bytearray(path.read_bytes())
        start = 0 if newer[:256] != data[:256] else 256
        newer[start + 30 : start + 60] = os.urandom(30)
        path.write_bytes(bytes(newer))
        assert read_guard(path) == {"identity": 3}
        assert RollbackGuard(db, "identity").check(NOW, lambda: 1) is None  # ahead: raised
        assert read_guard(path) == {"identity": 4}
    finally:
        db.close()


def test_a_version_4_guard_cut_or_its_id_changed_fails_closed(tmp_path: Path) -> None:
    db = _node(tmp_path / "node.db", authority=2)
    path = guard_path(db.path)
    whole = path.read_bytes()
    try:
        path.write_bytes(whole[:256])  # version 3's size: no guard
        assert read_guard(path) is None
        found = RollbackGuard(db, "authority").check(NOW, lambda: 1)
        assert found is not None
        assert not found.another
    finally:
        db.close()
    db = _node(tmp_path / "b" / "node.db", authority=2)
    path = guard_path(db.path)
    try:
        store = decode_store(path.read_bytes())
        assert store is not None
        path.write_bytes(encode_guard({"authority": 2}, 9, store=bytes(x ^ 1 for x in store)))
        found = RollbackGuard(db, "authority").check(NOW, lambda: 1)
        assert found is not None
        assert found.another
    finally:
        db.close()


def test_a_hosted_feed_growing_as_usual_revokes_nothing_again(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a = await net.member("a")
        c = await net.member("c")
        authority = net.authority
        authority.revoke_identity(net.identifier(a), now=net.clock.now())
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        before = hub.trust.feeds[authority.identifier].count
        authority.revoke_identity(net.identifier(c), now=net.clock.now())
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        await asyncio.sleep(0)
        assert hub.trust.feeds[authority.identifier].count == before + 1
        assert authority.store.revocation_tip()[0] == before + 1

    run_memnet(test, tmp_path / "home", budget=30)
