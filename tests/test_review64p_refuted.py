"""Review 64p: attacks on review 64j's fixes that did not work (each test would fail if the
defence it names broke).

The rollback guard's store id (troth.storage.rollback, troth.storage.store_id; docs/storage.md,
"Rollback guard", "Which node.db"; docs/formats.md, "Rollback guard", version 4):
- a stolen copy of this node's node.db with its `rollback_store` row deleted (judged by its
  counts, which the deletion does not change): found as a restore all the same;
- the guard swapped for another node's with the very same counts: node.db's id is not the one
  it names, found as another node's node.db;
- the 512-byte guard cut to version 3's 256 bytes, and a 256-byte file whose slot holds a
  version 4 record (a downgrade): no guard, which fails closed for an armed scope;
- a raise of a bound guard torn at every offset of its slot: the record before it is read,
  with its id (never none, never another id);
- two connections raising the guard in turn while the first binds it: bound once, to
  node.db's id, every count kept;
- a process killed (`os._exit`, as SIGKILL, at the guard's crash points) while its raise binds
  the guard, and while a fresh node.db's first guarded write makes its id: no false restore,
  bound at the next check or write, no temporary file left;
- a clone (two nodes from one backup: one id) behind the guard it is put beside: found by its
  counts (the id cannot tell clones apart; docs/storage.md says a whole-directory restore is
  the node as it was).
The hub's re-revoke (troth.node.trust `_revoke_again`, review 64j feed 1):
- a store gone back twice: the second time, what the first re-revoke wrote is kept;
- a held feed of 1,000 revoked identities gone back whole: all revoked again, each once
  (bounded: no entry twice, the line grown by exactly what it lacked).
Golden vectors (tests/vectors/storage/guard_bound_vectors.json): any byte of a vector's newest
slot changed decodes to something else or to nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, feed_gone_back, restore_db
from troth import limits
from troth.credentials import RevocationKind
from troth.errors import DecodeError
from troth.faults import CRASH_ENV, CRASH_EXIT_CODE
from troth.node import init_node, open_node
from troth.node.trust import _revoke_again
from troth.storage import SqliteDatabase
from troth.storage.rollback import (
    GUARD_BOUND_SLOT_BYTES,
    RollbackGuard,
    decode_guard,
    decode_store,
    guard_path,
    read_guard,
)
from troth.storage.sqlite_authority import SqliteAuthorityStore
from troth.storage.store_id import read_store_id

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "storage" / "guard_bound_vectors.json").read_text()
)["vectors"]


def _bump(db: SqliteDatabase, scope: str, times: int = 1) -> None:
    guard = RollbackGuard(db, scope)
    for _ in range(times):
        with db.transaction():
            guard.bump()


def test_a_stolen_copy_with_its_store_id_deleted_is_still_a_restore(tmp_path: Path) -> None:
    """Judged by its counts once its id is gone: one write behind the guard, found."""
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    _bump(db, "authority")
    copy_db(path, tmp_path / "stolen.db")
    _bump(db, "authority")
    db.close()
    stolen = SqliteDatabase(tmp_path / "stolen.db")
    stolen.execute("DELETE FROM rollback_store")
    assert read_store_id(stolen) is None
    stolen.close()
    restore_db(path, tmp_path / "stolen.db")
    db = SqliteDatabase(path)
    try:
        found = RollbackGuard(db, "authority").check(NOW, lambda: 1)
        assert found is not None
        assert (found.counter, found.guard, found.another) == (1, 2, False)
    finally:
        db.close()


def test_the_guard_of_another_node_with_the_same_counts_is_found(tmp_path: Path) -> None:
    """Counts equal, ids not: another node's node.db (the guard names the other node's)."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    mine = SqliteDatabase(tmp_path / "a" / "node.db")
    other = SqliteDatabase(tmp_path / "b" / "node.db")
    for db in (mine, other):
        _bump(db, "authority", 2)
    guard_path(mine.path).write_bytes(guard_path(other.path).read_bytes())
    try:
        found = RollbackGuard(mine, "authority").check(NOW, lambda: 4)
        assert found is not None
        assert found.another
        assert found.voided == 4
    finally:
        mine.close()
        other.close()


def test_a_bound_guard_cut_to_version_3s_size_is_no_guard(tmp_path: Path) -> None:
    """Its first 256 bytes (a version 4 slot read as two of 128): none, so fails closed."""
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        _bump(db, "authority", 2)
        path = guard_path(db.path)
        data = path.read_bytes()
        assert len(data) == limits.MAX_ROLLBACK_GUARD_BOUND_BYTES
        for cut in (data[: limits.MAX_ROLLBACK_GUARD_BYTES], data[GUARD_BOUND_SLOT_BYTES:][:256]):
            path.write_bytes(cut)
            assert read_guard(path) is None
            assert RollbackGuard(db, "authority").behind()
        path.write_bytes(data)
    finally:
        db.close()


