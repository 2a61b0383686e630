"""Review 58a, guard 2 (review 57v's guard 2): the rule for a scope this troth does not know (a
newer troth's) when a slot has no room for it beside this troth's own scopes. This troth's
scopes (`SCOPES`, which all fit a slot at their largest counts) always take precedence; a
scope it does not know is carried, in canonical order, only while the slot still holds it at
the largest counts, and dropped otherwise (docs/formats.md, "Rollback guard"). The newer
troth then finds its scope's entry missing while its node.db holds one: a restore, fail
closed, never a fail-open."""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.storage import SqliteDatabase, guard_codec
from troth.storage import rollback as rollback_module
from troth.storage.rollback import SCOPES, RollbackGuard, encode_guard, guard_path, read_guard

# two scopes of a newer troth's (16 characters each): with `authority` they fill a slot at the
# largest counts but for 6 bytes; `identity` takes 18
_A, _B = "newscope-aaaaaaa", "newscope-bbbbbbb"


def _bump_identity(tmp_path: Path, guard: dict[str, int]) -> SqliteDatabase:
    """A node.db whose guard a newer troth wrote as `guard` (its scopes' entries in node.db as
    well), one rotation counted by this troth."""
    db = SqliteDatabase(tmp_path / "node.db")
    with db.transaction():
        for scope, count in guard.items():
            db.execute(
                "INSERT INTO rollback_counters (scope, counter) VALUES (?, ?)", (scope, count)
            )
    guard_path(db.path).write_bytes(encode_guard(guard, seq=3))
    with db.transaction():
        RollbackGuard(db, "identity").bump()
    return db


def test_a_scope_not_known_here_is_kept_while_there_is_room(tmp_path: Path) -> None:
    db = _bump_identity(tmp_path, {"authority": 2, _A: 7})
    assert read_guard(guard_path(db.path)) == {"authority": 2, "identity": 1, _A: 7}
    assert RollbackGuard(db, "identity").check(1, lambda: 0) is None
    db.close()


def test_without_room_this_troths_scope_is_written_and_the_last_unknown_one_dropped(
    tmp_path: Path,
) -> None:
    db = _bump_identity(tmp_path, {"authority": 2, _A: 7, _B: 5})
    assert read_guard(guard_path(db.path)) == {"authority": 2, "identity": 1, _A: 7}
    assert RollbackGuard(db, "identity").check(1, lambda: 0) is None
    assert RollbackGuard(db, "authority").check(1, lambda: 0) is None
    db.close()


def test_a_newer_troth_finds_its_dropped_scope_restored_and_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the newer troth sees after this troth dropped its scope: a restored copy for it
    (its entry in node.db, none in the guard), failed closed; the scope it kept is current."""
    db = _bump_identity(tmp_path, {"authority": 2, _A: 7, _B: 5})
    assert _B not in (read_guard(guard_path(db.path)) or {})
    monkeypatch.setattr(rollback_module, "SCOPES", (*SCOPES, _A, _B))  # the newer troth
    assert RollbackGuard(db, _A).check(1, lambda: 0) is None
    found = RollbackGuard(db, _B).check(1, lambda: 3)
    assert found is not None
    assert (found.counter, found.guard, found.voided) == (5, None, 3)
    db.close()


def test_this_troths_scopes_all_fit_a_slot_at_their_largest() -> None:
    """The rule's premise: this troth's own scopes never need to be dropped."""
    assert guard_codec._fits(SCOPES)
    assert not guard_codec._fits([*SCOPES, "x"])  # and no scope of another fits beside
