"""Review 53g: attacks on layer 3's hostile-load and channel-integrity promises (issue 8,
section 5) that the code already met, each a passing test.

- Sender and receiver limits agree: the largest message a channel lets its sender send (the
  routed header and the payload together at `max_message`), at any padding, is reassembled by
  a receiver whose reassembly draws on a node's default per-member budget, never closed
  `too large` (every fragment holds its whole decrypted frame against the bounds).
- A rekey storm: an authenticated peer whose every frame names the next epoch (or jumps as far
  as a receiver derives, since rekey 1: tests/test_review53g_rekey.py) costs the receiver a
  derivation a frame, and the channel stays open; a frame replayed from an epoch the receiver
  has moved past is dropped, never decrypted.
- Junk between genuine frames at every epoch boundary changes nothing: each genuine frame is
  read, each junk frame dropped and counted, and the channel never closes.
- A replayed handshake (message 1 and message 3 captured) opens nothing: the replayed message
  3 does not decrypt under the new end's ephemeral key.
"""

from __future__ import annotations

import pytest

from tests.support.channels import T, dropped, make_world, packet, pump
from troth import limits
from troth.channel import (
    ChannelSettings,
    ChannelState,
    DropReason,
    ReassemblyBudget,
    Received,
    SecureChannel,
)
from troth.channel.packets import TRANSPORT_FRAME
from troth.channel.rekey import MAX_EPOCHS_AHEAD
from troth.channel.secure import MAX_PADDING
from troth.node.channel_limits import ChannelLimits

INTERVAL = 64


def _open_pair(settings: ChannelSettings) -> tuple[SecureChannel, SecureChannel]:
    world = make_world()
    a, b = world.initiator(settings), world.responder(settings)
    pump(a, b)
    assert a.state is b.state is ChannelState.OPEN
    return a, b


@pytest.mark.parametrize("padding", [0, 1000, MAX_PADDING])
def test_the_largest_message_a_sender_may_send_is_reassembled_at_any_padding(
    padding: int,
) -> None:
    a, b = _open_pair(ChannelSettings(padding=padding))
    assert (
        b.share_reassembly_budget(ReassemblyBudget(ChannelLimits().max_reassembly_per_peer)) is None
    )
    prefix = b"h" * limits.MAX_ROUTE_HEADER_BYTES  # a routed header, the largest
    payload = bytes(range(256)) * ((limits.MAX_APPLICATION_MESSAGE - len(prefix)) // 256)
    payload += b"p" * (limits.MAX_APPLICATION_MESSAGE - len(prefix) - len(payload))
    a.send(payload, prefix)
    events = [e for p in a.outgoing() for e in b.receive(p, T + 1)]
    assert len(events) == 1, events[:3]
    assert isinstance(events[0], Received)
    assert bytes(events[0].payload) == prefix + payload
    assert b.state is ChannelState.OPEN
    assert b.reassembling == 0
    assert not b.drops


def test_a_rekey_storm_keeps_the_channel_open_and_replays_stay_out() -> None:
    a, b = _open_pair(ChannelSettings(replay_window=INTERVAL, rekey_interval=INTERVAL))
    first_packets = []
    for jump in [1] * 100 + [MAX_EPOCHS_AHEAD] * 20:  # each frame in a new epoch
        a._next_nonce += jump * INTERVAL - 1  # (the hostile sender picks its nonces)
        a.send(b"frame %d" % a._next_nonce)
        sent = a.outgoing()
        first_packets += sent
        assert [e for p in sent for e in b.receive(p, T + 1)] == [
            Received(b"frame %d" % (a._next_nonce - 1))
        ]
    for old in first_packets[:-2]:  # the epochs it moved past: below the window
        assert dropped(b.receive(old, T + 1)) == [DropReason.REPLAY]
    assert b.state is ChannelState.OPEN


def test_junk_at_every_epoch_boundary_closes_nothing() -> None:
    a, b = _open_pair(ChannelSettings(replay_window=INTERVAL, rekey_interval=INTERVAL))
    received = 0
    for n in range(6 * INTERVAL):
        nonce = n + 1  # a forged frame naming the next nonce, before the genuine one
        junk = packet(bytes((TRANSPORT_FRAME,)) + nonce.to_bytes(8, "big") + bytes(40))
        b.receive(junk, T + 1)
        a.send(b"%d" % n)
        received += sum(isinstance(e, Received) for p in a.outgoing() for e in b.receive(p, T))
    assert received == 6 * INTERVAL
    assert b.state is ChannelState.OPEN
    assert b.drops == {DropReason.UNDECRYPTABLE: 6 * INTERVAL}


def test_a_replayed_handshake_opens_nothing() -> None:
    """A captured message 1 and message 3, replayed to the responder: message 1 makes a new
    half-open end (answered with a new ephemeral key), and the old message 3 does not
    decrypt under it: dropped, the end still waiting (its handshake timeout ends it)."""
    world = make_world()
    a, b = world.initiator(), world.responder()
    (message_1,) = a.outgoing()
    b.receive(message_1, T + 1)
    for message_2 in b.outgoing():
        a.receive(message_2, T + 1)
    (message_3,) = a.outgoing()
    b.receive(message_3, T + 1)
    assert b.state is ChannelState.OPEN
    replayed = world.responder()
    assert replayed.receive(message_1, T + 2) == []
    assert replayed.state is ChannelState.AWAITING_MESSAGE_3
    assert dropped(replayed.receive(message_3, T + 2)) == [DropReason.UNDECRYPTABLE]
    assert replayed.state is ChannelState.AWAITING_MESSAGE_3
    assert replayed.peer is None
