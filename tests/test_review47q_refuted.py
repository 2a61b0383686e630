"""Review 47q: attacks on the bulk pass p10 (`SecureChannel.send(payload, prefix)` and in-place
reassembly: troth/channel/reassembly.py, "In place"; docs/protocols.md, "Secure channel")
that the code already withstands, kept as tests: an authenticated peer sending any fragment
it likes, and a relay that sees only ciphertext."""

from __future__ import annotations

import pytest

from tests.support.channels import T, dropped, frames_of, make_world, packet
from tests.test_channel_batch import _pair as open_pair
from troth import limits
from troth.channel import (
    ChannelSettings,
    ChannelState,
    Closed,
    DropReason,
    Event,
    GivenUp,
    ReassemblyBudget,
    Received,
    SecureChannel,
)
from troth.channel.payloads import FRAGMENT, HEADER, Kind
from troth.channel.reassembly import IN_PLACE_FROM, IN_PLACE_ROOM
from troth.crypto.aead import Aead, AeadAlgorithm
from troth.encoding import cbor
from troth.errors import ChannelFailure, CryptoError
from troth.routing import Address, RoutedMessage

F = ChannelFailure
TAG = 16
START = HEADER.size + FRAGMENT.size  # where a fragment's chunk starts in its frame's plaintext
FULL = 65_510 - START  # the chunk of a full frame (MAX_PLAINTEXT, no padding)
SMALLEST = IN_PLACE_FROM - TAG - START  # the least chunk whose frame is decrypted with room


def _pair(padding: int = 0) -> tuple[SecureChannel, SecureChannel]:
    return open_pair(make_world(), ChannelSettings(padding=padding))


def _data(size: int, seed: int = 0) -> bytes:
    return bytes((seed + 7 * i) % 251 for i in range(size))


def _fragment(
    a: SecureChannel, message_id: int, total: int, offset: int, chunk: bytes, pad: int = 0
) -> bytes:
    """One authenticated FRAGMENT frame from `a` (any plaintext a hostile peer likes: `pad`
    bytes after the fragment, inside the frame), as a packet of its own."""
    body = FRAGMENT.pack(message_id, total, offset) + chunk
    plain = HEADER.pack(int(Kind.FRAGMENT), len(body)) + body + bytes(pad)
    a._queue(a._seal_data(plain))
    (sealed,) = a.outgoing()
    return bytes(sealed)


def _receive(b: SecureChannel, *packets: bytes) -> list[Event]:
    return [e for p in packets for e in b.receive(p, T + 1)]


def _messages(events: list[Event]) -> list[bytes | memoryview]:
    return [e.payload for e in events if isinstance(e, Received)]


def _in_place(message: bytes | memoryview) -> bool:
    return isinstance(message, memoryview) and type(message.obj) is bytearray


def _closed(events: list[Event]) -> F:
    found = [e for e in events if isinstance(e, Closed)]
    assert found, events
    return found[0].reason


# -- fragments that do not tile their message ------------------------------------------------


def test_an_overlap_and_a_gap_of_the_same_size_close_the_channel() -> None:
    """First fragment [0, FULL) in a frame with room, then one overlapping it by 100 bytes and
    ending 100 short of a fragment it leaves out: the byte count adds up to the total (the
    old length check would have passed a message of the wrong bytes); the tiling check
    closes the channel before anything is put in place."""
    a, b = _pair()
    total = FULL + 4_700
    events = _receive(
        b,
        _fragment(a, 1, total, 0, _data(FULL)),
        _fragment(a, 1, total, FULL - 100, _data(4_600, 1)),  # [FULL - 100, FULL + 4,500)
        _fragment(a, 1, total, FULL + 4_600, _data(100, 2)),  # the last; [.., + 4,600) missing
    )
    assert not _messages(events)
    assert _closed(events) is F.PROTOCOL
    assert [e.detail for e in events if isinstance(e, Closed)] == ["fragments overlap"]
    assert b._reassembler.pending == 0


def test_an_overlapping_last_fragment_within_the_room_closes_the_channel() -> None:
    """In-place candidate (rest within IN_PLACE_ROOM) whose last fragment starts inside the
    first chunk: more bytes than the total arrive, the tiling check closes the channel; no
    bytes of it are appended anywhere."""
    a, b = _pair()
    total = FULL + 500
    events = _receive(
        b,
        _fragment(a, 1, total, 0, _data(FULL)),
        _fragment(a, 1, total, FULL - 10, _data(510)),
    )
    assert not _messages(events)
    assert _closed(events) is F.PROTOCOL


