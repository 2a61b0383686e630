"""Review 71q (area: wave3a): a review of 71k (the authority's enrollment rows, local identities'
names and handles read typed and bounded; a damaged purpose_keys row skipped by a rotation) and
71h (the collector's ALREADY answer judged against the log's own copy of the signer's history).

1. (a damaged restore hold could not be released, low) 71k skips a damaged purpose_keys row in a
   rotation (a compromised one goes on: the row's key is left in the vault, its attestation
   stale once the rotation is made) while a damaged `identity_restore_holds` row refused the
   identity's signer, channel and rotation with StorageError. Refusing is right for a hold (a
   hold whose time cannot be read is still a hold: the identity may be a restored stale one,
   and skipping the row would let it sign with keys a rotation since retired); blocking a
   compromised rotation is no more than a writer of node.db can do with a hold row that is
   well formed. But the operator's recovery was blocked too: `troth identity
   release-restored`, even with --vouch-not-rotated, and the Python `release_restored`, read
   the hold's time first and failed with the same StorageError, so the only way out was an
   edit of node.db by hand. Now a hold whose time is unreadable is a hold: the identity is
   refused IdentityError ROLLBACK (naming the damage and the release), and released on the
   operator's vouch only (no feed can be dated after a hold of no readable time), never when
   a feed shows the identity rotated after the copy.
2. (a remote signer's batch read the log's copy per record, low) 71h's check of a record
   signed again reads the log's copy of the signer's history (a row of up to
   MAX_IDENTITY_HISTORY_BYTES, each of its changes hashed) for each record: a batch of
   MAX_TRACE_SUBMIT_RECORDS records of one signer signed again (the same record, each at
   another time) read and decoded it that many times, beside each record's own signature
   check. Now once per batch (`_LogCopy`), and once more for the records a concurrent resend
   appended (`_settle`: the copy may have grown meanwhile).
3. (the ALREADY check and the log's append disagreed, low) Over every pair of the log's copy
   and the history sent: a history sent behind the log's copy and forking from it (or ending
   before it begins) was answered ATTESTATION_STALE ("sign it again": the outbox of a forked
   identity signed it again under its fork, refused the same, for ever) where the append of
   a record of that key is refused SIGNER_INVALID. The check now follows the append's
   `observe`: behind or at the copy, the sent history's newest change must be the copy's.
4. (holder rows 71k left untyped, low) `trusted_authorities` and `feed_syncs_due` were read as
   `bytes()` of what SQLite returned (TEXT failed bare, an INTEGER n made n zero bytes, a BLOB
   address handed on); now typed and bounded (an address at most MAX_TICKET_BYTES, as a
   ticket carries it), StorageError (node.db damaged). `SqliteCredentialStore` moved to
   troth.storage.sqlite_credentials first (sqlite_authority.py was at 798 lines).
5. (the authority's hold time read bare, low) `int(min(held_at))` of `authority_restore_hold`:
   TEXT failed bare (ValueError), a BLOB (TypeError), a REAL truncated; now StorageError.
6. (was xfail; fixed by review 72b, holds 1) a damaged authority hold is not released (the
   same as 1, for an authority): its release reports the hold's time as an int, which a
   damaged one lacks: now `HoldTime.DAMAGED`, released on the operator's word.
"""

from __future__ import annotations

import copy
import dataclasses
import sqlite3
import types
from pathlib import Path
from typing import cast

import pytest

from tests.conftest import NOW
from tests.support.traces import Held
from tests.test_review47l_windows import EARLY
from tests.test_review57i_restore import _restored_after_rotation
from tests.test_review71c_rows import node_db  # noqa: F401 - a fixture
from tests.test_review71d_outbox import Logged
from tests.test_trace_service import F
from troth import limits
from troth.clock import FixedClock
from troth.errors import IdentityError, IdentityFailure, StorageError, TraceError
from troth.identity import Identifier, VerifiedIdentity
from troth.node import open_node
from troth.node.release import release_restored
from troth.storage import HoldTime, SqliteAuthorityStore, SqliteCredentialStore, SqliteDatabase
from troth.trace.collect import _check_key_current, _LogCopy
from troth.trace.log import TraceLog
from troth.trace.log_histories import observe
from troth.trace.signing import VerifiedRecord
from troth.trace.submit import Status

_DAMAGE = "UPDATE identity_restore_holds SET held_at = 'x' WHERE identifier = ?"


def _damaged_hold(home: Path) -> None:
    """Node `laptop` restored from before `courier`'s rotation, the restore found (both of its
    identities held), and `clerk`'s hold time made TEXT (node.db damaged)."""
    _restored_after_rotation(home)
    with open_node("laptop") as node:
        assert node.identities.check_restored(NOW + 20) is not None
        clerk = node.identities.find("clerk").identifier
        node.db.execute(_DAMAGE, (clerk,))


