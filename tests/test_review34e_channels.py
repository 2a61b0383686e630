"""Review 34e (the channel and transport layers under an unauthenticated sender, a hostile
authenticated peer and the path).

Frames 1: a packet is read frame by frame, and before this round every frame that did not
authenticate was dropped on its own, one `Dropped` event each (counted, handed to the node,
which counts and logs each), after whatever work reading it took: a packet of 65,536 empty
frames (128 KiB of zeros) cost its receiver 65,536 drops, about 300 ms of CPU, and a packet of
junk handshake frames cost a handshake-state copy and an AEAD attempt per frame. Anyone who
can send a message 1 gets a responder end whose address its connection may reach, so anyone
who can connect had the node spend seconds of CPU per megabyte sent, many times what the
same bytes cost as transport frames. A packet is one unit (its sender joins its frames, and a
relay carries it whole): a genuine packet never holds a frame that does not authenticate.
"""

from __future__ import annotations

import pytest

from tests.support.channels import T, World, dropped, make_world, packet, pump
from troth.channel import ChannelState, DropReason, Received, SecureChannel

S = ChannelState


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def open_pair(world: World) -> tuple[SecureChannel, SecureChannel]:
    a, b = world.initiator(), world.responder()
    pump(a, b)
    assert a.state is b.state is S.OPEN
    return a, b


def test_a_packet_of_empty_frames_costs_an_open_channel_one_drop(world: World) -> None:
    """Frames 1: 10,000 empty frames in one packet to an open channel are one drop (the frames
    after the first that does not authenticate are not read), and the channel goes on.
    Was a strict xfail until the packet was given up at its first dropped frame."""
    a, b = open_pair(world)
    flood = bytes(2 * 10_000)  # 10,000 frames of length 0
    events = b.receive(flood, T + 2)
    assert dropped(events) == [DropReason.MALFORMED]
    assert len(events) == 1
    assert "(the rest of the packet not read)" in str(events[0])
    assert b.drops[DropReason.MALFORMED] == 1
    a.send(b"the next real message")
    assert pump(a, b)[1] == [Received(b"the next real message")]


def test_a_packet_of_junk_handshake_frames_costs_a_responder_one_drop(world: World) -> None:
    """Frames 1: a responder awaiting message 3 (all anyone gets for a message 1) reads one
    junk handshake frame of a packet of 1,000, not each; the genuine message 3 still opens it.
    Was a strict xfail until the packet was given up at its first dropped frame."""
    a, b = world.initiator(), world.responder()
    for p in a.outgoing():
        b.receive(p, T)
    assert b.handshaking
    junk = packet(*[b"\x01" + bytes(64)] * 1_000)
    events = b.receive(junk, T)
    assert dropped(events) == [DropReason.UNDECRYPTABLE]
    assert (b.drops[DropReason.UNDECRYPTABLE], b.state) == (1, S.AWAITING_MESSAGE_3)
    pump(a, b)
    assert a.state is b.state is S.OPEN


def test_frames_before_a_junk_frame_are_still_read(world: World) -> None:
    """Frames 1's control: what authenticated before the first dropped frame of a packet is
    delivered (an on-path party that appends junk to a genuine packet loses nothing of it)."""
    a, b = open_pair(world)
    a.send(b"first")
    a.send(b"second")
    (genuine,) = a.outgoing()
    events = b.receive(bytes(genuine) + bytes(2 * 100), T + 2)
    assert events[:2] == [Received(b"first"), Received(b"second")]
    assert set(dropped(events)) == {DropReason.MALFORMED}
    assert b.state is S.OPEN
