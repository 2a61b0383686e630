"""Review 47e: attacks on BATCH transport frames, held messages and unanswered-channel probes
that the code already withstands (docs/protocols.md, "Secure channel", "Batches",
"Unanswered channels"), kept as tests: an authenticated peer, a relay that sees only
ciphertext, and a slow reader."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.support.channels import T, dropped, frames_of, make_world, packet
from tests.test_channel_batch import _pair as open_pair
from troth.channel import (
    ChannelSettings,
    ChannelState,
    DropReason,
    Event,
    Received,
    SecureChannel,
)
from troth.channel.payloads import BATCH_ITEM, FRAGMENT, HEADER, Kind, pack
from troth.errors import ChannelFailure
from troth.node.channel_ends import COALESCE_LIMIT, PROBE_AFTER, PROBE_WAIT, ChannelEnd
from troth.routing import Address, RoutedMessage, Router, Source

HOP = Address("worker", "review47e-hop")
ONE = b"1" * 31  # MIN_BATCH_MESSAGE bytes
TWO = b"2" * 40


def _pair() -> tuple[SecureChannel, SecureChannel]:
    return open_pair(make_world())


def _messages(events: list[Event]) -> list[bytes]:
    return [bytes(e.payload) for e in events if isinstance(e, Received)]


def _batch(*items: bytes) -> bytes:
    return b"".join(BATCH_ITEM.pack(len(item)) + item for item in items)


def _sealed(a: SecureChannel, kind: Kind, body: bytes) -> list[bytes | bytearray]:
    """Packets of one authenticated frame of `kind` and `body` from `a` (what a hostile but
    authenticated peer can send: any plaintext under its keys)."""
    a._queue(a._seal_data(HEADER.pack(int(kind), len(body)) + body))
    return a.outgoing()


@pytest.mark.parametrize(
    "body",
    [
        _batch(ONE),  # one message: a DATA frame's
        BATCH_ITEM.pack(0) + _batch(ONE, TWO),  # an empty member
        _batch(ONE, b"x" * 30, TWO),  # a member under MIN_BATCH_MESSAGE (review 47e, batch 1)
        _batch(ONE) + BATCH_ITEM.pack(60_000) + TWO,  # a length past the frame
        _batch(ONE, TWO) + b"\x00",  # half a member header
    ],
)
def test_a_malformed_authenticated_batch_closes_and_delivers_none_of_it(body: bytes) -> None:
    """A batch of one message, with an empty member, a member length running past the frame,
    a cut member header: the peer's protocol violation closes the channel (`protocol`, as a
    malformed DATA frame would), no member of it is delivered and nothing after it is read."""
    a, b = _pair()
    packets = _sealed(a, Kind.BATCH, body)
    events = [e for p in packets for e in b.receive(p, T + 1)]
    assert _messages(events) == []
    assert b.closed
    assert b.close_reason is ChannelFailure.PROTOCOL


def test_batch_members_are_application_messages_whatever_bytes_they_hold() -> None:
    """A batch whose members are themselves a BATCH plaintext, PING, PONG, CLOSE and
    ACCEPTED plaintexts, a FRAGMENT header and a handshake-looking frame: each is delivered as
    an opaque application message (the node routes and decides it as one from a DATA frame).
    None is read as a frame kind: no PONG is queued, the channel stays open, nothing is
    reassembled (a member cannot reach the reassembly budget), no replay-window entry is
    taken beyond the batch's own nonce."""
    a, b = _pair()
    inner = pack(Kind.BATCH, (_batch(b"x" * 31, b"y" * 31),), 0)
    members = [  # (each padded past MIN_BATCH_MESSAGE, as a padded channel's frames are)
        inner,
        pack(Kind.PING, (), 32),
        pack(Kind.PONG, (), 32),
        pack(Kind.CLOSE, (bytes((int(ChannelFailure.NORMAL),)), b"bye"), 32),
        pack(Kind.ACCEPTED, (), 32),
        pack(Kind.FRAGMENT, (FRAGMENT.pack(0, 1 << 20, 0), b"z" * 100), 0),
        b"\x00\x21\x01" + bytes(32),  # a message 1's packet
    ]
    top = b._window.top
    packets = _sealed(a, Kind.BATCH, _batch(*members))
    events = [e for p in packets for e in b.receive(p, T + 1)]
    assert _messages(events) == members
    assert b.state is ChannelState.OPEN
    assert not b.has_outgoing  # no PONG for the PING-looking member
    assert b.reassembling == 0
    assert b._window.top == top + 1


def test_a_relay_that_reorders_duplicates_and_replays_batch_frames() -> None:
    """A relay (ciphertext only) splits the sender's packets into frames, reorders them,
    sends each twice, and replays the first ones again after the window moved on: every
    batch member and the fragmented message between the batches arrive exactly once (a
    batch is one nonce: its members are accepted or refused together), the copies are dropped
    as duplicates, the late replays as below the window; nothing closes the channel."""
    window = 64
    a, b = open_pair(make_world(), ChannelSettings(replay_window=window, rekey_interval=window))
    sent: list[bytes] = []
    frames: list[bytes] = []
    for round_ in range(6):
        for n in range(5):
            message = b"%d.%d" % (round_, n)
            a.send(message)
            sent.append(message)
        if round_ % 2:
            big = bytes([round_]) * 150_000  # three fragments
            a.send(big)
            sent.append(big)
        frames += [bytes(f) for f in frames_of(a.outgoing())]
    shuffled = frames[:]
    random.Random(47).shuffle(shuffled)
    events: list[Event] = []
    for frame in shuffled:
        events += b.receive(packet(frame), T + 1)
        events += b.receive(packet(frame), T + 1)  # the relay's copy
    assert sorted(_messages(events)) == sorted(sent)
    assert set(dropped(events)) == {DropReason.DUPLICATE}
    for _ in range(window + 1):  # the window moves past the first frames
        a.send(b"later")
        a.send(b"later too")
        for p in a.outgoing():
            b.receive(p, T + 1)
    replayed = [e for frame in frames[:3] for e in b.receive(packet(frame), T + 1)]
    assert _messages(replayed) == []
    assert set(dropped(replayed)) == {DropReason.REPLAY}
    assert b.state is ChannelState.OPEN