def test_a_damaged_hold_is_a_hold_released_on_the_vouch_only(troth_home: Path) -> None:
    """71q wave3a 1: a hold whose time node.db holds as TEXT refused the identity with
    StorageError, and its release (vouched too) failed with it: the operator could not
    recover but by editing node.db. Now the identity is refused ROLLBACK, a release without
    the vouch is refused ROLLBACK naming the vouch, and the vouch releases it."""
    _damaged_hold(troth_home)
    clock = FixedClock(NOW + 30)
    with open_node("laptop") as node:
        with pytest.raises(IdentityError) as refused:
            node.identities.signer("clerk", now=NOW + 30)
        assert refused.value.reason is IdentityFailure.ROLLBACK
        assert "damaged" in str(refused.value)
        with pytest.raises(IdentityError) as unvouched:
            release_restored(node, "clerk", clock=clock)
        assert unvouched.value.reason is IdentityFailure.ROLLBACK
        assert "--vouch-not-rotated" in str(unvouched.value)
        done = release_restored(node, "clerk", clock=clock, vouch=True)
        assert (done.released, done.vouched) == (True, True)
        node.identities.signer("clerk", now=NOW + 30).sign(b"m")
        with pytest.raises(IdentityError):  # the other identity stays held
            node.identities.signer("courier", now=NOW + 30)


