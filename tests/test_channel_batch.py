"""BATCH frames (docs/protocols.md, "Secure channel"): the one-frame messages a sender queues
before its packets are taken leave sealed together, one frame and one nonce for all of them;
one message alone still leaves as a DATA frame."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.channels import T, World, dropped, frames_of, make_world, pump
from troth.channel import ChannelSettings, ChannelState, Received, SecureChannel
from troth.channel.noise import CipherState
from troth.channel.payloads import BATCH_ITEM, HEADER, MIN_BATCH_MESSAGE, Kind, batch_items, unpack
from troth.crypto import AeadAlgorithm
from troth.errors import ChannelError, ChannelFailure


def _pair(
    world: World, settings: ChannelSettings | None = None
) -> tuple[SecureChannel, SecureChannel]:
    a = SecureChannel.initiate(
        me=world.alice.me((world.credential(world.alice),)), trust=world.trust(), settings=settings
    )
    b = SecureChannel(
        initiator=False,
        me=world.bob.me((world.credential(world.bob),)),
        trust=world.trust(),
        settings=settings,
    )
    pump(a, b)
    assert a.state is ChannelState.OPEN
    assert b.state is ChannelState.OPEN
    return a, b


def _received(events: Sequence[object]) -> list[bytes]:
    return [bytes(e.payload) for e in events if isinstance(e, Received)]


def test_messages_taken_together_leave_as_one_batch_frame_and_arrive_in_order() -> None:
    a, b = _pair(make_world())
    sent = [b"message %d, as long as a routed message is" % n for n in range(5)]
    for message in sent:
        a.send(message)
    packets = a.outgoing()
    assert len(frames_of(packets)) == 1  # one frame, one nonce
    events = [e for p in packets for e in b.receive(p, T + 1)]
    assert _received(events) == sent
    # replayed, the whole batch is refused: no message of it is delivered twice
    replayed = [e for p in packets for e in b.receive(p, T + 1)]
    assert _received(replayed) == []
    assert dropped(replayed)


def test_a_lone_message_still_leaves_as_a_data_frame() -> None:
    a, b = _pair(make_world())
    a.send(b"alone")
    packets = a.outgoing()
    assert len(frames_of(packets)) == 1
    assert _received(b.receive(packets[0], T + 1)) == [b"alone"]


def test_order_kept_around_fragments_empty_messages_and_close() -> None:
    a, b = _pair(make_world())
    large = bytes(range(256)) * 400  # fragmented
    sent = [b"one", b"two", large, b"three", b"", b"four", b"five"]
    for message in sent:
        a.send(message)
    a.close()
    events = [e for p in a.outgoing() for e in b.receive(p, T + 1)]
    assert _received(events) == sent
    assert b.state is ChannelState.CLOSED


def test_queued_bytes_count_the_messages_held() -> None:
    a, _ = _pair(make_world())
    assert a.queued_bytes == 0
    assert not a.has_outgoing
    a.send(b"x" * 100)
    a.send(b"y" * 100)
    queued = a.queued_bytes
    assert a.has_outgoing
    assert queued >= 200
    assert sum(map(len, a.outgoing())) == queued  # what the packets will be, exactly


def test_a_batch_fills_frames_up_to_their_limit() -> None:
    a, b = _pair(make_world())
    sent = [bytes([n]) * 20_000 for n in range(7)]  # three fit one frame
    for message in sent:
        a.send(message)
    packets = a.outgoing()
    assert len(frames_of(packets)) == 3
    assert _received([e for p in packets for e in b.receive(p, T + 1)]) == sent


def test_padded_channels_do_not_batch() -> None:
    a, b = _pair(make_world(), ChannelSettings(padding=256))
    for n in range(3):
        a.send(b"m%d" % n)
    packets = a.outgoing()
    assert len(frames_of(packets)) == 3
    assert _received([e for p in packets for e in b.receive(p, T + 1)]) == [b"m0", b"m1", b"m2"]


ONE, TWO = b"1" * 31, b"2" * 31  # MIN_BATCH_MESSAGE bytes each


def _body(*items: bytes) -> memoryview:
    return memoryview(b"".join(items))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        BATCH_ITEM.pack(31) + ONE,  # one message: a DATA frame's
        BATCH_ITEM.pack(31) + ONE + BATCH_ITEM.pack(0),  # an empty item
        BATCH_ITEM.pack(31) + ONE + BATCH_ITEM.pack(3) + b"two",  # under MIN_BATCH_MESSAGE
        BATCH_ITEM.pack(31) + ONE + BATCH_ITEM.pack(32) + TWO,  # past the end
        BATCH_ITEM.pack(31) + ONE + BATCH_ITEM.pack(31) + TWO + b"\x00",  # a cut header
    ],
)
def test_malformed_batches_are_refused(body: bytes) -> None:
    with pytest.raises(ChannelError) as caught:
        batch_items(memoryview(body))
    assert caught.value.reason is ChannelFailure.PROTOCOL


def test_batch_items_are_views_of_the_body() -> None:
    one, two = b"1" * MIN_BATCH_MESSAGE, b"2" * (MIN_BATCH_MESSAGE + 1)
    body = _body(BATCH_ITEM.pack(len(one)), one, BATCH_ITEM.pack(len(two)), two)
    assert [bytes(m) for m in batch_items(body)] == [one, two]
    plain = HEADER.pack(int(Kind.BATCH), len(body)) + bytes(body)
    kind, inner = unpack(plain)
    assert kind is Kind.BATCH
    assert bytes(inner) == bytes(body)


VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "channel" / "keepalive_vectors.json").read_text()
)


@pytest.mark.parametrize("algorithm", list(AeadAlgorithm))
def test_the_stored_batch_frame_reads_back(algorithm: AeadAlgorithm) -> None:
    vector = VECTORS["batch"]
    frame = bytes.fromhex(vector[f"frame_{algorithm.value}"])
    cipher = CipherState(algorithm, bytes.fromhex(VECTORS["key"]))
    plaintext = cipher.decrypt_at(VECTORS["nonce"], b"", frame[9:])
    assert plaintext.hex() == vector["plaintext"]
    kind, body = unpack(plaintext)
    assert int(kind) == vector["kind"] == int(Kind.BATCH)
    assert [bytes(m).hex() for m in batch_items(body)] == vector["messages"]


def test_a_channel_seals_the_batch_of_the_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _pair(make_world())
    plains: list[bytes] = []
    seal = SecureChannel._seal_data

    def spy(self: SecureChannel, plain: bytes) -> bytearray:
        plains.append(bytes(plain))
        return seal(self, plain)

    monkeypatch.setattr(SecureChannel, "_seal_data", spy)
    messages = [bytes.fromhex(m) for m in VECTORS["batch"]["messages"]]
    for message in messages:
        a.send(message)
    packets = a.outgoing()
    assert [p.hex() for p in plains] == [VECTORS["batch"]["plaintext"]]
    assert _received([e for p in packets for e in b.receive(p, T + 1)]) == messages
