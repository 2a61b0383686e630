"""Review 60h: attacks on the rollback guard's version 3 (review 60a, release 1; docs/formats.md,
"Rollback guard") that worked."""

from __future__ import annotations

from pathlib import Path

from troth.identity.restored import RestoredIdentities
from troth.storage import SqliteDatabase
from troth.storage.rollback import decode_guard, decode_raised, encode_guard, guard_path

T = 1_796_000_000


def test_guard1_a_guard_dating_other_scopes_keeps_every_count_at_a_rotation(
    tmp_path: Path,
) -> None:
    """A version 3 guard (a later troth's: the format lets any scope carry a raise time) dating
    `authority` and `broker`, which this troth reads as valid: its first rotation adds the
    `identity` scope, with its date. The slot written must be one this troth reads: every
    count kept (else the authority's tickets are voided, the broker's leases revoked, as for a
    restore that never happened), `identity` dated; a raise time that no longer fits a slot
    at the largest counts is the one dropped (another scope's, never `identity`'s)."""
    db = SqliteDatabase(tmp_path / "node.db")
    path = guard_path(db.path)
    counts = {"authority": 4, "broker": 2, "policy": 1}
    path.write_bytes(encode_guard(counts, seq=7, raised={"authority": T, "broker": T}))
    assert decode_guard(path.read_bytes()) == (7, counts)  # read as valid
    with db.transaction():
        RestoredIdentities(db).count_rotation(T + 1)
    seq, held = decode_guard(path.read_bytes())
    assert held == {**counts, "identity": 1}
    # no room for theirs in a slot of version 3; the guard is bound to node.db (version 4,
    # larger slots: review 64j) after the commit, with what the version 3 slot kept
    assert decode_raised(path.read_bytes())["identity"] == T + 1
    assert seq > 7
    db.close()
