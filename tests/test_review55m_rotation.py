"""Review 55m, rotation: an adversarial look at review 55j's fix (rotation 1).

1. (fixed by review 55q, pins) `KnownHistories.outgrown` answers from the known-histories cache
   alone, and that cache drops its older half when it holds KNOWN_CACHE_SIZE (4096) copies.
   Whoever gets 4096 copies stored or read after the owner's rotation (a member's delegates,
   up to MAX_VOUCHED_PER_MEMBER = 4096 of them, each stored at its handshake) drops the
   rotation's entry, and the channel the stolen pre-rotation keys opened is judged by the held
   feeds alone again until the next maintenance re-check (up to 30 s): what 55j closed. Now the
   histories an open channel depends on are pinned (`KnownHistories.pin`, taken by the channel
   manager as the channel is admitted: troth.node.channel_pins) and kept out of the eviction.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.histories import DAY, T0, encode, extend, honest_history
from troth.clock import SystemClock
from troth.identity import verify_history
from troth.identity.known import KNOWN_CACHE_SIZE, KnownHistories
from troth.storage import SqliteDatabase, SqliteIdentityStore


def test_a_rotation_stays_known_to_outgrown_past_the_caches_eviction(tmp_path: Path) -> None:
    """Was a strict xfail: the thief's channel is open, so its peer's digest is pinned (as the
    channel manager pins it at admission); the flood no longer evicts the rotation."""
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "n.db"))
    known = KnownHistories(store, SystemClock())
    now = T0 + 5 * DAY
    two = honest_history(2)
    old, new = (verify_history(encode(h.changes), now=now) for h in (two, extend(two, now)))
    known.observe(old)
    known.pin(old.identifier.digest)  # the stolen backup's channel is admitted
    known.observe(new)  # the owner's rotation, admitted and stored here
    assert known.outgrown(old)  # 55j: the stolen backup's channel gets nothing
    with store.transaction():  # one transaction: the flood's cost is not the point
        for _ in range(KNOWN_CACHE_SIZE):  # a member's delegates, each stored at its handshake
            known.observe(verify_history(encode(honest_history(1).changes), now=now))
    assert store.get_history(new.identifier.digest) is not None  # the store still holds it
    assert known.outgrown(old)
