"""Dead channels, sans-IO: the authenticated keepalive (PING when idle, PONG in answer, closed
after the timeout), which unauthenticated bytes can neither extend nor cut short; the route
error a relay node answers instead of message 2; the reconnect backoff and the link states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.channels import T, World, closed, dropped, frames_of, make_world, packet, pump
from tests.vectors.channel.generate import vectors as build_vectors
from troth.channel import (
    ChannelSettings,
    ChannelState,
    DropReason,
    NotRouted,
    RouteProblem,
    SecureChannel,
    parse_route_error,
    route_error,
    split_packet,
)
from troth.channel.noise import CipherState
from troth.channel.packets import PACKET_LIMIT, ROUTE_ERROR_PREFIX
from troth.channel.payloads import Kind, unpack
from troth.crypto import AeadAlgorithm
from troth.errors import ChannelError, ChannelFailure, DecodeError, DecodeProblem
from troth.node.links import Backoff, LinkState, LinkStep, next_link_state

S = ChannelState
QUICK = ChannelSettings(keepalive_interval=15, keepalive_timeout=45)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def open_pair(world: World) -> tuple[SecureChannel, SecureChannel]:
    a, b = world.initiator(QUICK), world.responder(QUICK)
    pump(a, b)
    assert a.state is b.state is S.OPEN
    return a, b


def deliver(sender: SecureChannel, receiver: SecureChannel) -> None:
    for sent in sender.outgoing():
        receiver.receive(sent, 0)


# -- keepalive -------------------------------------------------------------------------------


def test_an_idle_channel_pings_and_the_pong_keeps_it_open(world: World) -> None:
    a, b = open_pair(world)
    assert a.keepalive(100.0) == []  # the first call starts the clock
    assert a.keepalive(114.0) == []
    assert not a.has_outgoing
    assert a.keepalive(115.0) == []
    assert a.has_outgoing
    (ping,) = frames_of(a.outgoing())
    assert a.keepalive(120.0) == []
    assert not a.has_outgoing
    b.receive(packet(ping), 0)
    deliver(b, a)  # the PONG
    for now in (121.0, 160.0, 165.0):  # heard at 121: 44 s of silence is not 45
        assert a.keepalive(now) == []
    assert a.state is S.OPEN
    assert b.keepalive(0.0) == []
    assert b.state is S.OPEN


def test_a_silent_peer_is_closed_after_the_timeout(world: World) -> None:
    a, _ = open_pair(world)
    a.keepalive(0.0)
    pings = 0
    for now in (15.0, 30.0):
        assert a.keepalive(now) == []
        pings += len(frames_of(a.outgoing()))
    assert pings == 2
    event = closed(a.keepalive(45.0))
    assert event.reason is ChannelFailure.TIMEOUT
    assert event.detail == "no authenticated frame for 45 s"
    assert a.state is S.CLOSED
    assert a.keepalive(100.0) == []  # closed: nothing more


def test_data_counts_as_news(world: World) -> None:
    a, b = open_pair(world)
    a.keepalive(0.0)
    for now in range(10, 200, 10):
        b.send(b"still here")
        deliver(b, a)
        assert a.keepalive(float(now)) == []
        assert not a.has_outgoing  # never idle: no PING
    assert a.state is S.OPEN


def test_unauthenticated_bytes_neither_keep_a_channel_alive_nor_end_it(world: World) -> None:
    a, b = open_pair(world)
    b.send(b"genuine")
    genuine = b.outgoing()
    deliver_copy = [bytes(p) for p in genuine]
    for sent in genuine:
        a.receive(sent, 0)
    a.keepalive(0.0)
    junk = [
        b"\x00",
        packet(b"\x02" + (1000).to_bytes(8, "big") + bytes(32)),  # does not authenticate
        packet(b"\x01" + bytes(48)),  # a handshake frame in the open state
        *deliver_copy,  # a replay of a genuine frame (a duplicate nonce)
        route_error(RouteProblem.RELAY_NOT_FOUND),  # only taken while awaiting message 2
    ]
    for now in range(1, 45):
        for bad in junk:
            a.receive(bad, 0)
        assert a.keepalive(float(now)) == [] or now >= 45
        assert a.state is S.OPEN  # junk never closes it ...
    assert set(a.drops) >= {DropReason.MALFORMED, DropReason.UNDECRYPTABLE, DropReason.DUPLICATE}
    assert closed(a.keepalive(45.0)).reason is ChannelFailure.TIMEOUT  # ... nor keeps it open


def test_one_pong_answers_a_packet_of_ten_thousand_pings(world: World) -> None:
    a, b = open_pair(world)
    pings: list[memoryview] = []
    now = 0.0
    a.keepalive(now)
    while len(pings) < 10_000:  # a peer that pings at every chance
        now += 15
        b.send(b"")  # news, so that a never times out
        deliver(b, a)
        a.keepalive(now)
        now += 15
        a.keepalive(now)
        pings += frames_of(a.outgoing())
    per_packet = PACKET_LIMIT // (2 + len(pings[0]))
    packets = [packet(*pings[i : i + per_packet]) for i in range(0, len(pings), per_packet)]
    for sent in packets:
        assert b.receive(sent, 0) == []
    assert len(frames_of(b.outgoing())) == len(packets)  # one PONG per packet, no more
    assert b.state is S.OPEN


@pytest.mark.parametrize("kind", [Kind.PING, Kind.PONG])
def test_a_keepalive_frame_with_a_body_is_a_protocol_violation(world: World, kind: Kind) -> None:
    a, b = open_pair(world)
    a._emit([(kind, (b"x",))])  # a misbehaving (authenticated) peer
    (sent,) = a.outgoing()
    event = closed(b.receive(sent, 0))
    assert event.reason is ChannelFailure.PROTOCOL
    assert "with a body" in event.detail


def test_a_ping_before_accepted_is_a_protocol_violation(world: World) -> None:
    a, b = world.initiator(QUICK), world.responder(QUICK)
    b.receive(a.outgoing()[0], T + 1)  # message 1
    a.receive(b.outgoing()[0], T + 1)  # message 2: a sends message 3 and awaits ACCEPTED
    b.receive(a.outgoing()[0], T + 1)  # message 3: b is open
    b.outgoing()  # ACCEPTED, lost
    b._emit([(Kind.PING, ())])
    (ping,) = b.outgoing()
    assert a.state is S.AWAITING_ACCEPT
    assert closed(a.receive(ping, 0)).reason is ChannelFailure.PROTOCOL


def test_keepalive_runs_only_on_open_channels(world: World) -> None:
    a = world.initiator(QUICK)
    a.outgoing()
    for now in (0.0, 100.0, 1000.0):
        assert a.keepalive(now) == []
    assert a.state is S.AWAITING_MESSAGE_2  # the handshake timeout is the host's


def test_a_clock_that_went_back_restarts_the_silence(world: World) -> None:
    a, _ = open_pair(world)
    a.keepalive(1000.0)
    assert a.keepalive(10.0) == []
    assert a.keepalive(54.0) == []  # 44 s after the restart
    assert closed(a.keepalive(55.0)).reason is ChannelFailure.TIMEOUT


@pytest.mark.parametrize(
    ("interval", "timeout"), [(0, 45), (-1, 45), (15, 29), (15, 0), (10, 19.9)]
)
def test_keepalive_settings_are_checked(interval: float, timeout: float) -> None:
    with pytest.raises(ValueError, match="keepalive_timeout"):
        ChannelSettings(keepalive_interval=interval, keepalive_timeout=timeout)


# -- route errors ----------------------------------------------------------------------------


def test_a_route_error_ends_only_a_handshake_awaiting_message_2(world: World) -> None:
    a = world.initiator(QUICK)
    (first,) = a.outgoing()
    error = route_error(RouteProblem.RELAY_NOT_FOUND)
    assert len(error) <= len(first)  # never more than the message 1 it answers
    assert a.receive(error, 0) == [NotRouted(RouteProblem.RELAY_NOT_FOUND)]
    assert a.state is S.AWAITING_MESSAGE_2  # unauthenticated: no state changed
    # the genuine message 2 still completes the handshake
    b = world.responder(QUICK)
    b.receive(first, 0)
    pump(a, b)
    assert a.state is b.state is S.OPEN
    assert dropped(a.receive(error, 0)) == [DropReason.MALFORMED]  # open: just junk
    assert dropped(b.receive(error, 0)) == [DropReason.MALFORMED]


def test_a_route_error_is_never_a_packet() -> None:
    error = route_error(RouteProblem.RELAY_NOT_FOUND)
    assert error.startswith(ROUTE_ERROR_PREFIX)
    assert error[2] not in (0x01, 0x02)  # a packet's third byte is its first frame's type
    with pytest.raises(DecodeError) as raised:
        split_packet(error)
    assert raised.value.problem is DecodeProblem.MALFORMED
    assert RouteProblem.RELAY_NOT_FOUND.text == "relay not found"


@pytest.mark.parametrize(
    "bad",
    [
        ROUTE_ERROR_PREFIX + b"\x09",  # unknown code
        ROUTE_ERROR_PREFIX + b"\x20",  # a negative code
        ROUTE_ERROR_PREFIX + b"\x01\x00",  # trailing bytes
        ROUTE_ERROR_PREFIX,  # cut short
        ROUTE_ERROR_PREFIX.replace(b"\x01", b"\x02", 1) + b"\x01",  # another version
    ],
)
def test_a_malformed_route_error_is_dropped(world: World, bad: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_route_error(bad)
    a = world.initiator(QUICK)
    a.outgoing()
    assert dropped(a.receive(bad, 0)) == [DropReason.MALFORMED]
    assert a.state is S.AWAITING_MESSAGE_2


# -- backoff and link states -----------------------------------------------------------------


@given(
    attempt=st.integers(0, 200),
    draw=st.floats(0, 1, exclude_max=True),
    base=st.floats(0.01, 20),
)
def test_full_jitter_stays_under_a_capped_exponential_ceiling(
    attempt: int, draw: float, base: float
) -> None:
    backoff = Backoff(base, 10.0)
    ceiling = backoff.ceiling(attempt)
    assert ceiling == min(10.0, base * 2.0 ** min(attempt, 60))
    assert 0 <= backoff.delay(attempt, lambda: draw) < ceiling
    assert backoff.ceiling(attempt + 1) >= ceiling


@pytest.mark.parametrize(("base", "cap"), [(0, 10), (-1, 10), (0.5, 0), (0.5, -1)])
def test_backoff_settings_are_checked(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(base, cap)


def test_the_link_states() -> None:
    L, step = LinkState, LinkStep
    path = [
        (step.OPENED, L.CONNECTED),
        (step.LOST, L.RECONNECTING),
        (step.DUE, L.CONNECTING),
        (step.FAILED, L.RECONNECTING),
        (step.OPENED, L.CONNECTING),  # someone else opened a channel: restore over it now
        (step.LOST, L.CONNECTING),
        (step.RESTORED, L.CONNECTED),
    ]
    state = L.IDLE
    for taken, expected in path:
        state = next_link_state(state, taken)
        assert state is expected, taken
    assert next_link_state(L.IDLE, step.LOST) is L.IDLE  # nothing was connected
    assert next_link_state(L.RECONNECTING, step.LOST) is L.RECONNECTING


# -- golden vectors (tests/vectors/channel/generate.py) -----------------------------------------

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "channel" / "keepalive_vectors.json").read_text()
)


def test_the_keepalive_and_route_error_vectors_are_rebuilt_byte_for_byte() -> None:
    assert build_vectors() == VECTORS


@pytest.mark.parametrize("name", ["ping", "pong"])
@pytest.mark.parametrize("algorithm", list(AeadAlgorithm))
def test_the_stored_keepalive_frames_read_back(name: str, algorithm: AeadAlgorithm) -> None:
    vector = VECTORS["keepalive"][name]
    frame = bytes.fromhex(vector[f"frame_{algorithm.value}"])
    assert frame[0] == 0x02
    assert int.from_bytes(frame[1:9], "big") == VECTORS["nonce"]
    cipher = CipherState(algorithm, bytes.fromhex(VECTORS["key"]))
    plaintext = cipher.decrypt_at(VECTORS["nonce"], b"", frame[9:])
    assert plaintext.hex() == vector["plaintext"]
    kind, body = unpack(plaintext)
    assert (int(kind), bytes(body)) == (vector["kind"], b"")
    tampered = bytearray(frame)
    tampered[-1] ^= 1
    with pytest.raises(ChannelError) as caught:
        cipher.decrypt_at(VECTORS["nonce"], b"", bytes(tampered[9:]))
    assert caught.value.reason is ChannelFailure.DECRYPT_FAILED


def test_the_stored_route_error_reads_back() -> None:
    vector = VECTORS["route_error"]
    stored = bytes.fromhex(vector["bytes"])
    assert parse_route_error(stored) is RouteProblem(vector["code"])
    assert stored.startswith(ROUTE_ERROR_PREFIX)
