"""Review 57v, guard: the rollback guard's decoded-bytes cache (`_KNOWN_GUARDS`) remembers the
bytes a raise wrote as the state the raise meant to write, without reading them back. A slot
this troth can encode but not decode (a scope added to a guard a newer troth filled, so that
the slot no longer holds every scope at its largest count; a record number past
MAX_ROLLBACK_COUNTER) is not what the file holds: the older slot stays the newest valid one,
and the cache said otherwise: the next raise (the bump's own, after its commit) trusted it
and wrote its slot over that only valid one, so the guard was lost (both slots undecodable).
Fixed: written bytes are known unread only when no scope is added and the number stays in
bounds; else they are decoded at their next read."""

from __future__ import annotations

from pathlib import Path

from troth import limits
from troth.errors import DecodeError
from troth.identity.restored import RestoredIdentities
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, decode_guard, encode_guard, guard_path, read_guard

# a newer troth's guard: two scopes this troth does not know, with room for no other at the
# largest counts (review 54p: kept as read, written back as they are)
_NEWER = {"authority": 0, "newscope-aaaaaaa": 0, "newscope-bbbbbbb": 0}


def _file_state(path: Path) -> dict[str, int] | None:
    try:
        return decode_guard(path.read_bytes())[1]
    except DecodeError:
        return None


def _bumped_once(tmp_path: Path, guard_bytes: bytes) -> tuple[SqliteDatabase, Path]:
    db = SqliteDatabase(tmp_path / "node.db")
    path = guard_path(db.path)
    path.write_bytes(guard_bytes)
    with db.transaction():
        RollbackGuard(db, "identity").bump()
    return db, path


def test_a_scope_added_to_a_full_guard_is_read_as_the_file_holds_it(tmp_path: Path) -> None:
    db, path = _bumped_once(tmp_path, encode_guard(_NEWER, seq=3))
    assert read_guard(path) == _file_state(path)
    db.close()


def test_a_record_number_past_the_largest_is_read_as_the_file_holds_it(tmp_path: Path) -> None:
    crafted = encode_guard({"authority": 1}, seq=limits.MAX_ROLLBACK_COUNTER)
    db, path = _bumped_once(tmp_path, crafted)
    assert read_guard(path) == _file_state(path)
    db.close()


def test_a_rotation_under_a_newer_troths_full_guard_is_no_restore(tmp_path: Path) -> None:
    """Guard 2: a node.db that a newer troth ran (its guard holds two scopes this troth does
    not know, at the most a slot holds at their largest counts) rotates an identity here: the
    identity scope's entry is written in a slot no troth decodes, so the guard never holds
    it, and the next open finds a restore that never happened (the store counted a rotation,
    the guard has no entry): every identity of the node is held. Fixed by review 58a: this
    troth's own scopes take precedence, a scope it does not know is carried while there is
    room (tests/test_review58a_guard.py)."""
    db = _bumped_once(tmp_path, encode_guard(_NEWER, seq=3))[0]
    try:
        assert RestoredIdentities(db).check(1) is None
    finally:
        db.close()
