"""Review 64j, the rollback guard (troth.storage.rollback, troth.storage.store_id;
docs/storage.md, "Rollback guard"; docs/formats.md, "Rollback guard", version 4).

rollback 1 (review 64f's, fixed here; its test is tests/test_review64f_rollback.py): the guard
counted writes and named no node.db, so another node's node.db that counted as many was taken
as current. node.db now holds a store id (random, made with its first guarded write,
`rollback_store`), and the guard names it (version 4, bound after that commit): a node.db
whose id is not its guard's is a restore of every scope it or the guard holds an entry of,
each found once by its own owner and reported as another node's node.db; the guard keeps its
id. The tests below: every scope found, once; the crash windows of the id; a version 3 guard
bound at its next raise; a node.db with no id judged by its counts; the golden vectors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, restore_db
from troth import limits
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import DecodeError
from troth.storage import SqliteDatabase
from troth.storage import rollback as rollback_module
from troth.storage.rollback import (
    GUARD_BOUND_SLOT_BYTES,
    GUARD_BOUND_VERSION,
    RollbackGuard,
    decode_guard,
    decode_raised,
    decode_store,
    encode_guard,
    guard_path,
    read_guard,
    restored_rows,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "storage" / "guard_bound_vectors.json").read_text()
)["vectors"]


class Killed(Exception):
    """A process killed at a crash point."""


def _node(path: Path, **writes: int) -> SqliteDatabase:
    """node.db at `path` with `writes` counted in each scope, its guard beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(path)
    for scope, count in writes.items():
        guard = RollbackGuard(db, scope)
        for _ in range(count):
            with db.transaction():
                guard.bump()
    return db


def _put_in_place(mine: Path, other: Path, tmp_path: Path) -> None:
    copy_db(other, tmp_path / "other-copy.db")
    restore_db(mine, tmp_path / "other-copy.db")


def test_rollback_1_every_scope_of_another_nodes_store_is_found_once(tmp_path: Path) -> None:
    """Another node's node.db, ahead of this guard in both scopes, put in place: each scope's
    owner finds it (reported as another node's), once; the guard keeps naming this node's
    store, raised to the counts found; `restored_rows` says so."""
    mine = _node(tmp_path / "mine" / "node.db", authority=2, broker=1)
    bound = decode_store(guard_path(mine.path).read_bytes())
    mine.close()
    _node(tmp_path / "other" / "node.db", authority=5, broker=4).close()
    _put_in_place(tmp_path / "mine" / "node.db", tmp_path / "other" / "node.db", tmp_path)
    db = SqliteDatabase(tmp_path / "mine" / "node.db")
    try:
        authority = RollbackGuard(db, "authority").check(NOW, lambda: 3)
        broker = RollbackGuard(db, "broker").check(NOW, lambda: 2)
        assert authority is not None
        assert authority.another
        assert authority.voided == 3
        assert broker is not None
        assert broker.another
        assert broker.voided == 2
        assert RollbackGuard(db, "authority").check(NOW + 1, lambda: 9) is None
        assert RollbackGuard(db, "broker").check(NOW + 1, lambda: 9) is None
        assert RollbackGuard(db, "policy").check(NOW + 1, lambda: 9) is None  # held by none
        assert read_guard(guard_path(db.path)) == {"authority": 5, "broker": 4}
        assert decode_store(guard_path(db.path).read_bytes()) == bound
        assert [(r.scope, r.another) for r in restored_rows(db)] == [
            ("authority", True),
            ("broker", True),
        ]
        assert authority.to_json()["another_node"] is True
    finally:
        db.close()


def test_rollback_1_a_scope_held_by_the_guard_alone_is_found(tmp_path: Path) -> None:
    """A scope this node counted and the other node.db never did (its entry in the guard only,
    at 0 or above): found too, by its owner, though the other node.db holds no entry of it."""
    mine = _node(tmp_path / "mine" / "node.db", authority=1, identity=1)
    mine.close()
    _node(tmp_path / "other" / "node.db", authority=3).close()
    _put_in_place(tmp_path / "mine" / "node.db", tmp_path / "other" / "node.db", tmp_path)
    db = SqliteDatabase(tmp_path / "mine" / "node.db")
    try:
        assert RollbackGuard(db, "authority").check(NOW, lambda: 0) is not None
        found = RollbackGuard(db, "identity").check(NOW, lambda: 1)
        assert found is not None
        assert found.another
        assert (found.counter, found.guard) == (0, 1)
        assert RollbackGuard(db, "identity").check(NOW, lambda: 1) is None
    finally:
        db.close()


def test_rollback_1_a_find_killed_before_its_commit_is_found_again(tmp_path: Path) -> None:
    """The first owner's transaction (the marks, the id taken, its fail-closed) killed: nothing
    of it kept, so the next open finds another node's node.db again, in every scope."""
    _node(tmp_path / "mine" / "node.db", authority=1, broker=1).close()
    _node(tmp_path / "other" / "node.db", authority=3, broker=3).close()
    _put_in_place(tmp_path / "mine" / "node.db", tmp_path / "other" / "node.db", tmp_path)
    db = SqliteDatabase(tmp_path / "mine" / "node.db")

    def killed() -> int:
        raise Killed

    try:
        with pytest.raises(Killed):
            RollbackGuard(db, "authority").check(NOW, killed)
        for scope in ("authority", "broker"):
            found = RollbackGuard(db, scope).check(NOW, lambda: 1)
            assert found is not None
            assert found.another
    finally:
        db.close()


