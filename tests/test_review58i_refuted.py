"""Review 58i: attacks on the channels, relays and handshake budgets (issue #8) that the defences
held. Each is a real attempt that fails if the defence it names breaks.

- Openings 1 (refuted): a completed handshake's opening is given back (`OpeningRates.give_back`),
  so completions cannot refill more than they took: a source that completes handshakes
  (each one taken and given back) past the burst still finds the openings it never completes
  refused past it; and a neighbour's completed handshake gives back the neighbour's own
  opening, never the flooding source's share.
- Hub 1 (refused): a hub between a relayed node and its peer cuts a packet of several frames
  short: the whole frames before the cut are delivered, the cut one is dropped and counted, the
  channel stays open; the hub then replays that packet whole: nothing is delivered twice, one
  drop is counted, nothing closes.
- Close 1 (refuted): frames in flight when a channel closed (its peer's data, a replay of its
  own CLOSE, a forged CLOSE) change nothing and deliver nothing.
"""

from __future__ import annotations

from tests.support.channels import T, World, make_world, pump
from tests.test_review57u_openings import at_times
from troth.channel import ChannelState, Dropped, DropReason, Received, SecureChannel
from troth.channel.packets import LENGTH, split_packet
from troth.node.opening_rates import OpeningRates

NETWORK = "tcp 10.58.0.0/24"
FLOOD, NEIGHBOUR = "tcp 10.58.0.1", "tcp 10.58.0.2"


def test_completed_handshakes_refill_no_more_than_they_took() -> None:
    async def test(_clock: list[float]) -> None:
        rates = OpeningRates(rate=64, burst=8)
        for _ in range(3 * 8):  # handshakes completed, each given back: never refused
            assert rates.take(FLOOD, NETWORK)
            rates.give_back(FLOOD, NETWORK)
        assert sum(rates.take(FLOOD, NETWORK) for _ in range(3 * 8)) == 8  # the burst alone
        rates.give_back(FLOOD, NETWORK)  # one of them completes after all: one more, no more
        assert rates.take(FLOOD, NETWORK)
        assert not rates.take(FLOOD, NETWORK)

    at_times(test)


def test_a_neighbours_completed_handshake_gives_the_flooding_source_nothing() -> None:
    async def test(clock: list[float]) -> None:
        rates = OpeningRates(rate=64, burst=256)
        while rates.take(FLOOD, NETWORK):  # the whole burst, never completed
            pass
        clock[0] += 1  # the network regains 64, the flooding source's share 32
        while rates.take(FLOOD, NETWORK):
            pass
        for _ in range(8):  # the neighbour opens and completes, again and again
            assert rates.take(NEIGHBOUR, NETWORK)
            rates.give_back(NEIGHBOUR, NETWORK)
            assert not rates.take(FLOOD, NETWORK)  # its share is spent: nothing given it

    at_times(test)


def _open(world: World) -> tuple[SecureChannel, SecureChannel]:
    a, b = world.initiator(), world.responder()
    pump(a, b)
    assert a.state is b.state is ChannelState.OPEN
    return a, b


def _joined(a: SecureChannel, *messages: bytes) -> bytes:
    """One packet of `messages`, one frame each (sent in one loop iteration, as a node does)."""
    for message in messages:
        a.send(message)
        a._seal_pending()  # a frame each, as messages of two sizes would be
    (packet,) = a.outgoing()
    assert len(split_packet(packet)) == len(messages)
    return bytes(packet)


def test_a_hub_cutting_a_packet_short_then_replaying_it_closes_nothing() -> None:
    a, b = _open(make_world())
    messages = [b"first %d" % n + bytes(40) for n in range(3)]
    packet = _joined(a, *messages)
    last = len(split_packet(packet)[-1]) + LENGTH.size
    cut = packet[: len(packet) - last + 10]  # the third frame's length and 8 of its bytes
    events = b.receive(cut, T + 2)
    assert [bytes(e.payload) for e in events if isinstance(e, Received)] == messages[:2]
    assert [e.reason for e in events if isinstance(e, Dropped)] == [DropReason.MALFORMED]
    assert b.state is ChannelState.OPEN
    events = b.receive(packet, T + 2)  # replayed whole: the first two are replays
    assert not [e for e in events if isinstance(e, Received)]
    assert [e.reason for e in events if isinstance(e, Dropped)] == [DropReason.DUPLICATE]
    assert b.state is ChannelState.OPEN
    a.send(b"after")
    (after,) = a.outgoing()
    assert [bytes(e.payload) for e in b.receive(after, T + 2) if isinstance(e, Received)] == [
        b"after"
    ]


def test_frames_arriving_after_a_close_change_nothing() -> None:
    world = make_world()
    a, b = _open(world)
    a.send(b"in flight" + bytes(40))
    (in_flight,) = a.outgoing()
    closed = b.close()
    (close,) = b.outgoing()
    assert not closed.by_peer
    assert b.state is ChannelState.CLOSED
    for late in (in_flight, close, bytes(close)):
        events = b.receive(late, T + 2)
        assert not [e for e in events if isinstance(e, Received)], events
        assert b.state is ChannelState.CLOSED
    assert a.receive(close, T + 2)[-1] == closed.__class__(closed.reason, "", by_peer=True)
    replayed = a.receive(close, T + 2)  # a replay of its CLOSE: dropped, not a second close
    assert [type(e) for e in replayed] == [Dropped], replayed
    assert a.state is ChannelState.CLOSED