def test_a_gap_never_completes_and_is_given_up() -> None:
    """A gap (the last fragment only, its middle never sent) holds the message until the
    timeout: it is never delivered with bytes it did not get."""
    a, b = _pair()
    total = FULL + 4_096 + 500
    events = _receive(
        b,
        _fragment(a, 1, total, 0, _data(FULL)),
        _fragment(a, 1, total, FULL + 4_096, _data(500)),
    )
    assert events == []
    assert b._reassembler.pending == 1
    assert b.expire(T + 1 + 60) > 0
    assert b._reassembler.pending == 0
    assert b.state is ChannelState.OPEN


def test_a_duplicate_first_fragment_closes_the_channel() -> None:
    """A second frame (a new nonce) with the same message id and offset 0."""
    a, b = _pair()
    total = FULL + 500
    events = _receive(
        b,
        _fragment(a, 1, total, 0, _data(FULL)),
        _fragment(a, 1, total, 0, _data(FULL, 9)),
    )
    assert _closed(events) is F.PROTOCOL
    assert b._reassembler.pending == 0


def test_a_total_that_changes_between_fragments_closes_the_channel() -> None:
    a, b = _pair()
    events = _receive(
        b,
        _fragment(a, 1, FULL + 500, 0, _data(FULL)),
        _fragment(a, 1, FULL + 400, FULL, _data(400)),
    )
    assert _closed(events) is F.PROTOCOL


def test_another_messages_fragment_does_not_fill_the_room() -> None:
    """A first fragment whose rest would fit its room, then a small last fragment of another
    message id with the offset and size that would fill it: that one is its own message
    (held, incomplete); the first completes only with its own rest, each intact, and the
    first's bytes were never grown by the other's."""
    a, b = _pair()
    total = FULL + 700
    head, rest, other = _data(FULL, 1), _data(700, 2), _data(700, 3)
    events = _receive(
        b,
        _fragment(a, 1, total, 0, head),
        _fragment(a, 2, total, FULL, other),  # message 2: only its last fragment
    )
    assert events == []
    assert b._reassembler.pending == 2
    (message,) = _messages(_receive(b, _fragment(a, 1, total, FULL, rest)))
    assert _in_place(message)
    assert message == head + rest
    assert b._reassembler.pending == 1  # message 2 still waits for its first fragment
    (second,) = _messages(_receive(b, _fragment(a, 2, total, 0, _data(FULL, 4))))
    assert second == _data(FULL, 4) + other
    assert message == head + rest  # unchanged by the second message


def test_the_first_fragment_last_is_copied_whole() -> None:
    """Out of order: the small last fragment, then the first (its frame is still being read:
    not resized, copied as before)."""
    a, b = _pair()
    total = FULL + 300
    head, rest = _data(FULL, 5), _data(300, 6)
    events = _receive(b, _fragment(a, 1, total, FULL, rest), _fragment(a, 1, total, 0, head))
    (message,) = _messages(events)
    assert not _in_place(message)
    assert message == head + rest
    assert b.state is ChannelState.OPEN


# -- aliasing: a delivered message is never written to -----------------------------------------


def test_a_delivered_message_in_place_is_not_changed_by_later_frames() -> None:
    """Messages completed in place are kept (as a service, a queue or a relay would keep the
    view), then more 64 KiB messages, messages put together by copy and small ones arrive:
    every kept message keeps its bytes, each in a buffer of its own, and none can be resized
    while it is viewed."""
    a, b = _pair()
    kept: list[tuple[memoryview, bytes]] = []
    for n in range(6):
        payload = _data(65_536, n)
        a.send(payload, b"\x00\x07header")
        (message,) = _messages(_receive(b, *map(bytes, a.outgoing())))
        assert isinstance(message, memoryview)
        assert _in_place(message)
        kept.append((message, b"\x00\x07header" + payload))
        a.send(_data(200_000, n))  # copied together
        a.send(_data(100, n))
        a.send(_data(70_000, n))  # a first fragment whose rest does not fit the room
        assert len(_messages(_receive(b, *map(bytes, a.outgoing())))) == 3
    for message, expected in kept:
        assert message == expected
    assert len({id(m.obj) for m, _ in kept}) == len(kept)
    buffer = kept[0][0].obj
    assert isinstance(buffer, bytearray)
    with pytest.raises(BufferError):  # (what in-place appending relies on)
        buffer += b"x"


