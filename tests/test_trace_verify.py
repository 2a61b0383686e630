"""Verifying a whole log: every edit, deletion, reordering, replay and insertion is detected and
located; truncation and forks against a kept checkpoint; "unanchored" without one; signatures
outlive rotations; damage is reported, never healed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.traces import DAY, NOW, Held, db, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.crypto import sha256
from troth.errors import StorageError, TraceError, TraceFailure
from troth.trace import AnchorStatus, Checkpoint, CheckpointAnchor, TraceLog
from troth.trace.checkpoint import parse_checkpoint, sign_checkpoint
from troth.trace.dsse import encode_envelope, pae
from troth.trace.merkle import EMPTY_ROOT, leaf_hash
from troth.trace.record import PAYLOAD_TYPE, Disclosure, encode_disclosures
from troth.trace.signing import open_envelope, resolve_key, sign_record
from troth.trace.store import envelope_agent
from troth.trace.verify import verify_log


class World:
    """A log written by two agents taking turns (A0 B0 A1 B1 ...), and its owner."""

    def __init__(self, path: Path, records: int = 6) -> None:
        self.clock = FixedClock(NOW)
        self.owner = Held()
        self.log = open_log(path, self.clock, self.owner)
        self.a, self.b = Held(), Held()
        self.rec_a = recorder(self.log, self.a, self.clock)
        self.rec_b = recorder(self.log, self.b, self.clock)
        for number in range(records):
            (self.rec_a if number % 2 == 0 else self.rec_b).record(tool_call())
        self.checkpoint = self.log.checkpoint()

    def rows(self) -> list[tuple[int, str, bytes, bytes]]:
        with db(self.log) as conn:
            return [
                (r[0], r[1], bytes(r[2]), bytes(r[3]))
                for r in conn.execute(
                    "SELECT idx, record_id, leaf, envelope FROM leaves ORDER BY idx"
                )
            ]

    def put(self, index: int, envelope: bytes, *, record_id: str | None = None) -> None:
        """Overwrite row `index` with `envelope` and its leaf hash (a careful attacker)."""
        conn = db(self.log)
        if record_id is None:
            conn.execute(
                "UPDATE leaves SET envelope = ?, leaf = ? WHERE idx = ?",
                (envelope, leaf_hash(envelope), index),
            )
        else:
            conn.execute(
                "INSERT INTO leaves VALUES (?, ?, ?, ?, NULL, ?)",
                (index, record_id, leaf_hash(envelope), envelope, envelope_agent(envelope)),
            )
        conn.close()


def _failure(log: TraceLog, anchor: bytes | None = None) -> TraceError:
    with pytest.raises(TraceError) as caught:
        verify_log(log, anchor=anchor)
    return caught.value


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "trace.db")


def test_an_untouched_log_is_unanchored_then_valid(world: World) -> None:
    report = verify_log(world.log)
    assert report.status is AnchorStatus.UNANCHORED
    assert (report.size, report.agents, report.tail) == (6, 2, 0)
    assert report.disclosures == 12
    anchored = verify_log(world.log, anchor=world.checkpoint.note)
    assert anchored.status is AnchorStatus.VALID
    world.rec_a.record(tool_call())
    grown = verify_log(world.log, anchor=world.checkpoint.note)
    assert (grown.status, grown.tail) == (AnchorStatus.VALID, 1)


def test_every_byte_edit_is_detected_and_located(tmp_path: Path) -> None:
    """Each byte of record 1's envelope flipped, the stored leaf hash updated to match:
    verification names record 1."""
    world = World(tmp_path / "trace.db", records=3)
    _index, _id, _leaf, original = world.rows()[1]
    for position in range(len(original)):
        edited = bytearray(original)
        edited[position] ^= 0x01
        world.put(1, bytes(edited))
        failure = _failure(world.log)
        assert failure.index == 1, (position, failure)
    world.put(1, original)
    verify_log(world.log)


def test_an_edit_that_leaves_the_stored_leaf_is_a_leaf_mismatch(world: World) -> None:
    conn = db(world.log)
    envelope = bytearray(world.rows()[4][3])
    envelope[40] ^= 0x01
    conn.execute("UPDATE leaves SET envelope = ? WHERE idx = 4", (bytes(envelope),))
    conn.close()
    failure = _failure(world.log)
    assert (failure.reason, failure.index) == (TraceFailure.LEAF_MISMATCH, 4)


def test_deletion_is_detected(world: World) -> None:
    rows = world.rows()
    conn = db(world.log)
    conn.execute("DELETE FROM leaves WHERE idx = 2")  # A1: A's chain now jumps from A0 to A2
    for index, *_ in rows[3:]:
        conn.execute("UPDATE leaves SET idx = ? WHERE idx = ?", (index - 1, index))
    conn.close()
    failure = _failure(world.log)
    assert (failure.reason, failure.index) == (TraceFailure.CHAIN_BROKEN, 3)


def test_deletion_leaving_a_gap_is_located(world: World) -> None:
    conn = db(world.log)
    conn.execute("DELETE FROM leaves WHERE idx = 5")
    conn.close()
    failure = _failure(world.log)
    assert failure.reason is TraceFailure.TRUNCATED  # the last one: the checkpoint is longer
    conn = db(world.log)
    conn.execute("DELETE FROM leaves WHERE idx = 2")
    conn.close()
    failure = _failure(world.log)
    assert (failure.reason, failure.index) == (TraceFailure.MALFORMED, 3)


def _swap(world: World, first: int, second: int) -> None:
    """Swap two whole rows (record, id, leaf hash): disclosures follow their record."""
    conn = db(world.log)
    conn.execute("UPDATE leaves SET idx = -1 WHERE idx = ?", (first,))
    conn.execute("UPDATE leaves SET idx = ? WHERE idx = ?", (first, second))
    conn.execute("UPDATE leaves SET idx = ? WHERE idx = -1", (second,))
    conn.close()


def test_reordering_is_detected(world: World) -> None:
    _swap(world, 0, 2)  # A1 where A0 was, and A0 where A1 was
    failure = _failure(world.log)
    assert (failure.reason, failure.index) == (TraceFailure.CHAIN_BROKEN, 0)


def test_reordering_two_agents_records_breaks_the_root(world: World) -> None:
    _swap(world, 0, 1)  # B0 first, A0 second: each agent's chain is intact
    failure = _failure(world.log)
    assert failure.reason is TraceFailure.ROOT_MISMATCH


def test_replay_is_detected(world: World) -> None:
    rows = world.rows()
    world.put(6, rows[4][3], record_id="replayed")
    failure = _failure(world.log)
    assert (failure.reason, failure.index) == (TraceFailure.REPLAYED, 6)


def test_insertion_signed_by_another_key(world: World) -> None:
    """A record that claims agent A, A's keyid and A's next seq, but signed by B's key; and one
    that names B's key for A's record."""
    head = world.log.head(world.a.identifier)
    assert head is not None
    genuine = sign_record(world.a.signer(), tool_call(), seq=head[0] + 1, prev=head[1], time=NOW)
    payload = genuine.record.encode()
    forged = encode_envelope(
        PAYLOAD_TYPE, payload, genuine.record.key, world.b.signer().sign(pae(PAYLOAD_TYPE, payload))
    )
    world.put(6, forged, record_id=genuine.record.id)
    failure = _failure(world.log)
    assert (failure.reason, failure.index, failure.record) == (
        TraceFailure.BAD_SIGNATURE,
        6,
        genuine.record.id,
    )
    b_key = resolve_key(world.b.identity, world.b.signer().attestation).keyid
    other = encode_envelope(
        PAYLOAD_TYPE, payload, b_key, world.b.signer().sign(pae(PAYLOAD_TYPE, payload))
    )
    world.put(6, other)
    assert _failure(world.log).reason is TraceFailure.MALFORMED  # keyid is not the record's key


def test_a_record_by_an_identity_the_log_does_not_know(world: World) -> None:
    stranger = Held()
    record = sign_record(stranger.signer(), tool_call(), seq=0, prev=None, time=NOW)
    world.put(6, record.envelope, record_id=record.record.id)
    failure = _failure(world.log)
    assert (failure.reason, failure.index) == (TraceFailure.UNKNOWN_KEY, 6)


def test_tampered_disclosure_and_history(world: World) -> None:
    record_id = world.rows()[3][1]
    held = world.log.disclosures(record_id)
    held["result"] = Disclosure(held["result"].salt, json.dumps("refunded twice").encode())
    conn = db(world.log)
    conn.execute(
        "UPDATE leaves SET disclosures = ? WHERE record_id = ?",
        (encode_disclosures(held), record_id),
    )
    conn.close()
    failure = _failure(world.log)
    assert (failure.reason, failure.index) == (TraceFailure.DISCLOSURE_MISMATCH, 3)
    conn = db(world.log)
    conn.execute("UPDATE leaves SET disclosures = NULL")
    conn.execute(
        "UPDATE histories SET history = ? WHERE identifier = ?",
        (world.b.identity.history, world.a.identifier.digest),
    )
    conn.close()
    failure = _failure(world.log)
    assert (failure.reason, failure.index) == (TraceFailure.SIGNER_INVALID, 0)


# -- checkpoints: truncation, forks, anchors --------------------------------------------------


def test_truncation_after_a_checkpoint(world: World) -> None:
    conn = db(world.log)
    conn.execute("DELETE FROM leaves WHERE idx >= 4")
    conn.close()
    assert _failure(world.log).reason is TraceFailure.TRUNCATED
    conn = db(world.log)
    conn.execute("DELETE FROM checkpoints")  # hiding the evidence: the kept anchor still knows
    conn.close()
    assert verify_log(world.log).status is AnchorStatus.UNANCHORED
    assert _failure(world.log, world.checkpoint.note).reason is TraceFailure.TRUNCATED


def _rewrite_record_two(world: World) -> None:
    """A thief with the agent's and the log's keys re-signs record 2 and every checkpoint."""
    rows = world.rows()
    first = open_envelope(world.log.find(rows[0][1]).envelope)[1]
    genuine = sign_record(
        world.a.signer(), tool_call(result="other"), seq=1, prev=sha256(first), time=NOW
    )
    world.put(2, genuine.envelope)
    conn = db(world.log)
    conn.execute("UPDATE leaves SET record_id = ? WHERE idx = 2", (genuine.record.id,))
    conn.execute("UPDATE leaves SET disclosures = NULL WHERE idx = 2")
    conn.execute("DELETE FROM nodes")
    conn.execute("DELETE FROM checkpoints")
    conn.close()


def test_a_forked_checkpoint_is_detected(tmp_path: Path) -> None:
    world = World(tmp_path / "trace.db", records=3)  # A0 B0 A1: A1 is the last A record
    anchor = world.checkpoint.note
    _rewrite_record_two(world)
    log = TraceLog.open(
        world.log.store.path, clock=world.clock, signer=lambda now: world.owner.signer(now)
    )
    forked = log.checkpoint()
    assert forked.size == world.checkpoint.size
    assert forked.root != world.checkpoint.root
    assert verify_log(log).status is AnchorStatus.UNANCHORED  # consistent with itself
    failure = _failure(log, anchor)
    assert failure.reason is TraceFailure.FORKED
    recorder(log, world.b, world.clock).record(tool_call())
    log.checkpoint()
    assert _failure(log, anchor).reason is TraceFailure.INCONSISTENT


def test_anchor_rules() -> None:
    """CheckpointAnchor: nothing kept -> unanchored; smaller -> truncated; same size and
    another root -> forked; larger with a bad proof -> inconsistent; the empty tree is a prefix
    of all; later checkpoints may not be dated earlier."""
    owner = Held()
    signer = owner.signer()
    epoch = resolve_key(owner.identity, signer.attestation)

    def signed(size: int, root: bytes, time: int = NOW) -> Checkpoint:
        return sign_checkpoint(signer, epoch, size, root, time)

    empty, one, two = signed(0, EMPTY_ROOT), signed(1, leaf_hash(b"a")), signed(2, bytes(32))
    anchor = CheckpointAnchor(None)
    assert anchor.accept(one) is AnchorStatus.UNANCHORED
    assert anchor.accept(one) is AnchorStatus.VALID
    with pytest.raises(TraceError) as caught:
        CheckpointAnchor(one).accept(empty)
    assert caught.value.reason is TraceFailure.TRUNCATED
    with pytest.raises(TraceError) as caught:
        CheckpointAnchor(one).accept(signed(1, leaf_hash(b"b")))
    assert caught.value.reason is TraceFailure.FORKED
    with pytest.raises(TraceError) as caught:
        CheckpointAnchor(one).accept(two, [bytes(32)])
    assert caught.value.reason is TraceFailure.INCONSISTENT
    assert CheckpointAnchor(empty).accept(two) is AnchorStatus.VALID
    with pytest.raises(TraceError) as caught:
        CheckpointAnchor(signed(1, leaf_hash(b"a"), NOW + 10)).accept(one)
    assert caught.value.reason is TraceFailure.INCONSISTENT
    unverified = parse_checkpoint(one.note)[0]
    with pytest.raises(ValueError, match="verified"):
        CheckpointAnchor(unverified)


def test_checkpoint_signed_by_another_key_is_refused(world: World) -> None:
    impostor = Held()
    signer = impostor.signer()
    fake = sign_checkpoint(
        signer, resolve_key(impostor.identity, signer.attestation), 6, world.checkpoint.root, NOW
    )
    conn = db(world.log)
    conn.execute("UPDATE checkpoints SET note = ?", (fake.note,))
    conn.close()
    assert _failure(world.log).reason is TraceFailure.CHECKPOINT_INVALID


# -- signatures outlive rotations -------------------------------------------------------------


def test_signatures_outlive_rotations(world: World) -> None:
    """A's records signed before its rotation still verify after it; a record signed with the
    retired key after the rotation is refused (by the log, and offline)."""
    old = world.a.signer()
    world.clock.advance(DAY)
    world.a.rotate(NOW + DAY)
    world.rec_a.renew()
    world.rec_a.record(tool_call())  # signed with the new key: the log learns the rotation
    report = verify_log(world.log, anchor=world.checkpoint.note)
    assert report.status is AnchorStatus.VALID
    assert report.size == 7
    head = world.log.head(world.a.identifier)
    assert head is not None
    late = sign_record(old, tool_call(), seq=head[0] + 1, prev=head[1], time=NOW + DAY + 5)
    with pytest.raises(TraceError) as caught:
        world.log.append(late)
    assert caught.value.reason is TraceFailure.ATTESTATION_STALE
    world.put(7, late.envelope, record_id=late.record.id)  # forced in past the log
    failure = _failure(world.log)
    assert (failure.reason, failure.index) == (TraceFailure.KEY_RETIRED, 7)


def test_backdated_record_by_a_retired_key_is_refused(world: World) -> None:
    """Dating the retired key's record before the rotation does not help: it would follow the
    agent's records made with the new key (time goes back)."""
    old = world.a.signer()
    world.clock.advance(DAY)
    world.a.rotate(NOW + DAY)
    world.rec_a.renew()
    world.rec_a.record(tool_call())
    head = world.log.head(world.a.identifier)
    assert head is not None
    backdated = sign_record(old, tool_call(), seq=head[0] + 1, prev=head[1], time=NOW + 60)
    world.put(7, backdated.envelope, record_id=backdated.record.id)
    failure = _failure(world.log)
    assert (failure.reason, failure.index) == (TraceFailure.TIME_REVERSED, 7)


# -- damage -----------------------------------------------------------------------------------


def test_damage_is_reported_never_healed(world: World) -> None:
    conn = db(world.log)
    conn.execute("UPDATE leaves SET envelope = zeroblob(length(envelope)) WHERE idx = 1")
    conn.close()
    world.rec_b.record(tool_call())  # appends go on from the stored tree, not from the damage
    world.log.checkpoint()
    failure = _failure(world.log)
    assert (failure.reason, failure.index) == (TraceFailure.LEAF_MISMATCH, 1)
    conn = db(world.log)
    conn.execute("DELETE FROM leaves WHERE idx = (SELECT max(idx) FROM leaves)")
    conn.close()
    with pytest.raises(StorageError, match="damaged"):
        world.rec_a.record(tool_call())
    assert world.log.size() == 7  # the log still says what it had acknowledged
