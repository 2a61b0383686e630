"""Review 60a: attacks on the rollback guard's raise time (version 3), which dates a restore's
hold (troth.identity.restored.last_rotation, troth.node.release), that did not work (each a
real attempt that fails if the defence breaks)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.backups import copy_db, node_db, restore_db
from tests.test_review58b_release import _release, restored_member
from troth import limits
from troth.identity.restored import RestoredIdentities, last_rotation
from troth.node import open_node
from troth.storage import SqliteDatabase
from troth.storage.rollback import (
    RollbackGuard,
    decode_guard,
    decode_raised,
    encode_guard,
    guard_path,
)

T = 1_796_000_000
DAY = 86_400


def _count(db: SqliteDatabase, *times: int) -> None:
    restores = RestoredIdentities(db)
    for at in times:
        with db.transaction():
            restores.count_rotation(at)


def test_a_rotation_by_a_clock_stepped_back_does_not_lower_the_date(tmp_path: Path) -> None:
    """A copy taken before two rotations, the second made with the clock an hour behind (NTP
    stepped it back): the restore found with the clock a day behind is dated by the first's
    time, the later, not the second's; the date never goes backwards."""
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    db.close()
    copy_db(path, tmp_path / "copy.db")
    db = SqliteDatabase(path)
    _count(db, T + 100, T + 100 - 3600)
    assert RollbackGuard(db, "identity").raised_at() == T + 100
    db.close()
    restore_db(path, tmp_path / "copy.db")
    db = SqliteDatabase(path)
    assert RestoredIdentities(db).check(T - DAY) is not None
    assert last_rotation(db) == T + 100
    db.close()


def test_many_raises_keep_the_latest_date_in_two_slots(tmp_path: Path) -> None:
    """Raises with dates up and down (and one in the far future, past what a slot holds): the
    guard stays two slots, decodes, and holds the latest, bounded, never lowered."""
    db = SqliteDatabase(tmp_path / "node.db")
    times = [T + (n * 7919) % 500 for n in range(40)]
    _count(db, *times)
    path = guard_path(db.path)
    assert decode_guard(path.read_bytes())[1] == {"identity": 40}
    assert decode_raised(path.read_bytes()) == {"identity": max(times)} != {"identity": times[-1]}
    _count(db, 1 << 40, T)
    data = path.read_bytes()
    assert len(data) == limits.MAX_ROLLBACK_GUARD_BOUND_BYTES  # version 4 since review 64j
    assert decode_raised(data) == {"identity": limits.MAX_ROLLBACK_RAISED_AT}
    db.close()


def test_a_newer_troths_dated_scope_does_not_push_out_this_troths_own(tmp_path: Path) -> None:
    """A guard whose newer troth's scope (with a raise time of its own) fills the slot beside
    this troth's three: the rotation's raise keeps every scope of this troth's, and its date;
    the newer scope is dropped (it would not fit), never this troth's own."""
    db = SqliteDatabase(tmp_path / "node.db")
    path = guard_path(db.path)
    big = (1 << 63) - 1
    counts = {"authority": big, "broker": big, "policy": big, "vault": 3}
    path.write_bytes(encode_guard(counts, seq=5, raised={"vault": T}))
    _count(db, T + 1)
    held = decode_guard(path.read_bytes())[1]
    assert held == {"authority": big, "broker": big, "policy": big, "identity": 1}
    assert decode_raised(path.read_bytes()) == {"identity": T + 1}
    db.close()


def test_a_guard_dated_ahead_does_not_keep_a_release_pulled_here_from_releasing(
    troth_home: Path, tmp_path: Path
) -> None:
    """The last rotation made with the clock a day ahead (the guard's date a day ahead): no
    held feed counts until then, but the feed the release pulls from acme on this machine
    does, and `agent`, not rotated since the copy, is released; `aide` is still refused."""
    restored_member(troth_home, tmp_path)
    path = guard_path(node_db(troth_home, "agent"))
    seq, counts = decode_guard(path.read_bytes())
    path.write_bytes(encode_guard(counts, seq + 1, {"identity": int(time.time()) + DAY}))
    released = _release("agent")
    assert (released["released"], released["vouched"]) == (True, False)
    assert "rotated after the copy" in _release("aide", code=1)["message"]
    with open_node("agent") as agent:
        agent.identities.signer("agent", now=int(time.time())).sign(b"m")