def test_a_version_4_record_in_a_256_byte_file_is_no_guard(tmp_path: Path) -> None:
    """A downgrade: a bound-looking record (five elements, version 4) framed in version 3's
    128-byte slot decodes as nothing, whatever its checksum."""
    from troth.crypto import sha256
    from troth.encoding import cbor

    body = cbor.encode(["troth.rollback-guard", 4, 1, {"authority": 1}, bytes(16)])
    slot = (len(body).to_bytes(2, "big") + body + sha256(body)[:16]).ljust(128, b"\0")
    for data in (slot + bytes(128), bytes(128) + slot):
        with pytest.raises(DecodeError):
            decode_guard(data)
    body = cbor.encode(["troth.rollback-guard", 3, 1, {"authority": [1, 5]}])
    slot = (len(body).to_bytes(2, "big") + body + sha256(body)[:16]).ljust(256, b"\0")
    with pytest.raises(DecodeError):  # version 3 in a slot of version 4's size
        decode_guard(slot + bytes(256))


def test_a_raise_of_a_bound_guard_torn_at_every_offset_reads_the_record_before(
    tmp_path: Path,
) -> None:
    """The raise writes the slot not holding the newest record; cut at each of its 256
    offsets over the old bytes there, the newest valid record is the one before, bound."""
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        _bump(db, "authority", 3)
        path = guard_path(db.path)
        before = path.read_bytes()
        _bump(db, "authority")
        after = path.read_bytes()
    finally:
        db.close()
    store = decode_store(before)
    assert store is not None
    seq, counts = decode_guard(before)
    start = next(i for i in (0, GUARD_BOUND_SLOT_BYTES) if before[i:] != after[i:])
    written = after[start : start + GUARD_BOUND_SLOT_BYTES]
    for cut in range(GUARD_BOUND_SLOT_BYTES):
        torn = bytearray(before)
        torn[start : start + cut] = written[:cut]
        assert decode_guard(bytes(torn)) == (seq, counts)
        assert decode_store(bytes(torn)) == store
    assert decode_guard(after) == (seq + 1, {"authority": 4})


def test_two_connections_raising_while_one_binds_keep_every_count(tmp_path: Path) -> None:
    """A version 3 guard (node.db's id made, the guard not yet bound: crash window after the
    id's commit), one connection's bump binding it while another bumps another scope: the
    guard ends bound to node.db's id with both counts."""
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    _bump(db, "authority")
    _bump(db, "broker")
    store = read_store_id(db)
    db.close()
    from troth.storage.rollback import encode_guard

    guard_path(path).write_bytes(encode_guard({"authority": 1, "broker": 1}, 3, {"authority": 5}))
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(scope: str) -> None:
        conn = SqliteDatabase(path)
        try:
            start.wait()
            _bump(conn, scope, 20)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(s,)) for s in ("authority", "broker")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    data = guard_path(path).read_bytes()
    assert decode_store(data) == store
    assert decode_guard(data)[1] == {"authority": 21, "broker": 21}


def test_a_store_gone_back_twice_keeps_what_the_first_re_revoke_wrote(
    troth_home: Path,
) -> None:
    """Back once (re-revoked), back again past the re-revoke: revoked again, as the feed the
    hub held after the first said."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        start = authority.held_feed(now=NOW)
        targets = [os.urandom(32) for _ in range(3)]
        authority.revocations.revoke_many(
            RevocationKind.IDENTITY, targets, by=authority.identifier, now=NOW
        )
        held = authority.held_feed(now=NOW, previous=start)
        store = authority.store
        assert isinstance(store, SqliteAuthorityStore)
        db = store._db
        for _ in range(2):
            with authority.store.transaction():
                db.execute("DELETE FROM revocations WHERE seq >= ?", (start.count,))
            gone = authority.held_feed(now=NOW)
            assert not any(gone.identity_revoked(t) for t in targets)
            again = _revoke_again(authority, held, gone, NOW)
            assert again is not None
            assert all(again.identity_revoked(t) for t in targets)
            held = again


def test_a_thousand_revocations_gone_back_are_revoked_again_each_once(
    troth_home: Path,
) -> None:
    """Bounded: the new line grows by exactly the entries it lacked, none twice."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        start = authority.held_feed(now=NOW)
        targets = [os.urandom(32) for _ in range(1000)]
        authority.revocations.revoke_many(
            RevocationKind.IDENTITY, targets, by=authority.identifier, now=NOW
        )
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count + 400)
        gone = authority.held_feed(now=NOW)
        again = _revoke_again(authority, held, gone, NOW)
        assert again is not None
        assert again.count == held.count
        assert all(again.identity_revoked(t) for t in targets)
        assert _revoke_again(authority, held, again, NOW) is again  # nothing more to revoke


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_every_byte_of_a_golden_guards_newest_slot_is_pinned(name: str) -> None:
    """Any byte of the newest slot changed: another state, or not a guard (its checksum)."""
    data = bytes.fromhex(VECTORS[name]["guard"])
    expected = (decode_guard(data), decode_store(data))
    seq = VECTORS[name]["seq"]
    start = (seq % 2) * GUARD_BOUND_SLOT_BYTES
    for offset in range(start, start + GUARD_BOUND_SLOT_BYTES, 7):
        changed = bytearray(data)
        changed[offset] ^= 0x01
        try:
            found = (decode_guard(bytes(changed)), decode_store(bytes(changed)))
        except DecodeError:
            continue
        assert found != expected