def test_a_relayed_message_in_place_keeps_its_bytes_when_forwarded() -> None:
    """A message completed in place, sent on (a relay's channel end: `send(payload,
    prefix)` with the view as payload), arrives whole, and the view held meanwhile is unchanged
    by the sending (fragments are sealed from copies)."""
    a, b = _pair()
    c, d = _pair()
    payload = _data(65_536, 11)
    a.send(payload, b"\x00\x03abc")
    (message,) = _messages(_receive(b, *map(bytes, a.outgoing())))
    assert isinstance(message, memoryview)
    c.send(message[5:], bytes(message[:5]))
    (forwarded,) = _messages(_receive(d, *map(bytes, c.outgoing())))
    assert forwarded == b"\x00\x03abc" + payload
    assert message == b"\x00\x03abc" + payload


# -- a relay that sees ciphertext only ----------------------------------------------------------


def test_a_tampered_large_frame_is_dropped_and_its_plaintext_never_used() -> None:
    """A relay flips a bit in a first fragment's frame (decrypted into the bytearray with
    room: the library leaves unauthenticated plaintext in it on a tag failure): the frame is
    dropped, nothing is held or delivered, the replay window does not move, and the genuine
    frame after it completes the message."""
    a, b = _pair()
    a.send(_data(65_536, 12), b"\x00\x01h")
    first, last = frames_of(a.outgoing())
    tampered = bytearray(first)
    tampered[200] ^= 0x10
    events = _receive(b, packet(bytes(tampered)))
    assert dropped(events) == [DropReason.UNDECRYPTABLE]
    assert b._reassembler.pending == 0
    (message,) = _messages(_receive(b, packet(first), packet(last)))
    assert message == b"\x00\x01h" + _data(65_536, 12)
    assert _in_place(message)
    assert dropped(_receive(b, packet(first))) == [DropReason.DUPLICATE]


def test_a_relay_reordering_or_splitting_fragments_changes_nothing() -> None:
    a, b = _pair()
    for size in (65_536, 65_468 + IN_PLACE_ROOM, 140_000):
        payload = _data(size, size % 7)
        a.send(payload, b"\x00\x02hh")
        frames = frames_of(a.outgoing())
        (message,) = _messages(_receive(b, *(packet(f) for f in reversed(frames))))
        assert message == b"\x00\x02hh" + payload


def test_aead_decrypt_into_is_the_librarys_and_fails_opaquely() -> None:
    """`Aead.decrypt_into` is pyca's `decrypt_into` (both algorithms): the plaintext when the
    tag holds, CryptoError (not the library's InvalidTag) when not."""
    for algorithm in AeadAlgorithm:
        aead = Aead(algorithm, bytes(range(32)))
        nonce, data = bytes(12), _data(70_000)
        sealed = bytearray(aead.encrypt(nonce, data, b"ad"))
        out = bytearray(len(data))
        assert aead.decrypt_into(nonce, bytes(sealed), b"ad", out) == len(data)
        assert out == data
        sealed[-1] ^= 1
        with pytest.raises(CryptoError):
            aead.decrypt_into(nonce, bytes(sealed), b"ad", bytearray(len(data)))
        with pytest.raises(CryptoError):
            aead.decrypt_into(nonce, bytes(sealed[:-1]) + bytes((sealed[-1] ^ 1,)), b"", out)


# -- sizes at the boundaries, padding ----------------------------------------------------------


@pytest.mark.parametrize(
    ("chunk", "rest", "in_place"),
    [
        (SMALLEST - 1, 500, False),  # a frame of 60 KiB - 1 (ciphertext): no room
        (SMALLEST, 500, True),  # 60 KiB: room
        (SMALLEST, IN_PLACE_ROOM, True),  # the rest fills the room exactly
        (SMALLEST, IN_PLACE_ROOM + 1, False),  # one byte over: copied
        (FULL, IN_PLACE_ROOM, True),  # a full frame (MAX_CHANNEL_FRAME on the wire)
        (FULL, 1, True),
    ],
)
def test_sizes_at_the_boundaries(chunk: int, rest: int, in_place: bool) -> None:
    a, b = _pair()
    total = chunk + rest
    head, tail = _data(chunk, 1), _data(rest, 2)
    first = _fragment(a, 5, total, 0, head)
    assert len(first) - 2 - 1 - 8 == chunk + START + TAG  # (its ciphertext)
    (message,) = _messages(_receive(b, first, _fragment(a, 5, total, chunk, tail)))
    assert _in_place(message) is in_place
    assert message == head + tail
    if chunk == FULL:
        assert len(first) - 2 == limits.MAX_CHANNEL_FRAME