def test_rollback_1_killed_before_the_guard_is_bound_binds_at_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id's crash window 2: committed in node.db, the guard (made before the commit,
    version 3) not yet bound to it: the next check binds it, no restore found; then another
    node's node.db is found."""
    db = SqliteDatabase(tmp_path / "node.db")
    guard = RollbackGuard(db, "authority")

    def kill(name: str) -> None:
        if name == "storage.rollback-guard.before-write" and guard_path(db.path).exists():
            raise Killed

    monkeypatch.setattr(rollback_module, "crash_point", kill)
    with pytest.raises(Killed), db.transaction():
        guard.bump()
    monkeypatch.undo()
    assert decode_store(guard_path(db.path).read_bytes()) is None  # version 3, unbound
    db.close()
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        assert RollbackGuard(db, "authority").check(NOW, lambda: 1) is None
        assert read_guard(guard_path(db.path)) == {"authority": 1}
        assert decode_store(guard_path(db.path).read_bytes()) is not None
    finally:
        db.close()


def test_rollback_1_a_version_3_guard_is_bound_at_its_next_raise(tmp_path: Path) -> None:
    """A guard of version 3 beside a node.db from before review 64j (no id): read as before;
    the next write makes the id and the raise binds the guard to it (version 4, every count
    and raise time kept)."""
    db = SqliteDatabase(tmp_path / "node.db")
    path = guard_path(db.path)
    with db.transaction():
        db.execute("INSERT INTO rollback_counters (scope, counter) VALUES ('identity', 4)")
        db.execute("INSERT INTO rollback_counters (scope, counter) VALUES ('authority', 2)")
    path.write_bytes(encode_guard({"identity": 4, "authority": 2}, 5, {"identity": NOW}))
    try:
        assert RollbackGuard(db, "identity").check(NOW, lambda: 1) is None
        with db.transaction():
            RollbackGuard(db, "authority").bump()
        data = path.read_bytes()
        assert len(data) == limits.MAX_ROLLBACK_GUARD_BOUND_BYTES
        assert decode_guard(data) == (6, {"identity": 4, "authority": 3})
        assert decode_raised(data) == {"identity": NOW}
        assert decode_store(data) is not None
        assert RollbackGuard(db, "identity").check(NOW, lambda: 1) is None
    finally:
        db.close()


def test_rollback_1_a_store_with_no_id_takes_the_guards_and_is_judged_by_its_counts(
    tmp_path: Path,
) -> None:
    """A copy of this node.db from before its first guarded write (no id) put back beside a
    bound guard: judged by its counts (behind: found, not as another node's); its next write
    takes the guard's id, so the node is not found again."""
    db = _node(tmp_path / "node.db")
    copy_db(db.path, tmp_path / "copy.db")
    with db.transaction():
        RollbackGuard(db, "authority").bump()
    bound = decode_store(guard_path(db.path).read_bytes())
    db.close()
    restore_db(tmp_path / "node.db", tmp_path / "copy.db")
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        found = RollbackGuard(db, "authority").check(NOW, lambda: 0)
        assert found is not None
        assert not found.another
        with db.transaction():
            RollbackGuard(db, "broker").bump()
        assert RollbackGuard(db, "authority").check(NOW, lambda: 0) is None
        assert RollbackGuard(db, "broker").check(NOW, lambda: 0) is None
        assert decode_store(guard_path(db.path).read_bytes()) == bound
    finally:
        db.close()


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_the_golden_guards_of_version_4(name: str) -> None:
    """Rebuilt byte for byte; decoded to the newest slot's counts, raise times and store id;
    the slot is `[type, 4, seq, {scope: count or [count, time]}, id]` as docs/formats.md says."""
    from tests.vectors.storage.generate_bound import build

    vector = VECTORS[name]
    assert build()[name] == vector
    data = bytes.fromhex(vector["guard"])
    assert len(data) == limits.MAX_ROLLBACK_GUARD_BOUND_BYTES
    assert decode_guard(data) == (vector["seq"], vector["counts"])
    assert decode_raised(data) == vector["raised"]
    assert decode_store(data) == bytes.fromhex(vector["store"])
    counts, raised = vector["counts"], vector["raised"]
    entries = {s: [c, raised[s]] if s in raised else c for s, c in counts.items()}
    store = bytes.fromhex(vector["store"])
    body = cbor.encode(["troth.rollback-guard", GUARD_BOUND_VERSION, vector["seq"], entries, store])
    assert bytes.fromhex(vector["record"]) == body  # the newest slot's record, given alone
    slot = (len(body).to_bytes(2, "big") + body + sha256(body)[:16]).ljust(
        GUARD_BOUND_SLOT_BYTES, b"\0"
    )
    assert slot in (data[:GUARD_BOUND_SLOT_BYTES], data[GUARD_BOUND_SLOT_BYTES:])


def test_a_guard_of_mixed_slot_sizes_or_ids_is_no_guard() -> None:
    """A version 3 record in a slot of version 4's size, a version 4 record in one of 128
    bytes, an id of another size: not a guard (read as none: fails closed)."""
    old = encode_guard({"authority": 1})
    assert read_guard_bytes(old[:128] + bytes(128) + old[128:] + bytes(128)) is None
    new = encode_guard({"authority": 1}, store=bytes(16))
    assert read_guard_bytes(new[:128] + new[256:384]) is None
    with pytest.raises(ValueError, match="store id"):
        encode_guard({"authority": 1}, store=bytes(8))
    body = cbor.encode(["troth.rollback-guard", 4, 1, {"authority": 1}, bytes(8)])
    slot = (len(body).to_bytes(2, "big") + body + sha256(body)[:16]).ljust(256, b"\0")
    with pytest.raises(DecodeError):
        decode_guard(bytes(256) + slot)


def read_guard_bytes(data: bytes) -> dict[str, int] | None:
    """`decode_guard`'s counts of `data`, None when it is no guard."""
    try:
        return decode_guard(data)[1]
    except DecodeError:
        return None
