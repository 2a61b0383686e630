"""Review 56ab: attacks on this session's changes (56x: the channel's refresh size check, the
CLOSE for a malformed message-3 payload, MAX_AUTH_PAYLOAD one byte less, a TOO_LARGE message 2
closing; 56v: TraceStore mapping sqlite3 errors leaving its transactions) that did not work.
Each test is the attempt, and fails if the defence breaks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.channels import T, World, closed, dropped, make_world, pump
from tests.support.parties import ChannelParty
from tests.support.traces import NOW, Held, log_of, recorder, tool_call
from troth.channel import (
    ChannelSettings,
    ChannelState,
    ChannelTrust,
    Closed,
    DropReason,
    SecureChannel,
)
from troth.channel.packets import HANDSHAKE_FRAME, LENGTH
from troth.channel.payloads import HEADER, AuthPayload
from troth.channel.policy import AllowIdentifiers
from troth.channel.secure import MAX_PLAINTEXT
from troth.clock import FixedClock
from troth.encoding import cbor
from troth.errors import (
    ChannelError,
    ChannelFailure,
    ConflictError,
    StorageError,
    TraceError,
    TraceFailure,
)
from troth.trace.log import TraceLog
from troth.trace.signing import sign_record
from troth.trace.store import open_trace_store

_OLD_MAX_AUTH_PAYLOAD = 65_439  # the previous troth's limit (review 56x, channel 3)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def _open_trust(world: World) -> ChannelTrust:
    """Admits alice and bob by identifier, ignoring chains (verifier None): any bytes shown as
    chains are carried, so a payload can be made any size."""
    return ChannelTrust(
        policy=AllowIdentifiers(frozenset({world.alice.identifier, world.bob.identifier}))
    )


def _filler(party: ChannelParty, size: int) -> tuple[bytes, ...]:
    """One chain of zeros making `party`'s auth payload exactly `size` bytes."""

    def payload(n: int) -> int:
        chains = (b"\0" * n,)
        return len(AuthPayload(party.party.identity.history, party.attestation, chains).encode())

    n = size - payload(0)
    while payload(n) > size:
        n -= 1
    assert payload(n) == size
    return (b"\0" * n,)


# -- 56x: what an unauthenticated prober gets -----------------------------------------------------


def test_a_tampered_message_3_gets_no_close_only_a_silent_drop(world: World) -> None:
    # the CLOSE for a malformed payload is sent only once message 3 decrypted under the
    # handshake (the prober completed XX with its static key): a forged one is dropped
    a, b = world.initiator(), world.responder()
    for packet in a.outgoing():
        b.receive(packet, T + 1)
    for packet in b.outgoing():
        a.receive(packet, T + 1)
    (message3,) = a.outgoing()
    forged = bytearray(message3)
    forged[-1] ^= 1
    events = b.receive(bytes(forged), T + 1)
    assert dropped(events) == [DropReason.UNDECRYPTABLE]
    assert not [e for e in events if isinstance(e, Closed)]
    assert not b.has_outgoing  # nothing sent back
    assert b.state is ChannelState.AWAITING_MESSAGE_3


def test_a_message_3_of_junk_after_message_2_gets_no_close(world: World) -> None:
    # a prober that never ran the handshake: random bytes as message 3
    a, b = world.initiator(), world.responder()
    for packet in a.outgoing():
        b.receive(packet, T + 1)
    b.outgoing()  # message 2, to no one
    events = b.receive(LENGTH.pack(201) + bytes((HANDSHAKE_FRAME,)) + bytes(200), T + 1)
    assert not [e for e in events if isinstance(e, Closed)]
    assert not b.has_outgoing
    assert b.state is ChannelState.AWAITING_MESSAGE_3