def test_padding_after_the_first_chunk_is_never_part_of_the_message() -> None:
    """A first fragment with bytes after its chunk inside its frame (padding, or junk a peer
    puts there): copied together, the padding not in the message."""
    a, b = _pair()
    total = SMALLEST + 300
    head, tail = _data(SMALLEST, 3), _data(300, 4)
    first = _fragment(a, 6, total, 0, head, pad=700)
    (message,) = _messages(_receive(b, first, _fragment(a, 6, total, SMALLEST, tail, pad=50)))
    assert not _in_place(message)
    assert message == head + tail


def test_padded_channels_put_together_the_same_messages() -> None:
    a, b = _pair(padding=256)
    for size in (65_536, 65_536 + 900, 130_000):
        payload = _data(size, 8)
        a.send(payload, b"\x00\x00")
        (message,) = _messages(_receive(b, *map(bytes, a.outgoing())))
        assert message == b"\x00\x00" + payload


# -- memory: the room is not charged, and is bounded -------------------------------------------


def test_concurrent_reassemblies_are_charged_their_frames_within_the_limits() -> None:
    """MAX_REASSEMBLIES first fragments in frames with room: each is charged its decrypted
    frame (not the room: at most IN_PLACE_ROOM / (IN_PLACE_FROM - 16) of what is charged, the
    bound docs/protocols.md states), one more message takes the oldest one's place (it closed
    the channel before review 49f, reassembly 1), and a shared budget
    of two frames still takes a message of two full frames (review 30)."""
    a, b = _pair()
    for n in range(limits.MAX_REASSEMBLIES):
        assert _receive(b, _fragment(a, n, FULL + 500, 0, _data(FULL))) == []
    held = b._reassembler.held
    assert held == limits.MAX_REASSEMBLIES * (FULL + START)
    frames = [c.obj for m in b._reassembler._messages.values() for c in m.chunks.values()]
    assert all(type(f) is bytearray for f in frames)
    assert IN_PLACE_ROOM * len(frames) <= held // 60
    events = _receive(b, _fragment(a, 99, FULL + 500, 0, _data(FULL)))
    assert events == [GivenUp(1)]  # one more message: the oldest given up for it (review 49f)
    assert (b._reassembler.pending, b._reassembler.given_up) == (limits.MAX_REASSEMBLIES, 1)
    assert b._reassembler.held == held
    a, b = _pair()
    budget = ReassemblyBudget(2 * limits.MAX_CHANNEL_FRAME)
    assert b.share_reassembly_budget(budget) is None
    payload = _data(2 * FULL, 1)
    a.send(payload)
    (message,) = _messages(_receive(b, *map(bytes, a.outgoing())))
    assert message == payload
    assert budget.held == 0


def test_what_consumers_decode_from_a_message_in_place_is_a_copy() -> None:
    """Services, MCP frames and trace submissions take a delivered message through CBOR
    (`RoutedMessage.arrived`, then `cbor.decode`): what they keep are bytes of their own, so
    a message in place (a writable view of its frame) pins nothing past the handling, and
    nothing written to that buffer later (nothing is) could reach them."""
    a, b = _pair()
    inner = _data(65_000, 13)
    request = RoutedMessage((Address("service", "sink"),), (), cbor.encode([b"id", inner]))
    a.send(request.payload, request.header())
    (message,) = _messages(_receive(b, *map(bytes, a.outgoing())))
    assert isinstance(message, memoryview)
    assert _in_place(message)
    routed = RoutedMessage.arrived(message, Address("worker", "dec"))
    decoded = cbor.decode(routed.payload)
    assert type(decoded[1]) is bytes
    assert decoded[1] == inner
    message[len(message) - 1] ^= 0xFF  # (the view is writable: a consumer's own to change)
    assert decoded[1] == inner
