"""Review 24a, stored copies: review 23a's `check_follows` rule (a checkpointed history that
starts right after the stored copy must follow its last change as a rotation does;
src/troth/identity/known.py, docs/formats.md "Stored copies") against honest flows.

Known 1: `KnownHistories` reads the stored copy's last change through its cached span (up to
KNOWN_CACHE_SECONDS old). When another process (or another `KnownHistories` over the same
store) has meanwhile accepted the same checkpointed history and stored it — a copy that now
starts where the cached one ended + 1 — the read finds no change at the cached index and
raises FORK ("the stored copy changed while it was read"): an honest peer presenting its
honest rotation is refused as a fork. The code's own comment says another process may extend
the copy meanwhile; before review 23a the same check passed (the `previous` field alone).
Fixed: when the store is read for that last change, the candidate is judged by the copy the
store holds then (`KnownHistories._extends`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.histories import (
    DAY,
    T0,
    HonestHistory,
    body_for,
    encode,
    extend,
    honest_history,
    sign_change,
)
from troth.clock import FixedClock
from troth.crypto import KeyType, sha256
from troth.crypto.private import generate_private_key
from troth.errors import IdentityError, IdentityFailure
from troth.identity import Checkpoint, VerifiedIdentity, encode_history, verify_history
from troth.identity.known import KnownHistories
from troth.storage import SqliteDatabase, SqliteIdentityStore

AUTHORITY = b"\xab" * 32
NOW = T0 + 2 * DAY


def from_change(line: HonestHistory, start: int, *, now: int = NOW) -> VerifiedIdentity:
    """`line` presented from change `start`, its checkpoint attested (the test's authority
    names exactly that change of `line`)."""
    identifier = sha256(line.changes[0].body)
    named = sha256(line.changes[start].body)
    history = encode_history(line.changes[start:], Checkpoint(identifier, AUTHORITY, start))
    return verify_history(
        history,
        now=now,
        checkpoints=lambda c, h: (
            (c.identifier, c.authority, c.index, h) == (identifier, AUTHORITY, start, named)
        ),
    )


def test_a_second_reader_takes_the_checkpointed_history_the_first_stored(tmp_path: Path) -> None:
    """Known 1: two readers of one store (two processes of a node). Both saw alice at change 0
    (the first one caches that copy); the second takes her honest rotation, presented from
    change 1 (a checkpoint), and stores it. The first, within its cache's life, must take
    the very same history too, not refuse it as a fork."""
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    first = KnownHistories(store, FixedClock(NOW))
    second = KnownHistories(store, FixedClock(NOW))
    line = honest_history(1)
    first.observe(verify_history(encode(line.changes), now=NOW))
    rotated = from_change(extend(line, T0 + DAY), 1)
    second.observe(rotated)  # stored: the copy now starts at change 1
    first.check(rotated)
    first.observe(rotated)
    span = first.stored(rotated.identifier.digest)
    assert span is not None
    assert span.last == 1


def test_a_rotation_to_another_key_type_at_the_old_keys_last_second_extends(
    tmp_path: Path,
) -> None:
    """Guard: check_follows takes what verify_history takes. Alice's change 0 (Ed25519, valid
    one day) commits to a P-256 key; change 1 reveals it exactly at change 0's valid_until (the
    boundary verify_history accepts). Presented from change 1 (a checkpoint) to a store holding
    change 0, it extends the stored copy."""
    key0 = generate_private_key(KeyType.ED25519)
    key1 = generate_private_key(KeyType.P256)
    change0 = sign_change(body_for(key0, None, T0, valid_until=T0 + DAY, commit=key1), key0, None)
    body1 = body_for(key1, sha256(change0.body), T0 + DAY, index=1)
    line = HonestHistory([key0, key1], [change0, sign_change(body1, key1, key0)], key1)
    verify_history(encode(line.changes), now=NOW)  # the control: the whole history verifies
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    known = KnownHistories(store, FixedClock(NOW), cache_seconds=0)
    known.observe(verify_history(encode(line.changes[:1]), now=T0 + DAY // 2))
    rotated = from_change(line, 1)
    known.observe(rotated)
    span = known.stored(rotated.identifier.digest)
    assert span is not None
    assert span.last == 1


@pytest.mark.parametrize(
    ("created", "reason"),
    [
        (T0 - 1, IdentityFailure.TIME_REVERSED),  # before the change it follows
        (T0 + DAY + 1, IdentityFailure.KEY_OUTSIDE_VALIDITY),  # after the old key expired
    ],
    ids=["before-the-previous-change", "after-the-previous-key-expired"],
)
def test_a_rotation_breaking_the_time_rules_does_not_extend_from_a_checkpoint(
    tmp_path: Path, created: int, reason: IdentityFailure
) -> None:
    """Guard: the times are checked too. Change 1 reveals the committed key and is signed by
    change 0's key, but is dated before change 0, or after change 0's key expired: the whole
    history is refused, and so is change 1 presented from a checkpoint to a store holding
    change 0 (only the stored change makes those rules checkable)."""
    key0, key1 = generate_private_key(KeyType.ED25519), generate_private_key(KeyType.ED25519)
    change0 = sign_change(body_for(key0, None, T0, valid_until=T0 + DAY, commit=key1), key0, None)
    body1 = body_for(key1, sha256(change0.body), created, valid_from=T0 - DAY, index=1)
    line = HonestHistory([key0, key1], [change0, sign_change(body1, key1, key0)], key1)
    with pytest.raises(IdentityError) as whole:
        verify_history(encode(line.changes), now=NOW)
    assert whole.value.reason is reason
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    known = KnownHistories(store, FixedClock(NOW), cache_seconds=0)
    known.observe(verify_history(encode(line.changes[:1]), now=T0 + DAY // 2))
    with pytest.raises(IdentityError) as caught:
        known.observe(from_change(line, 1))
    assert caught.value.reason is reason