def _end(channel: SecureChannel, router: Router) -> ChannelEnd:
    async def deliver(end: ChannelEnd, payload: bytes | memoryview) -> None:
        pass

    def on_event(end: ChannelEnd, event: Event) -> None:
        pass

    return ChannelEnd(
        channel,
        (HOP,),
        router=router,
        clock=lambda: T + 1,
        deliver=deliver,
        on_event=on_event,
        max_reply_paths=8,
    )


def test_a_busy_peer_that_never_answers_probes_is_not_suspect() -> None:
    """A peer that swallows every PING (no PONG ever) but keeps sending: each authenticated
    frame it sends clears the wait, so its live channel is never taken for gone (nor
    replaced). A peer that sends nothing at all is suspect once the probe went unanswered
    for PROBE_WAIT; replays of its old packets by a relay (dropped, unauthenticated) do not
    keep that dead channel alive."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        a, b = _pair()
        sent: list[bytes] = []
        router = Router()

        async def hop(message: RoutedMessage, source: Source | None) -> None:
            sent.append(bytes(message.payload))  # what the peer would get; it reads, never
            # answers a PING

        router.register(HOP, hop)
        end = _end(a, router)
        old: list[bytes | bytearray] = []
        target = (Address("service", "x"),)
        for step in range(20):  # a request, its probe unanswered, then the peer sends
            await end.from_local(RoutedMessage(target, (), b"request %d" % step), None)
            t = loop.time()
            assert end.probe(t + PROBE_AFTER)  # a PING the peer swallows
            await end.flush()  # (the manager's timer does)
            assert not end.suspect(t + PROBE_AFTER + PROBE_WAIT / 2)
            b.send(b"busy %d" % step)
            packets = b.outgoing()
            old += packets
            for p in packets:
                await end.from_peer(RoutedMessage((), (), p), None)
            assert not end.suspect(t + PROBE_AFTER + 10 * PROBE_WAIT)
        assert len(frames_of([bytearray(p) for p in sent])) >= 40  # requests and PINGs
        # the peer falls silent: the next message and its probe go unanswered
        await end.from_local(RoutedMessage((Address("service", "x"),), (), b"again"), None)
        t0 = loop.time()
        assert end.probe(t0 + PROBE_AFTER)
        for p in old[-3:]:  # a relay replays the peer's last packets
            await end.from_peer(RoutedMessage((), (), p), None)
        assert end.suspect(t0 + PROBE_AFTER + PROBE_WAIT)

    asyncio.run(run())


def test_what_a_channel_end_holds_toward_a_slow_reader_is_bounded() -> None:
    """Many senders queue answers through one channel whose first hop does not take them
    (a reader that does not read: each send waits): a batch is sealed at the frame's size and
    the end flushes past COALESCE_LIMIT, so what the channel holds unsent stays under
    COALESCE_LIMIT and a frame (the rest waits with the senders, whose number the node bounds),
    and every frame is within one Noise message."""

    async def run() -> None:
        a, _ = _pair()
        router = Router()
        gate = asyncio.Event()
        taken: list[bytes] = []

        async def hop(message: RoutedMessage, source: Source | None) -> None:
            taken.append(bytes(message.payload))
            await gate.wait()  # the reader does not read

        router.register(HOP, hop)
        end = _end(a, router)
        target = (Address("service", "x"),)
        held: list[int] = []

        async def sender(n: int) -> None:
            await end.from_local(RoutedMessage(target, (), bytes([n % 256]) * 3000), None)
            held.append(a.queued_bytes)

        tasks = [asyncio.get_running_loop().create_task(sender(n)) for n in range(300)]
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(held) >= 250  # the senders past the first went on
        assert taken  # the first hop was given packets, and holds them
        assert max(held) < COALESCE_LIMIT + 65_535
        assert a.queued_bytes < COALESCE_LIMIT + 65_535
        assert all(len(f) <= 65_535 for f in frames_of([bytearray(t) for t in taken]))
        gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(run())


def test_a_batch_before_the_responders_accepted_closes_the_initiator() -> None:
    """A responder that sends a BATCH before its ACCEPTED (the initiator not yet admitted):
    a protocol violation, as a DATA frame there is; none of its messages is delivered."""
    world = make_world()
    a = SecureChannel.initiate(
        me=world.alice.me((world.credential(world.alice),)), trust=world.trust()
    )
    b = SecureChannel(
        initiator=False, me=world.bob.me((world.credential(world.bob),)), trust=world.trust()
    )
    for p in a.outgoing():  # message 1
        b.receive(p, T + 1)
    for p in b.outgoing():  # message 2
        a.receive(p, T + 1)
    for p in a.outgoing():  # message 3: b queues its ACCEPTED
        b.receive(p, T + 1)
    assert a.state is ChannelState.AWAITING_ACCEPT
    accepted = b.outgoing()
    early = _sealed(b, Kind.BATCH, _batch(ONE, TWO))
    events = [e for p in early for e in a.receive(p, T + 1)]
    assert _messages(events) == []
    assert a.closed
    assert a.close_reason is ChannelFailure.PROTOCOL
    assert accepted  # (never delivered: the initiator closed first)
