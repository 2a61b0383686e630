"""Review 46g: attacks on BATCH transport frames and unanswered-channel probes that the code
already withstands (docs/protocols.md, "Batches", "Unanswered channels"), kept as tests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.channels import T, frames_of, make_world
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_channel_batch import _pair as open_pair
from tests.test_reconnect_restarted_member import TO_B, B, relayed_b
from tests.test_review44d_relays import until
from troth.channel import ChannelSettings, Received, SecureChannel
from troth.channel.noise import MAX_MESSAGE
from troth.channel.payloads import BATCH_ITEM, HEADER, Kind, unpack
from troth.channel.secure import MAX_PLAINTEXT
from troth.node.access import MembersOnly
from troth.node.channel_ends import PROBE_AFTER, PROBE_WAIT
from troth.node.channels import ChannelLimits
from troth.node.links import LinkState
from troth.node.services import RequestContext, call, service_address
from troth.node.services.plugin import Method
from troth.routing import parse_route


def _pair(settings: ChannelSettings | None = None) -> tuple[SecureChannel, SecureChannel]:
    return open_pair(make_world(), settings)


def _delivered(b: SecureChannel, packets: list[bytes | bytearray]) -> list[bytes]:
    events = [e for p in packets for e in b.receive(p, T + 1)]
    return [bytes(e.payload) for e in events if isinstance(e, Received)]


def test_a_batch_of_one_byte_messages_is_each_message_on_its_own() -> None:
    """21,000 one-byte messages each arrive as a message of their own (the node routes and
    decides each, as one of a DATA frame), in order, once. (~21,800 fitted one BATCH frame;
    a message under MIN_BATCH_MESSAGE bytes now leaves in a DATA frame of its own, review
    47e, batch 1.)"""
    a, b = _pair()
    sent = [bytes([n % 251 + 1]) for n in range(21_000)]
    for message in sent:
        a.send(message)
    packets = a.outgoing()
    assert len(frames_of(packets)) == 21_000
    assert _delivered(b, packets) == sent


def test_frames_stay_within_the_limit_at_the_batch_boundary() -> None:
    """A message that would take the batch to MAX_PLAINTEXT, exactly or one byte past it:
    every frame is within MAX_MESSAGE, every message arrives once and in order (the check in
    `send` keeps two bytes spare past two items: a message that would fill the frame exactly
    leaves in the next one, never one byte over)."""
    first, second = 30_000, 30_000
    held = HEADER.size + 2 * BATCH_ITEM.size + first + second
    exact = MAX_PLAINTEXT - held - BATCH_ITEM.size  # fills the frame to the byte
    for size in range(exact - 3, exact + 4):
        a, b = _pair()
        sent = [b"a" * first, b"b" * second, b"c" * size, b"d" * 10]
        for message in sent:
            a.send(message)
        packets = a.outgoing()
        for frame in frames_of(packets):
            assert len(frame) <= MAX_MESSAGE
        assert _delivered(b, packets) == sent
    a, b = _pair()  # one message of a frame's capacity: a DATA frame of MAX_PLAINTEXT
    a.send(b"x" * (MAX_PLAINTEXT - HEADER.size))
    (frame,) = frames_of(a.outgoing())
    assert len(frame) == MAX_MESSAGE


def test_order_and_keys_kept_across_rekeying_with_messages_held() -> None:
    """Messages held while a PING, a credential refresh or a fragmented message is queued,
    across many epoch boundaries (a rekey every 64 nonces): the held batch is sealed before
    the frame queued after it, each frame under its own nonce's epoch key, and the receiver
    reads all of them in the order sent."""
    settings = ChannelSettings(replay_window=64, rekey_interval=64)
    a, b = _pair(settings)
    sent: list[bytes] = []
    for round_ in range(200):
        for n in range(3):
            message = b"%d.%d" % (round_, n)
            a.send(message)
            sent.append(message)
        if round_ % 3 == 0:
            a.probe(float(round_))  # a PING queued behind the held messages
        if round_ % 50 == 1:
            big = bytes([round_ % 256]) * 70_000  # fragmented: seals the held ones first
            a.send(big)
            sent.append(big)
        got = _delivered(b, a.outgoing())
        assert got == sent[len(sent) - len(got) :]
    assert a._next_nonce > 4 * 64
    assert not b.drops


def test_a_malformed_batch_closes_the_channel_as_a_malformed_data_frame_does() -> None:
    """An authenticated BATCH whose items do not tile its body is a protocol violation of
    the peer (closes `protocol`, like any malformed authenticated frame); none of its items is
    delivered, and nothing after it in the packet is read."""
    a, b = _pair()
    body = BATCH_ITEM.pack(3) + b"one" + BATCH_ITEM.pack(9) + b"two"
    a._queue(a._seal_data(HEADER.pack(int(Kind.BATCH), len(body)) + body))
    a.send(b"after")
    events = [e for p in a.outgoing() for e in b.receive(p, T + 1)]
    assert not [e for e in events if isinstance(e, Received)]
    assert b.closed
    kind, _ = unpack(HEADER.pack(int(Kind.BATCH), 0))
    assert kind is Kind.BATCH


class _Slow:
    """A service whose one method waits `arguments` milliseconds (in a task of its own)."""

    name = "slow"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.methods: Mapping[str, Method] = {"wait": Method(self.wait, MembersOnly())}

    async def wait(self, arguments: Any, context: RequestContext) -> Any:
        await asyncio.sleep(int(arguments) / 1000)
        return "done"

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        return {}


def test_a_long_running_request_does_not_make_its_channel_suspect(tmp_path: Path) -> None:
    """A request whose handler runs past PROBE_AFTER + PROBE_WAIT: the probe PING is answered
    by the peer's channel layer while the handler runs (a request that waits runs in a task:
    it holds back no frame of its channel), so the channel is not suspect, `channel_to` keeps
    it, and the answer arrives over it."""

    async def test(net: MemNet) -> None:
        await relayed_b(net)
        b = net.runtimes[-1]
        b.add_service(_Slow())
        a = await net.node("a", limits=ChannelLimits(keepalive_interval=4.0))
        await a.enroll(net.ticket(), "a")
        end = await a.channel_to(B)
        wait = PROBE_AFTER + PROBE_WAIT + 1.5
        answer = await call(
            a.router, (end.enc, service_address("slow")), "wait", int(wait * 1000), timeout=wait + 5
        )
        assert answer == "done"
        assert end._probed is not None
        assert not end.suspect(asyncio.get_running_loop().time())
        assert await a.channel_to(B) is end
        assert not end.channel.closed

    run_memnet(test, tmp_path)


def test_a_link_channel_replaced_as_suspect_keeps_its_relay_name(tmp_path: Path) -> None:
    """b's channel to its hub (its link, holding relay name b) goes suspect: the next
    `channel_to` closes it and opens a fresh one. The link takes the new channel as lost and
    restored (the hub keeps the name for its owner through RELAY_GRACE), b's relay is up
    over the new channel, and a still reaches b through it: nothing is stranded."""

    async def test(net: MemNet) -> None:
        await relayed_b(net)
        b = net.runtimes[-1]
        hub = net.hub
        assert hub is not None
        a = await net.member("a")
        assert await a.send_message(TO_B, "before") == "before"
        old = await b.channel_to(parse_route(HUB))
        now = asyncio.get_running_loop().time()
        count = old.channel.authenticated  # as if a message and its probe went unanswered
        old._unanswered = (count, now - PROBE_AFTER - PROBE_WAIT - 2)
        old._probed = (count, now - PROBE_WAIT - 1)
        assert old.suspect(now)
        new = await b.channel_to(parse_route(HUB))
        assert new is not old
        await until(lambda: old.channel.closed)
        await until(lambda: b.link_rows()[0].state is LinkState.CONNECTED)
        assert b.link_rows()[0].relays == ("b",)
        assert b.links.links[HUB].end is new
        await until(lambda: hub.status()["services"]["relay"]["b"]["state"] == "up")
        assert await a.send_message(TO_B, "after") == "after"
        assert await b.channel_to(parse_route(HUB)) is new

    run_memnet(test, tmp_path)
