"""Review 47q: the bulk pass p10 (in-place reassembly, troth/channel/reassembly.py, "In place";
`SecureChannel.send(payload, prefix)`; docs/protocols.md, "Secure channel"): what an
authenticated peer, or a caller's buffer, could do with it, each fixed."""

from __future__ import annotations

from tests.support.channels import T, make_world
from tests.test_channel_batch import _pair as open_pair
from troth.channel import Event, Received, SecureChannel
from troth.channel.payloads import FRAGMENT, HEADER, Kind
from troth.channel.state import ChannelState


def _sealed(a: SecureChannel, kind: Kind, body: bytes) -> list[bytes | bytearray]:
    """Packets of one authenticated frame of `kind` and `body` from `a` (what a hostile but
    authenticated peer can send: any plaintext under its keys)."""
    a._queue(a._seal_data(HEADER.pack(int(kind), len(body)) + body))
    return a.outgoing()


def _receive(b: SecureChannel, packets: list[bytes | bytearray]) -> list[Event]:
    return [e for p in packets for e in b.receive(p, T + 1)]


def test_a_message_in_one_large_fragment_is_delivered_not_an_unexpected_error() -> None:
    """A message sent as one fragment (offset 0, its whole total) in a frame of at least
    IN_PLACE_FROM bytes, no padding: `_in_place` has nothing to append, and cut the fragment
    header off a bytearray the channel still viewed (the frame being read): BufferError out
    of `SecureChannel.receive` (no typed error, the channel left open, the packet's other
    events lost, a traceback logged per packet by the transport). Honest senders fragment
    only what a frame cannot hold, but the reassembler takes such a fragment: delivered."""
    a, b = open_pair(make_world())
    for size in (61_440, 65_000, 65_468):
        payload = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
        body = FRAGMENT.pack(a._next_nonce, size, 0) + payload
        events = _receive(b, _sealed(a, Kind.FRAGMENT, body))
        assert events == [Received(payload)], size
        assert b.state is ChannelState.OPEN
        assert b.reassembling == 0


def test_a_payload_view_of_wider_items_is_sent_as_its_bytes() -> None:
    """`send(payload, prefix)` with a memoryview whose items are wider than a byte (a routed
    message's payload is any buffer: `RoutedMessage.encode` joined it as its bytes before
    the channel end handed the two apart): its size was len() in items, so a 200,000-byte
    payload took the one-frame path and a struct.error left `send`. Sent as its bytes."""
    a, b = open_pair(make_world())
    data = bytes(range(256)) * 800
    for prefix in (b"\x00\x02hh", b""):
        a.send(memoryview(data).cast("I"), prefix)
        events = [e for p in a.outgoing() for e in b.receive(p, T + 1)]
        assert events == [Received(prefix + data)]
    a.send(memoryview(data[:4000]).cast("Q"), b"\x00\x01h")  # one frame
    events = [e for p in a.outgoing() for e in b.receive(p, T + 1)]
    assert events == [Received(b"\x00\x01h" + data[:4000])]