def test_a_batch_of_records_signed_again_reads_the_logs_copy_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71q wave3a 2: 71h's check of a record signed again against the log's copy of the
    signer's history read that copy (a row of up to MAX_IDENTITY_HISTORY_BYTES) and hashed
    each of its changes once per record: a batch of MAX_TRACE_SUBMIT_RECORDS records signed
    again, all of one signer (a batch is one signer's), read and decoded it that many times.
    Now once per batch (and once more for the records a concurrent resend appended)."""
    logged = Logged(tmp_path, rotate=False)
    try:
        reads: list[object] = []
        history = logged.collector.log.history

        def counted(agent: Identifier) -> bytes | None:
            reads.append(agent)
            return history(agent)

        monkeypatch.setattr(logged.collector.log, "history", counted)
        first = logged.submission.records[0]
        again = [logged.again(logged.stolen, first, time=EARLY + 1 + n) for n in range(8)]
        results = logged.send(*again)
        assert {r.status for r in results} == {Status.ALREADY}
        assert len(reads) == 1
    finally:
        logged.collector.log.close()


@dataclasses.dataclass(frozen=True)
class _Histories:
    """One identity's genuine histories (changes 0 to 3) and a fork of it made from a backup
    at change 1 (its changes 2 and 3), each its view at that change."""

    genuine: tuple[VerifiedIdentity, ...]
    fork: tuple[VerifiedIdentity, ...]


@pytest.fixture(scope="module")
def histories() -> _Histories:
    agent = Held(now=EARLY)
    genuine = [agent.identity]
    fork: list[VerifiedIdentity] = []
    backup: Held | None = None
    for n in range(1, 4):
        agent.rotate(EARLY + n)
        genuine.append(agent.identity)
        if n == 1:
            backup = copy.copy(agent)
    assert backup is not None
    for n in range(2, 4):
        backup.rotate(EARLY + 10 + n)
        fork.append(backup.identity)
    return _Histories(tuple(genuine), tuple(fork))


def _log_says(log_copy: VerifiedIdentity, sent: VerifiedIdentity) -> object:
    """What the log's append says of a record signed by `sent`'s current key, the log holding
    `log_copy` (troth.trace.log_histories.observe, then the key's change against the log's)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(
            "CREATE TABLE histories (identifier BLOB PRIMARY KEY, history BLOB NOT NULL, "
            "changes INTEGER NOT NULL, current BLOB NOT NULL)"
        )
        known = (log_copy.change_count, log_copy.current_change_hash)
        conn.execute(
            "INSERT INTO histories VALUES (?, ?, ?, ?)",
            (log_copy.identifier.digest, log_copy.history, *known),
        )
        try:
            seen = observe(conn, known, sent)
        except TraceError as exc:
            return exc.reason
    finally:
        conn.close()
    return None if seen.current == sent.current.index else F.ATTESTATION_STALE


def _collector_says(log_copy: VerifiedIdentity, sent: VerifiedIdentity) -> object:
    """What the collector's ALREADY check says of a record signed again by `sent`'s current
    key, the log holding `log_copy`."""
    log = cast(TraceLog, types.SimpleNamespace(history=lambda agent: log_copy.history))
    verified = types.SimpleNamespace(
        epoch=types.SimpleNamespace(is_current=True, change=sent.current.index),
        record=types.SimpleNamespace(id=b"r" * 16, agent=sent.identifier),
        signer=sent,
    )
    try:
        _check_key_current(cast(VerifiedRecord, verified), _LogCopy(log))
    except TraceError as exc:
        return exc.reason
    return None


_COPIES = [("genuine", n) for n in range(4)] + [("fork", n) for n in range(2)]


@pytest.mark.parametrize("sent", _COPIES, ids=lambda c: f"sent-{c[0]}{c[1]}")
@pytest.mark.parametrize("held", _COPIES, ids=lambda c: f"log-{c[0]}{c[1]}")
def test_the_already_check_agrees_with_the_logs_append(
    histories: _Histories, held: tuple[str, int], sent: tuple[str, int]
) -> None:
    """71q wave3a 3: over every pair of the log's copy and the history sent (behind, equal to,
    ahead of the log's; genuine or a fork from a backup at change 1), the collector's check of
    a record signed again with the sent history's current key answers as the log's append of
    a record of that key does: accepted, ATTESTATION_STALE or SIGNER_INVALID. (The node's copy
    is `_signer`'s: a history sent behind it is refused before either.) A history sent behind
    the log's copy and forking from it was ATTESTATION_STALE (sign it again: the client of a
    forked identity signed again under its fork, refused the same, for ever) where the append
    says SIGNER_INVALID, as one that ends before the log's copy begins."""
    log_copy, sent_copy = (getattr(histories, kind)[n] for kind, n in (held, sent))
    assert _collector_says(log_copy, sent_copy) == _log_says(log_copy, sent_copy)


_TRUST = "INSERT INTO trusted_authorities VALUES ({}, {}, 5)"
_DUE = "INSERT INTO feed_syncs_due (authority, address, marked_at) VALUES ({}, {}, 5)"
_HOLDER_ROWS = {  # the row, the read
    "trusted identifier text": (_TRUST.format("'abc'", "'/tcp/a'"), "trusted_authorities"),
    "trusted identifier integer": (_TRUST.format("1 << 50", "'/tcp/a'"), "trusted_authorities"),
    "trusted address blob": (_TRUST.format("x'01'", "x'2f'"), "trusted_authorities"),
    "due authority text": (_DUE.format("'abc'", "''"), "syncs_due"),
    "due authority integer": (_DUE.format("1 << 50", "''"), "syncs_due"),
    "due address blob": (_DUE.format("x'01'", "x'2f'"), "syncs_due"),
}


@pytest.mark.parametrize("what", sorted(_HOLDER_ROWS))
def test_a_damaged_trusted_authority_or_sync_due_row_is_refused(
    node_db: SqliteDatabase,  # noqa: F811 - the fixture imported above
    what: str,
) -> None:
    """71q wave3a 4: the two holder tables 71k left untyped were read as `bytes()` of what
    SQLite returned, their addresses handed on as they were: a `trusted_authorities` row (read
    at each opening of the node's trust, each verification's list of authorities) or a
    `feed_syncs_due` row (each round) whose identifier was TEXT failed bare (TypeError), an
    INTEGER n made n zero bytes (MemoryError), a BLOB address was handed on as bytes (an
    INTEGER one is stored as TEXT: the column's affinity). Now StorageError saying node.db is
    damaged."""
    row, read = _HOLDER_ROWS[what]
    node_db.execute(row)
    with pytest.raises(StorageError, match="is damaged: its"):
        getattr(SqliteCredentialStore(node_db), read)()


def test_sound_trusted_authority_and_sync_due_rows_read_as_written(
    node_db: SqliteDatabase,  # noqa: F811 - the fixture imported above
) -> None:
    """71q wave3a 4: the typed reads keep what troth writes, an address at its largest too."""
    store = SqliteCredentialStore(node_db)
    address = "/tcp/" + "é" * ((limits.MAX_TICKET_BYTES - 5) // 2)
    store.trust_authority(b"\x01" * 32, address, 5)
    store.mark_sync_due(b"\x02" * 32, "node:beta", 5)
    assert store.trusted_authorities() == [(b"\x01" * 32, address)]
    assert store.syncs_due() == [(b"\x02" * 32, "node:beta")]


def _authority_hold(db: SqliteDatabase, time: str) -> None:
    db.execute(
        "CREATE TABLE authority_restore_hold (authority BLOB PRIMARY KEY, held_at INTEGER NOT NULL)"
    )
    db.execute(f"INSERT INTO authority_restore_hold VALUES (x'01', {time})")  # noqa: S608


@pytest.mark.parametrize("time", ["'x'", "x'05'", "5.5"])
def test_a_damaged_authority_hold_is_refused_as_damaged(
    node_db: SqliteDatabase,  # noqa: F811 - the fixture imported above
    time: str,
) -> None:
    """71q wave3a 5: the hold a restore puts on an authority was read as `int(min(held_at))`:
    a TEXT time failed bare (ValueError) each time the node asked whether its hosted
    authority is held (its trust, its policies, its status), a BLOB (TypeError), a REAL was
    truncated. Now StorageError (node.db damaged), as a local identity's hold's (review 71c,
    rows 7)."""
    _authority_hold(node_db, time)
    with pytest.raises(StorageError, match="is damaged: its"):
        SqliteAuthorityStore(node_db).restore_held()


def test_a_damaged_authority_hold_is_released(
    node_db: SqliteDatabase,  # noqa: F811 - the fixture imported above
) -> None:
    """71q wave3a 6 (fixed by review 72b, holds 1): the operator's release (on its word,
    --revoked-again) lifts a hold whose time is damaged, as it lifts one well formed, and says
    its time is unknown (`HoldTime.DAMAGED`)."""
    _authority_hold(node_db, "'x'")
    store = SqliteAuthorityStore(node_db)
    assert store.release_restore_hold() is HoldTime.DAMAGED
    assert node_db.fetch_one("SELECT 1 FROM authority_restore_hold") is None
