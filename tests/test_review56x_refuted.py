"""Review 56x: attacks on the secure channel's layers above Noise and on TCP framing that did
not work (each fails if its defence breaks)."""

from __future__ import annotations

import functools
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.support.channels import T, World, closed, dropped, make_world, pump
from troth.channel import (
    ChannelSettings,
    ChannelState,
    DropReason,
    Received,
    SecureChannel,
    split_packet,
)
from troth.channel.packets import LENGTH
from troth.channel.payloads import FRAGMENT, HEADER
from troth.channel.replay import ReplayWindow, Verdict
from troth.errors import ChannelError, ChannelFailure, DecodeError
from troth.transport.framing import FrameReader, frame

_FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@functools.cache
def _world() -> World:
    return make_world()


@pytest.fixture
def world() -> World:
    return _world()


def _handshake(world: World) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Genuine messages 1, 2 and 3 of one handshake (packets)."""
    a, b = world.initiator(), world.responder()
    m1 = [bytes(p) for p in a.outgoing()]
    for p in m1:
        b.receive(p, T + 1)
    m2 = [bytes(p) for p in b.outgoing()]
    for p in m2:
        a.receive(p, T + 1)
    return m1, m2, [bytes(p) for p in a.outgoing()]


def _to_stage(world: World, stage: int) -> tuple[SecureChannel, SecureChannel]:
    a, b = world.initiator(), world.responder()
    if stage >= 1:
        for p in a.outgoing():
            b.receive(p, T + 1)
    if stage >= 2:
        for p in b.outgoing():
            a.receive(p, T + 1)
    if stage >= 3:
        pump(a, b)
    return a, b


def _state(channel: SecureChannel) -> tuple[ChannelState, int, int]:
    return channel.state, channel.authenticated, channel._next_nonce


@_FUZZ
@given(
    stage=st.integers(0, 3),
    picks=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 4), st.integers(0, 10**6), st.binary()),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_handshake_packets_never_raise_nor_change_state(
    stage: int, picks: list[tuple[int, int, int, bytes]]
) -> None:
    """Genuine handshake packets of another handshake, bit-flipped, truncated, doubled, or
    junk, to both ends at every stage: dropped, never an exception, never a state change."""
    world = _world()
    messages = [p for ms in _handshake(world) for p in ms]
    a, b = _to_stage(world, stage)
    # (a responder awaiting message 1 takes any 32 bytes: message 1 is unauthenticated, "-> e")
    for channel in (a, b) if stage else (a,):
        before = _state(channel)
        for which, op, at, junk in picks:
            data = bytearray(messages[which % len(messages)])
            if op == 0:
                data[at % len(data)] ^= 1 << (at % 8)
            elif op == 1:
                data = data[: at % len(data)]
            elif op == 2:
                data = data + data
            elif op == 3:
                data = bytearray(junk)
            else:
                data[2:] = junk  # a frame length that does not match
            events = channel.receive(bytes(data), T + 1)
            assert all(type(e).__name__ in {"Dropped", "NotRouted"} for e in events), events
        assert _state(channel) == before


@_FUZZ
@given(
    frames=st.lists(
        st.tuples(st.integers(0, 9), st.integers(0, 2**32 - 1), st.binary(max_size=64)),
        min_size=1,
        max_size=5,
    )
)
def test_an_authenticated_peer_sending_any_plaintext_gets_events_or_a_typed_close(
    frames: list[tuple[int, int, bytes]],
) -> None:
    """Transport frames that authenticate with any kind, length and body: the receiver
    returns events (never raises); once closed it holds no keys nor reassembly, and more
    frames change nothing but the drop count."""
    world = _world()
    a, b = _to_stage(world, 3)
    for kind, length, body in frames:
        declared = length if length % 3 == 0 else len(body)
        events = b.receive(bytes(a._seal_data(struct.pack(">BI", kind, declared) + body)), T + 2)
        if b.closed:
            assert closed(events).reason in set(ChannelFailure)
            assert b._receiver is None
            assert b.reassembling == 0
            assert not b._pending
            break
    if b.closed:
        authenticated = b.authenticated
        b.receive(bytes(a._seal_data(HEADER.pack(0, 31) + bytes(31))), T + 3)
        assert b.authenticated == authenticated
        assert b.reassembling == 0


def test_fragments_that_overlap_to_the_total_close_not_deliver(world: World) -> None:
    """Two fragments whose sizes add up to the total but overlap: refused (PROTOCOL)."""
    a, b = _to_stage(world, 3)
    first = FRAGMENT.pack(9, 10_000, 0) + b"a" * 5_000
    second = FRAGMENT.pack(9, 10_000, 4_000) + b"b" * 5_000  # 4,000-9,000: a hole at the end
    assert not b.receive(bytes(a._seal_data(HEADER.pack(1, len(first)) + first)), T + 2)
    events = b.receive(bytes(a._seal_data(HEADER.pack(1, len(second)) + second)), T + 2)
    assert closed(events).reason is ChannelFailure.PROTOCOL
    assert b.reassembling == 0


@pytest.mark.parametrize("interval", [64, 65, 128])
def test_reordered_duplicated_and_lost_frames_across_repeated_rekeys(
    world: World, interval: int
) -> None:
    """1,000 messages over 7-15 rekeys at the smallest window (64), each frame moved up to
    30 places, one in 20 lost and one in 20 doubled: each other message arrives exactly
    once (none dropped as undecryptable)."""
    s = ChannelSettings(replay_window=64, rekey_interval=interval)
    a, b = world.initiator(s), world.responder(s)
    pump(a, b)
    frames: list[bytes] = []
    for i in range(1000):
        a.send(b"%05d" % i + bytes(40))
        for p in a.outgoing():
            frames += [LENGTH.pack(len(f)) + bytes(f) for f in split_packet(p)]
    order = sorted(range(len(frames)), key=lambda i: i + (i * 7919) % 30)
    got: list[bytes] = []
    sent = []
    for n, i in enumerate(order):
        if n % 20 == 7:
            continue
        sent.append(i)
        for _ in range(2 if n % 20 == 3 else 1):
            got += [
                bytes(e.payload)[:5] for e in b.receive(frames[i], T + 2) if isinstance(e, Received)
            ]
    assert sorted(got) == sorted(b"%05d" % i for i in sent)
    assert set(b.drops) <= {DropReason.DUPLICATE}
    assert b.state is ChannelState.OPEN


def test_replay_window_edges() -> None:
    """Nonce 0 first; the oldest nonce inside the window accepted once; one below refused."""
    window = ReplayWindow(64)
    assert window.check(0) is Verdict.NEW
    window.accept(0)
    assert window.check(0) is Verdict.DUPLICATE
    window.accept(64)  # 0 is now one below the window, 1 its oldest
    assert window.check(0) is Verdict.TOO_OLD
    assert window.check(1) is Verdict.NEW
    window.accept(1)
    assert window.check(1) is Verdict.DUPLICATE
    window.accept(64 + 64 + 1000)  # a jump past the whole window forgets it all
    assert window.check(64 + 1000 + 1) is Verdict.NEW
    assert window.check(64 + 1000) is Verdict.TOO_OLD


def test_the_largest_message_is_taken_and_one_byte_more_is_refused_on_each_side(
    world: World,
) -> None:
    """What one side may send the other accepts (max_message, here 200,000 bytes, padded and
    not); one byte more is refused by the sender (TOO_LARGE) and, declared by a peer, by the
    receiver (TOO_LARGE, closed)."""
    for padding in (0, 4096):
        s = ChannelSettings(max_message=200_000, padding=padding)
        a, b = world.initiator(s), world.responder(s)
        pump(a, b)
        for sender, receiver in ((a, b), (b, a)):
            sender.send(b"\x07" * 200_000)
            for packet in sender.outgoing():
                events = receiver.receive(packet, T + 2)
            assert [len(e.payload) for e in events if isinstance(e, Received)] == [200_000]
            with pytest.raises(ChannelError) as caught:
                sender.send(b"\x07" * 200_001)
            assert caught.value.reason is ChannelFailure.TOO_LARGE
        over = FRAGMENT.pack(1, 200_001, 0) + bytes(4096)
        events = b.receive(bytes(a._seal_data(HEADER.pack(1, len(over)) + over)), T + 2)
        assert closed(events).reason is ChannelFailure.TOO_LARGE


def test_handshake_frames_after_the_handshake_and_data_after_close_are_dropped(
    world: World,
) -> None:
    m1, m2, m3 = _handshake(world)
    a, b = _to_stage(world, 3)
    for channel, packet in ((b, m1[0]), (a, m2[0]), (b, m3[0])):
        assert dropped(channel.receive(packet, T + 2)) == [DropReason.UNEXPECTED]
    a.send(b"x" * 40)
    late = a.outgoing()
    b.close()
    for late_packet in late:
        assert dropped(b.receive(late_packet, T + 2)) == [DropReason.UNEXPECTED]
    assert b.state is ChannelState.CLOSED
    assert b.reassembling == 0


@_FUZZ
@given(
    bodies=st.lists(st.binary(max_size=300), max_size=6),
    cuts=st.lists(st.integers(1, 50), min_size=1, max_size=40),
    tail=st.sampled_from([b"", b"\x01\x00", b"\x02\x00\x00\x00\x00", b"\x01\x00\x00\x01\x2d"]),
    small=st.sampled_from([5, 16, 64]),
)
def test_tcp_frames_split_anywhere_come_out_whole(
    bodies: list[bytes], cuts: list[int], tail: bytes, small: int
) -> None:
    """A stream of frames cut at any boundaries, fed or written into the buffer: the same
    frames in order, and a bad header (version, over max_frame 300) a DecodeError only."""
    stream = b"".join(frame(body, 300) for body in bodies) + tail
    for direct in (False, True):
        reader = FrameReader(max_frame=300, small=small, large=small * 4)
        got: list[bytes] = []
        error = None
        at = i = 0
        try:
            while at < len(stream):
                n = cuts[i % len(cuts)]
                i += 1
                if direct:
                    space = reader.get_buffer()
                    n = min(n, len(space), len(stream) - at)
                    space[:n] = stream[at : at + n]
                    got += reader.advance(n, 0.0)
                else:
                    got += reader.feed(stream[at : at + n], 0.0)
                at += n
                if i % 3 == 0:
                    reader.settle()
            if reader.error is not None:
                raise reader.error
        except DecodeError as exc:
            error = exc
        assert got == bodies
        assert (error is not None) == (tail in (b"\x02\x00\x00\x00\x00", b"\x01\x00\x00\x01\x2d"))


class _Link(RuleBasedStateMachine):
    """Two open ends over a hostile path: messages of every size, packets delivered late,
    twice, cut, or not at all, repeated rekeys (interval 64), credential refreshes, closes.
    Each end receives only messages its peer sent, each at most once, never raises; a closed
    end holds no keys, no reassembly and nothing to send once taken."""

    def __init__(self) -> None:
        super().__init__()
        world = _world()
        s = ChannelSettings(replay_window=64, rekey_interval=64, max_message=200_000)
        self.a, self.b = world.initiator(s), world.responder(s)
        pump(self.a, self.b)
        self.credential = world.credential(world.alice)
        self.sent: list[bytes] = []
        self.got: list[bytes] = []
        self.path: list[tuple[SecureChannel, bytes]] = []
        self.count = 0

    def _take(self, channel: SecureChannel) -> None:
        peer = self.b if channel is self.a else self.a
        self.path += [(peer, bytes(p)) for p in channel.outgoing()]

    @rule(size=st.sampled_from([0, 31, 65_000, 65_499, 65_500, 131_000, 200_000]))
    def send(self, size: int) -> None:
        if self.a.closed:
            with pytest.raises(ChannelError):
                self.a.send(b"x")
            return
        self.count += 1
        message = (b"%06d" % self.count + bytes(size))[:size] if size >= 6 else bytes(size)
        self.a.send(message)
        self.sent.append(message)
        self._take(self.a)

    @rule(which=st.integers(0, 10**6), how=st.sampled_from(["deliver", "twice", "drop", "cut"]))
    def path_step(self, which: int, how: str) -> None:
        if not self.path:
            return
        channel, packet = self.path.pop(which % len(self.path))
        if how == "drop":
            return
        if how == "cut":
            packet = packet[: which % len(packet)]
        for _ in range(2 if how == "twice" else 1):
            for event in channel.receive(packet, T + 2):
                if isinstance(event, Received):
                    self.got.append(bytes(event.payload))
        self._take(channel)

    @rule()
    def refresh(self) -> None:
        if not self.a.closed:
            self.a.send_credentials((self.credential,))
            self._take(self.a)

    @rule()
    def close(self) -> None:
        self.a.close()
        self._take(self.a)

    @invariant()
    def only_what_was_sent_once(self) -> None:
        numbered = [g for g in self.got if len(g) >= 6]  # (each its own number)
        assert len(numbered) == len(set(numbered))
        assert set(self.got) <= set(self.sent)
        for channel in (self.a, self.b):
            if channel.closed:
                assert channel._receiver is None
                assert channel.reassembling == 0
                assert not channel._pending


_Link.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
)
test_a_hostile_path_between_two_open_ends = _Link.TestCase