_BUMP = """
import sys
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard
db = SqliteDatabase(sys.argv[1])
guard = RollbackGuard(db, "authority")
with db.transaction():
    guard.bump()
"""


def _killed_bump(path: Path, at: str) -> None:
    """A process bumping `authority` in node.db at `path`, ended at crash point `at` (as a
    SIGKILL: `os._exit(137)`, no cleanup)."""
    env = {**os.environ, CRASH_ENV: at, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _BUMP, str(path)], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == CRASH_EXIT_CODE, done.stderr.decode()[-400:]


@pytest.mark.parametrize(
    "at", ["storage.rollback-guard.before-write", "storage.rollback-guard.after-write"]
)
def test_a_process_killed_while_it_binds_the_guard_leaves_it_found_current(
    tmp_path: Path, at: str
) -> None:
    """node.db's id committed, its guard of version 3 (crash window after the id's commit): a
    bump's process killed while its raise binds the guard (a new file renamed in), before or
    after the rename. The next check finds no restore and binds the guard to node.db's id at
    node.db's count, the killed process's temporary file swept."""
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    _bump(db, "authority")
    store = read_store_id(db)
    db.close()
    from troth.storage.rollback import encode_guard

    guard_path(path).write_bytes(encode_guard({"authority": 1}))
    _killed_bump(path, at)
    db = SqliteDatabase(path)
    try:
        assert RollbackGuard(db, "authority").check(NOW, lambda: 1) is None
        data = guard_path(path).read_bytes()
        assert decode_store(data) == store
        assert decode_guard(data)[1] == {"authority": 2}
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    finally:
        db.close()


def test_the_first_guarded_write_killed_before_its_commit_leaves_no_id(tmp_path: Path) -> None:
    """A fresh node.db's first bump killed as it writes the guard (before the commit): no id
    in node.db, no guard bound; the next check finds no restore, the next bump binds."""
    path = tmp_path / "node.db"
    SqliteDatabase(path).close()
    _killed_bump(path, "storage.rollback-guard.before-write")
    db = SqliteDatabase(path)
    try:
        assert read_store_id(db) is None
        assert RollbackGuard(db, "authority").check(NOW, lambda: 1) is None
        _bump(db, "authority")
        assert decode_store(guard_path(path).read_bytes()) == read_store_id(db) is not None
    finally:
        db.close()


def test_a_clone_behind_the_guard_it_is_put_beside_is_found_by_its_counts(
    tmp_path: Path,
) -> None:
    """Two nodes made from one backup (node.db and guard: one store id, which names neither
    apart), each writing since: one's node.db put beside the other's guard, one write behind
    it, is found by its counts (as a restore of this node's: the id cannot tell clones)."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a_path, b_path = tmp_path / "a" / "node.db", tmp_path / "b" / "node.db"
    db = SqliteDatabase(a_path)
    _bump(db, "authority")
    db.close()
    copy_db(a_path, b_path)
    guard_path(b_path).write_bytes(guard_path(a_path).read_bytes())
    for path, writes in ((a_path, 2), (b_path, 1)):
        db = SqliteDatabase(path)
        _bump(db, "authority", writes)
        db.close()
    copy_db(b_path, tmp_path / "b-copy.db")
    restore_db(a_path, tmp_path / "b-copy.db")
    db = SqliteDatabase(a_path)
    try:
        found = RollbackGuard(db, "authority").check(NOW, lambda: 1)
        assert found is not None
        assert (found.counter, found.guard, found.another) == (2, 3, False)
    finally:
        db.close()