@pytest.mark.parametrize("size", [1, 32, 33, 65_534])  # 65,534: the largest a frame holds
def test_no_message_1_a_prober_sends_closes_the_responder(world: World, size: int) -> None:
    # message 2 TOO_LARGE now closes (56x, channel 4): Noise reads TOO_LARGE only over 65,535
    # bytes, which no frame holds, so junk of any size is dropped, the responder waiting on
    b = world.responder()
    events = b.receive(LENGTH.pack(size + 1) + bytes((HANDSHAKE_FRAME,)) + bytes(size), T + 1)
    assert dropped(events) == [DropReason.UNDECRYPTABLE]  # (32: a low-order "-> e")
    assert not [e for e in events if isinstance(e, Closed)]
    assert b.state.value == ChannelState.AWAITING_MESSAGE_1.value
    assert not b.has_outgoing
    seen_a, seen_b = pump(world.initiator(), b)  # and a genuine initiator still gets through
    assert b.state.value == ChannelState.OPEN.value, (seen_a, seen_b)


def test_the_close_for_a_malformed_payload_says_no_more_than_a_failed_verification(
    world: World,
) -> None:
    # the same prober (any static key) got a CLOSE for a payload that fails verification
    # before 56x; the malformed one's CLOSE carries the decoder's words only
    me = world.alice.me(tuple(world.credential(world.alice) for _ in range(9)))
    a = SecureChannel.initiate(me=me, trust=world.trust())
    b = world.responder()
    seen_a, _ = pump(a, b)
    told = closed(seen_a)
    assert told.reason is ChannelFailure.PEER_INVALID
    assert "auth payload" in told.detail
    assert str(world.bob.identifier) not in told.detail
    assert b.peer is None  # no state kept for it
    assert b.closed


# -- 56x: interop with the previous troth (65,439-byte payloads) ----------------------------------


def test_an_old_initiators_largest_message_3_payload_is_accepted(world: World) -> None:
    # the previous troth's fitting_chains let an initiator show a 65,439-byte payload; in
    # message 3 it fits a frame (64 bytes around it, not 96), and the new responder reads it
    chains = _filler(world.alice, _OLD_MAX_AUTH_PAYLOAD)
    a = SecureChannel.initiate(me=world.alice.me(chains), trust=_open_trust(world))
    b = SecureChannel(initiator=False, me=world.bob.me(()), trust=_open_trust(world))
    seen_a, seen_b = pump(a, b)
    assert a.state is ChannelState.OPEN, (seen_a, seen_b)
    assert b.state is ChannelState.OPEN, (seen_a, seen_b)
    assert b.peer is not None
    assert b.peer.identifier == world.alice.identifier


@pytest.mark.parametrize("padding", [0, 1, 2, 5, 10])
def test_a_refresh_at_exactly_one_frame_is_sent_and_read(world: World, padding: int) -> None:
    # MAX_PLAINTEXT (65,510) is a multiple of 1, 2, 5, 10: a refresh padded to exactly it fits
    a = SecureChannel.initiate(
        me=world.alice.me(()), trust=_open_trust(world), settings=ChannelSettings(padding=padding)
    )
    b = SecureChannel(
        initiator=False,
        me=world.bob.me(()),
        trust=_open_trust(world),
        settings=ChannelSettings(padding=padding),
    )
    pump(a, b)
    n = MAX_PLAINTEXT - HEADER.size - len(cbor.encode([b""]))
    while HEADER.size + len(cbor.encode([b"\0" * n])) > MAX_PLAINTEXT:
        n -= 1
    chains = (b"\0" * n,)
    assert HEADER.size + len(cbor.encode(list(chains))) == MAX_PLAINTEXT
    a.send_credentials(chains)
    _, seen_b = pump(a, b)
    assert not [e for e in seen_b if isinstance(e, Closed)], seen_b
    assert b.state is ChannelState.OPEN
    with pytest.raises(ChannelError) as caught:  # one byte more: refused, nothing sent
        a.send_credentials((b"\0" * (n + 1),))
    assert caught.value.reason is ChannelFailure.TOO_LARGE
    assert not a.has_outgoing


