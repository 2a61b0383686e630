"""Review 60a, release 1 (review 59j's release 2, left as a strict xfail in
tests/test_review59j_release.py): the rollback guard dates its scopes' raises (version 3,
docs/formats.md, "Rollback guard"), so a restore found with the clock behind is dated by the
last rotation the copy lacks (troth.identity.restored.last_rotation, troth.node.release).
Here: the format (golden vectors, bounds, an older guard still read) and the raise time's
rules (a rotation dates it, never lowered, bounded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_review51d_rollback import _forged
from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError
from troth.identity.restored import RestoredIdentities
from troth.storage import SqliteDatabase
from troth.storage.rollback import (
    GUARD_RAISED_VERSION,
    GUARD_SLOT_BYTES,
    RollbackGuard,
    decode_guard,
    decode_raised,
    encode_guard,
    encode_slot,
    guard_path,
    read_guard,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "storage" / "guard_raised_vectors.json").read_text()
)["vectors"]
T = 1_796_000_000


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_the_golden_guards_of_version_3(name: str) -> None:
    """Rebuilt byte for byte; decoded to the newest slot's counts and raise times; the slot is
    `[type, 3, seq, {scope: count or [count, time]}]` as docs/formats.md lays it out."""
    from tests.vectors.storage.generate_raised import build
    from troth.crypto import sha256

    vector = VECTORS[name]
    assert build()[name] == vector
    data = bytes.fromhex(vector["guard"])
    assert decode_guard(data) == (vector["seq"], vector["counts"])
    assert decode_raised(data) == vector["raised"]
    counts, raised = vector["counts"], vector["raised"]
    entries = {s: [c, raised[s]] if s in raised else c for s, c in counts.items()}
    body = cbor.encode(["troth.rollback-guard", GUARD_RAISED_VERSION, vector["seq"], entries])
    slot = (len(body).to_bytes(2, "big") + body + sha256(body)[:16]).ljust(GUARD_SLOT_BYTES, b"\0")
    assert slot in (data[:GUARD_SLOT_BYTES], data[GUARD_SLOT_BYTES:])


def test_a_guard_without_raise_times_is_written_and_read_as_before() -> None:
    """No raise time: versions 1 and 2 byte for byte (an older troth reads them); read, no
    raise time is known."""
    old = encode_guard({"authority": 3, "identity": 1})
    assert decode_raised(old) == {}
    slot = old[GUARD_SLOT_BYTES:]  # record 1, in slot 1
    assert cbor.decode(slot[2 : 2 + slot[1]])[1] == 2
    assert encode_slot(1, {"authority": 3}, {}) == encode_slot(1, {"authority": 3})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["troth.rollback-guard", 3, 1, {"identity": 1}], "unknown version"),  # no time
        (["troth.rollback-guard", 3, 1, {"identity": [1, (1 << 32)]}], "over MAX_ROLLBACK_RAI"),
        (["troth.rollback-guard", 3, 1, {"identity": [1, -1]}], "below 0"),
        (["troth.rollback-guard", 3, 1, {"identity": [1, True]}], "expected an integer"),
        (["troth.rollback-guard", 3, 1, {"identity": [1]}], "expected 2 elements"),
        (["troth.rollback-guard", 2, 1, {"identity": [1, T]}], "expected an integer"),
        (["troth.rollback-guard", 1, 1, {"broker": [1, T]}], "expected an integer"),
    ],
)
def test_a_raise_time_out_of_its_bounds_or_version_is_refused(
    value: list[Any], problem: str
) -> None:
    with pytest.raises(DecodeError, match=problem):
        decode_guard(_forged(value))


def test_every_scope_of_this_troth_at_its_largest_fits_with_the_latest_raise_time() -> None:
    largest = dict.fromkeys(("authority", "broker", "policy", "identity"), (1 << 63) - 1)
    raised = dict.fromkeys(largest, limits.MAX_ROLLBACK_RAISED_AT)
    encode_slot((1 << 63) - 1, largest, {"identity": limits.MAX_ROLLBACK_RAISED_AT})
    with pytest.raises(ValueError, match="overflows"):  # one raise time is what fits
        encode_slot(1, largest, raised)


def _rotations(tmp_path: Path, *times: int) -> tuple[SqliteDatabase, RollbackGuard]:
    """node.db with the identity scope counted once per time in `times`, each dated so."""
    db = SqliteDatabase(tmp_path / "node.db")
    restores = RestoredIdentities(db)
    for at in times:
        with db.transaction():
            restores.count_rotation(at)
    return db, RollbackGuard(db, "identity")


def test_a_rotation_dates_the_guard_and_a_later_clock_moves_it(tmp_path: Path) -> None:
    db, guard = _rotations(tmp_path, T, T + 60)
    assert read_guard(guard.path) == {"identity": 2}
    assert guard.raised_at() == T + 60
    db.close()


def test_an_older_guard_is_raised_to_version_3_its_counts_kept(tmp_path: Path) -> None:
    """A guard of version 2 (written before review 60a) read: no raise time; the next rotation
    writes version 3, every count kept."""
    db = SqliteDatabase(tmp_path / "node.db")
    path = guard_path(db.path)
    path.write_bytes(encode_guard({"authority": 5, "identity": 0, "vault": 7}, seq=9))
    guard = RollbackGuard(db, "identity")
    assert guard.raised_at() is None
    with db.transaction():
        RestoredIdentities(db).count_rotation(T)
    assert decode_guard(path.read_bytes()) == (10, {"authority": 5, "identity": 1, "vault": 7})
    assert decode_raised(path.read_bytes()) == {"identity": T}
    db.close()


def test_a_bump_without_a_time_leaves_the_raise_time(tmp_path: Path) -> None:
    """Scopes no time dates (an authority's, a broker's) stay as they were written."""
    db, guard = _rotations(tmp_path, T)
    authority = RollbackGuard(db, "authority")
    with db.transaction():
        authority.bump()
    assert read_guard(guard.path) == {"authority": 1, "identity": 1}
    assert decode_raised(guard.path.read_bytes()) == {"identity": T}
    db.close()
