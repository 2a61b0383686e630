"""Checkpointed histories (docs/formats.md, "Checkpointed histories"): a history presented from
change k verifies only through the caller's checkpoint callback; store-or-extend and the feed's
supersessions compare changes by index and hash, so a suffix that extends a stored copy is
accepted and one that forks or rolls back is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.histories import (
    DAY,
    T0,
    HonestHistory,
    encode,
    extend,
    honest_history,
    sign_change,
)
from tests.support.parties import make_party
from troth import limits
from troth.clock import FixedClock
from troth.credentials import (
    RevocationEntry,
    RevocationKind,
    Supersession,
    build_page,
    feed_genesis,
    next_head,
    verify_page,
)
from troth.credentials.revocation_held import VerifiedFeed, feed_checkpoints
from troth.crypto import KeyType, sha256
from troth.crypto.private import generate_private_key
from troth.errors import CredentialError, CredentialFailure, IdentityError, IdentityFailure
from troth.identity import (
    ChangeBody,
    Checkpoint,
    Checkpoints,
    SignedChange,
    VerifiedIdentity,
    check_extends,
    encode_history,
    verify_history,
)
from troth.identity.known import KnownHistories
from troth.storage import SqliteDatabase, SqliteIdentityStore
from troth.vault import SoftwareVault

F = IdentityFailure
LENGTH = 70  # more changes than one history may present
NOW = T0 + LENGTH * DAY
AUTHORITY = b"\xaa" * 32


def suffix(line: HonestHistory, start: int, authority: bytes = AUTHORITY) -> bytes:
    """The history of `line` presented from change `start`, its checkpoint naming `authority`."""
    checkpoint = Checkpoint(sha256(line.changes[0].body), authority, start)
    return encode_history(line.changes[start:], checkpoint)


def attesting(
    line: HonestHistory, calls: list[tuple[Checkpoint, bytes]] | None = None
) -> Checkpoints:
    """A checkpoint callback that attests exactly the changes of `line` (by index and hash)."""
    hashes = [sha256(change.body) for change in line.changes]

    def attests(checkpoint: Checkpoint, change_hash: bytes) -> bool:
        if calls is not None:
            calls.append((checkpoint, change_hash))
        return (
            checkpoint.identifier == hashes[0]
            and checkpoint.authority == AUTHORITY
            and hashes[checkpoint.index] == change_hash
        )

    return attests


@pytest.fixture(scope="module")
def line() -> HonestHistory:
    return honest_history(LENGTH)


def rejects(
    data: bytes, reason: IdentityFailure, change: int | None, **kwargs: object
) -> IdentityError:
    with pytest.raises(IdentityError) as caught:
        verify_history(data, now=NOW, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason is reason, caught.value
    assert caught.value.change == change, caught.value
    return caught.value


def test_a_checkpointed_suffix_verifies_through_the_callback(line: HonestHistory) -> None:
    calls: list[tuple[Checkpoint, bytes]] = []
    identity = verify_history(suffix(line, 60), now=NOW, checkpoints=attesting(line, calls))
    assert identity.identifier.digest == sha256(line.changes[0].body)
    assert identity.first_index == 60
    assert identity.change_count == LENGTH
    assert [c.index for c in identity.changes] == list(range(60, LENGTH))
    assert identity.checkpoint == Checkpoint(identity.identifier.digest, AUTHORITY, 60)
    assert calls == [(identity.checkpoint, sha256(line.changes[60].body))]  # asked once
    assert identity.current_key == line.keys[-1].public_key


def test_without_an_attestation_a_checkpointed_history_is_refused(line: HonestHistory) -> None:
    data = suffix(line, 60)
    error = rejects(data, F.UNATTESTED_CHECKPOINT, 60)
    authority = "T" + AUTHORITY.hex()
    assert f"present the full history or trust {authority}" in str(error)
    rejects(data, F.UNATTESTED_CHECKPOINT, 60, checkpoints=lambda cp, h: False)
    # an attestation of another change (or of another identity) is no attestation
    other = honest_history(LENGTH)
    rejects(data, F.UNATTESTED_CHECKPOINT, 60, checkpoints=attesting(other))


def test_a_full_history_needs_no_callback_and_ignores_it(line: HonestHistory) -> None:
    short = HonestHistory(line.keys[:5], line.changes[:5], line.keys[5])
    called: list[tuple[Checkpoint, bytes]] = []
    identity = verify_history(
        encode(short.changes), now=T0 + 5 * DAY, checkpoints=attesting(line, called)
    )
    assert identity.checkpoint is None
    assert identity.first_index == 0
    assert not called


def test_tampered_suffixes_are_refused(line: HonestHistory) -> None:
    ok = attesting(line)
    identifier = sha256(line.changes[0].body)
    # the checkpoint names change 61 but the first change presented is change 60
    wrong_index = encode_history(line.changes[60:], Checkpoint(identifier, AUTHORITY, 61))
    rejects(wrong_index, F.BROKEN_LINK, 61, checkpoints=ok)
    # a forged first change (another key, a valid signature of its own): not what is attested
    forged_body = ChangeBody.decode(line.changes[60].body)._replace(
        primary_key=line.keys[3].public_key
    )
    forged = sign_change(forged_body, line.keys[3], line.keys[2])
    data = encode_history([forged, *line.changes[61:]], Checkpoint(identifier, AUTHORITY, 60))
    rejects(data, F.UNATTESTED_CHECKPOINT, 60, checkpoints=ok)
    # a first change that claims to start the history, or carries no previous signature
    first = ChangeBody.decode(line.changes[60].body)
    for body, previous_key, reason in (
        (first._replace(previous=None), line.keys[59], F.BROKEN_LINK),
        (first, None, F.MISSING_PREVIOUS_SIGNATURE),
    ):
        change = sign_change(body, line.keys[60], previous_key)
        data = encode_history([change], Checkpoint(identifier, AUTHORITY, 60))
        rejects(data, reason, 60, checkpoints=lambda cp, h: True)
    # the changes after the checkpoint are verified as in any history
    broken = SignedChange(line.changes[62].body, line.changes[62].signature, bytes(64))
    data = encode_history(
        [line.changes[60], line.changes[61], broken, *line.changes[63:]],
        Checkpoint(identifier, AUTHORITY, 60),
    )
    rejects(data, F.BAD_PREVIOUS_SIGNATURE, 62, checkpoints=ok)
    # the identifier is the checkpoint's claim: a suffix claiming another identity is refused
    stolen = encode_history(line.changes[60:], Checkpoint(b"\x01" * 32, AUTHORITY, 60))
    rejects(stolen, F.UNATTESTED_CHECKPOINT, 60, checkpoints=ok)


def test_the_limits_apply_to_a_suffix(line: HonestHistory) -> None:
    """69 changes presented: over the limit of 64, checkpoint or not."""
    rejects(suffix(line, 1), F.OVER_LIMIT, None, checkpoints=attesting(line))


# -- store-or-extend by index and hash -----------------------------------------------------------


def verified(line: HonestHistory, start: int, end: int) -> VerifiedIdentity:
    """Changes start..end-1 of `line`, verified (a full history when start is 0)."""
    changes = line.changes[start:end]
    when = T0 + end * DAY
    if start == 0:
        return verify_history(encode(changes), now=when)
    checkpoint = Checkpoint(sha256(line.changes[0].body), AUTHORITY, start)
    return verify_history(
        encode_history(changes, checkpoint), now=when, checkpoints=attesting(line)
    )


def hashes(line: HonestHistory, start: int, end: int) -> list[bytes]:
    return [sha256(change.body) for change in line.changes[start:end]]


@pytest.mark.parametrize(
    ("stored", "candidate"),
    [
        ((0, 10), (5, 12)),  # overlaps and goes on
        ((0, 10), (10, 12)),  # starts right after: names the last stored change as previous
        ((20, 30), (25, 60)),
        ((20, 30), (20, 30)),  # the stored copy itself
        ((20, 30), (0, 40)),  # a full history that extends a stored suffix
    ],
)
def test_extensions_by_index(
    line: HonestHistory, stored: tuple[int, int], candidate: tuple[int, int]
) -> None:
    check_extends(hashes(line, *stored), verified(line, *candidate), stored_first=stored[0])


def forked(line: HonestHistory, at: int, length: int) -> HonestHistory:
    """`line` up to change `at`, then honest rotations of its own from there (another next
    key committed at change `at`): a fork of `line` at `at`."""
    fork = HonestHistory(line.keys[:at], line.changes[:at], line.keys[at])
    while len(fork.changes) < length:
        fork = extend(fork, T0 + len(fork.changes) * DAY)
    return fork


def test_forks_and_rollbacks_by_index(line: HonestHistory) -> None:
    cases = [
        ((0, 10), verified(line, 5, 9), F.ROLLBACK, None),
        ((20, 30), verified(line, 0, 25), F.ROLLBACK, None),
        ((0, 14), verified(forked(line, 12, 14), 10, 14), F.FORK, 12),  # differs at change 12
        ((0, 12), verified(forked(line, 11, 14), 12, 14), F.FORK, 12),  # names another previous
        # a gap: nothing shows the candidate descends from the stored copy, whatever
        # checkpoint it was verified with (another authority's may attest a stolen fork)
        ((0, 10), verified(line, 30, 40), F.UNATTESTED_CHECKPOINT, 30),
        ((0, 10), verified(line, 11, 40), F.UNATTESTED_CHECKPOINT, 11),
    ]
    for stored, candidate, reason, change in cases:
        with pytest.raises(IdentityError) as caught:
            check_extends(hashes(line, *stored), candidate, stored_first=stored[0])
        assert caught.value.reason is reason, (stored, caught.value)
        assert caught.value.change == change
    # a suffix starting right after the stored copy and naming its last change continues it,
    # whatever it says next: pre-rotation and the checkpoint's authority judge that change
    check_extends(hashes(line, 0, 12), verified(forked(line, 12, 14), 12, 14))


def test_a_verifier_that_stored_a_full_history_accepts_a_suffix_extending_it(
    tmp_path: Path, line: HonestHistory
) -> None:
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    known = KnownHistories(store, FixedClock(NOW), cache_seconds=0)
    known.observe(verified(line, 0, 40))
    known.observe(verified(line, 30, 70))  # extends it: stored as the newer copy
    assert store.get_history(sha256(line.changes[0].body))[1] == 70  # type: ignore[index]
    for older, reason in (
        (verified(line, 0, 40), F.ROLLBACK),
        (verified(line, 50, 60), F.ROLLBACK),
    ):
        with pytest.raises(IdentityError) as caught:
            known.observe(older)
        assert caught.value.reason is reason
    known.observe(verified(line, 45, 70))  # the same end, from another checkpoint: equal


def made_up(line: HonestHistory, index: int) -> VerifiedIdentity:
    """A change `index` of `line` naming its change index-1 as previous but revealing a key
    that change did not commit to (an authority's made-up change), verified from its
    checkpoint (a callback attesting it)."""
    before = HonestHistory(line.keys[:index], line.changes[:index], line.next_key)
    change = extend(before, T0 + index * DAY, new_key=generate_private_key(KeyType.ED25519))
    data = encode_history(
        change.changes[index:], Checkpoint(sha256(line.changes[0].body), AUTHORITY, index)
    )
    return verify_history(data, now=NOW, checkpoints=lambda checkpoint, change_hash: True)


def test_a_stored_copy_shown_made_up_is_replaced(tmp_path: Path, line: HonestHistory) -> None:
    """A stored copy from a checkpoint whose first change does not follow the change it names
    as previous refuses nothing once a history holding that change shows it (review 23a,
    checkpoints 3): `check` and `observe` tell the callback, `observe` stores the real
    history over it, and the made-up one is then refused."""
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    told: list[tuple[bytes, int]] = []
    known = KnownHistories(
        store,
        FixedClock(NOW),
        cache_seconds=60,
        refuted=lambda identifier, copy: told.append((identifier.digest, copy.first_index)),
    )
    forged = made_up(line, 20)
    known.observe(forged)
    digest = forged.identifier.digest
    for real in (verified(line, 0, 20), verified(line, 10, 22)):  # ends before, or forks at 20
        known.check(real)
        assert told.pop() == (digest, 20)
    known.observe(verified(line, 0, 20))
    assert told == [(digest, 20)]
    assert store.get_history(digest)[1] == 20  # type: ignore[index]
    with pytest.raises(IdentityError) as caught:
        known.observe(forged)
    assert caught.value.reason is F.NEXT_KEY_MISMATCH
    known.observe(verified(line, 10, 30))


def test_a_real_stored_copy_from_a_checkpoint_still_refuses(
    tmp_path: Path, line: HonestHistory
) -> None:
    """The change before a genuine stored suffix is followed by it: a history ending there is
    a rollback, and one forking before it (naming another change) is a fork, as before."""
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    told: list[object] = []
    known = KnownHistories(
        store, FixedClock(NOW), cache_seconds=0, refuted=lambda *args: told.append(args)
    )
    known.observe(verified(line, 20, 30))
    for candidate, reason in (
        (verified(line, 0, 20), F.ROLLBACK),  # ends right before: change 20 follows it
        (verified(line, 0, 10), F.ROLLBACK),
        (verified(forked(line, 15, 25), 0, 25), F.FORK),
        (verified(forked(line, 19, 21), 0, 21), F.FORK),  # two continuations of change 19
    ):
        with pytest.raises(IdentityError) as caught:
            known.observe(candidate)
        assert caught.value.reason is reason, candidate
    assert told == []


# -- the feed as a checkpoint ------------------------------------------------------------------


def feed_of(supersessions: list[tuple[bytes, int, bytes]], *, issued_at: int) -> VerifiedFeed:
    """A verified feed of an authority whose kind-3 entries name (identifier, changes, hash)."""
    authority = make_party(SoftwareVault(), now=T0)
    head = feed_genesis(authority.identifier)
    entries = []
    for seq, (identifier, changes, change_hash) in enumerate(supersessions):
        entry = RevocationEntry(
            seq,
            RevocationKind.SUPERSEDED,
            identifier,
            authority.identifier,
            issued_at,
            "",
            Supersession(changes, change_hash),
        ).encode()
        entries.append(entry)
        head = next_head(head, entry)
    page = build_page(
        authority.signer, entries, start=0, head=head, latest=len(entries), now=issued_at
    )
    return verify_page(page, authority=authority.identifier, now=issued_at)


def test_held_feeds_attest_checkpoints(line: HonestHistory) -> None:
    identifier = sha256(line.changes[0].body)
    feed = feed_of(
        [
            (identifier, 41, sha256(line.changes[40].body)),
            (identifier, 61, sha256(line.changes[60].body)),
        ],
        issued_at=NOW,
    )
    authority = feed.authority.digest
    data = suffix(line, 60, authority)
    fresh = feed_checkpoints({feed.authority: feed}, now=NOW + 10, max_staleness=300)
    assert verify_history(data, now=NOW, checkpoints=fresh).first_index == 60
    assert verify_history(suffix(line, 40, authority), now=NOW, checkpoints=fresh).first_index == 40
    for checkpoints in (
        feed_checkpoints({feed.authority: feed}, now=NOW + 301, max_staleness=300),  # stale
        feed_checkpoints({}, now=NOW, max_staleness=300),  # not held
    ):
        rejects(data, F.UNATTESTED_CHECKPOINT, 60, checkpoints=checkpoints)
    rejects(suffix(line, 50, authority), F.UNATTESTED_CHECKPOINT, 50, checkpoints=fresh)
    # a checkpoint naming another authority (whose feed is not held): the held feed naming
    # the same change attests it all the same (review 24a, two authorities 1), not another
    assert verify_history(suffix(line, 60, AUTHORITY), now=NOW, checkpoints=fresh).first_index == 60
    rejects(suffix(line, 50, AUTHORITY), F.UNATTESTED_CHECKPOINT, 50, checkpoints=fresh)


def test_supersessions_judge_suffixes_by_index(line: HonestHistory) -> None:
    identifier = sha256(line.changes[0].body)
    feed = feed_of([(identifier, 50, sha256(line.changes[49].body))], issued_at=NOW)
    feed.check_current(verified(line, 30, 70))  # holds change 49 as the feed names it
    feed.check_current(verified(line, 49, 70))  # starts with it
    feed.check_current(verified(line, 50, 70))  # starts right after it, naming it previous
    for stale in (
        verified(line, 20, 45),  # ends before it
        verified(forked(line, 49, 50), 40, 50),  # another change 49
        verified(forked(line, 49, 52), 50, 52),  # a change 50 that does not follow it
        verified(line, 55, 70),  # starts after a gap: cannot show it descends from it
    ):
        with pytest.raises(CredentialError) as caught:
            feed.check_current(stale)
        assert caught.value.reason is CredentialFailure.SUPERSEDED
    big = Supersession(
        limits.MAX_CHANGE_INDEX + 1, b"\x00" * 32
    )  # an identity may rotate for years
    assert big.changes == 1 << 32
    with pytest.raises(ValueError, match="a supersession names"):
        Supersession(limits.MAX_CHANGE_INDEX + 2, b"\x00" * 32)