@pytest.mark.parametrize("padding", [3, 4096])
def test_a_padded_refresh_never_overflows_its_frame(world: World, padding: int) -> None:
    # the padded size is what is checked: the largest body that pads within MAX_PLAINTEXT is
    # sent; the next padding step is refused, whatever the body's own size
    settings = ChannelSettings(padding=padding)
    a = SecureChannel.initiate(me=world.alice.me(()), trust=_open_trust(world), settings=settings)
    b = SecureChannel(
        initiator=False, me=world.bob.me(()), trust=_open_trust(world), settings=settings
    )
    pump(a, b)
    capacity = MAX_PLAINTEXT - MAX_PLAINTEXT % padding
    for n in range(capacity - 16, capacity + 4):
        if HEADER.size + len(cbor.encode([b"\0" * n])) > capacity:  # pads past one frame
            with pytest.raises(ChannelError) as caught:
                a.send_credentials((b"\0" * n,))
            assert caught.value.reason is ChannelFailure.TOO_LARGE
            assert not a.has_outgoing
            continue
        a.send_credentials((b"\0" * n,))
        packets = a.outgoing()
        assert all(len(p) <= 2 + 65_535 for p in packets)
        for packet in packets:
            assert not [e for e in b.receive(packet, T + 1) if isinstance(e, Closed)]
        assert b.state is ChannelState.OPEN


# -- 56v: TraceStore's mapping ---------------------------------------------------------------------


def test_a_busy_trace_db_is_still_retried_before_failing(tmp_path: Path) -> None:
    # the mapping wraps the storage layer's transaction: waiting for the write lock is still
    # retried (the busy report names the limit), not mapped at the first SQLITE_BUSY
    path = tmp_path / "trace.db"
    open_trace_store(path).close()
    store = open_trace_store(path)
    store.busy_timeout = 0.05
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError, match=r"stayed locked for 0\.05 s"), store.transaction():
            pass
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with store.transaction():  # free again
        store.connection().execute("SELECT 1")
    store.close()


def test_a_trace_error_inside_a_trace_transaction_propagates_unchanged(tmp_path: Path) -> None:
    store = open_trace_store(tmp_path / "trace.db")
    error = TraceError(TraceFailure.REPLAYED, record="r1")
    with pytest.raises(TraceError) as caught, store.transaction():
        store.connection().execute("UPDATE meta SET value = 7 WHERE name = 'size'")
        raise error
    assert caught.value is error
    assert store.fetch_one("SELECT value FROM meta WHERE name = 'size'")[0] == 0  # rolled back
    store.close()


def test_a_constraint_in_a_trace_transaction_is_a_conflict_and_rolled_back(
    tmp_path: Path,
) -> None:
    store = open_trace_store(tmp_path / "trace.db")
    with pytest.raises(ConflictError), store.transaction():
        conn = store.connection()
        conn.execute("UPDATE meta SET value = 7 WHERE name = 'size'")
        conn.execute("INSERT INTO meta (name, value) VALUES ('size', 1)")
    assert store.fetch_one("SELECT value FROM meta WHERE name = 'size'")[0] == 0
    store.close()


def test_a_replay_from_another_process_is_replayed_not_a_conflict(tmp_path: Path) -> None:
    # REPLAYED is the leader's read of the ids the log holds, not the UNIQUE index: a second
    # log on the file (another process, its caches empty) refuses the same record REPLAYED
    path = tmp_path / "trace.db"
    first = log_of(path, 1)
    record = sign_record(Held().signer(), tool_call(), seq=0, prev=None, time=NOW)
    first.append(record)
    second = TraceLog(open_trace_store(path), clock=FixedClock(NOW))
    with pytest.raises(TraceError) as caught:
        second.append(record)
    assert caught.value.reason is TraceFailure.REPLAYED
    assert not isinstance(caught.value, StorageError)
    assert second.size() == 2


def test_a_failed_commit_acknowledges_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = log_of(tmp_path / "trace.db", 0)
    rec = recorder(log, Held(), FixedClock(NOW))
    store = log.store

    def failing(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")
        raise StorageError("commit failed: disk I/O error")

    monkeypatch.setattr(store, "_commit", failing)
    with pytest.raises(StorageError, match="commit failed"):
        rec.record(tool_call(args="x"))
    monkeypatch.undo()
    assert log.size() == 0
    assert rec.record(tool_call(args="y")).index == 0  # the cached frontier was dropped
