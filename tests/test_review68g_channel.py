"""Review 68g (channel: Noise conformance, nonce exhaustion). Findings:

channel 1: the end of the nonce space (Noise §5.1: n = 2^64-1 is reserved, never used to
   encrypt) was refused once, as a typed ChannelError NONCE_EXHAUSTED, but that refusal had
   already counted the reserved nonce as spent: every later send raised `struct.error` ("int too
   large to convert", no library error), `close()` raised it too, so the channel could never
   be closed (it stayed OPEN with its keys), and a PING from the peer made `receive()` raise
   instead of giving an event; a message `send` held (MIN_BATCH_MESSAGE bytes or more) made
   `outgoing()` raise. Now the reserved nonce is never spent: the first send that would need
   it is refused (ChannelError NONCE_EXHAUSTED) and closes the channel locally (no CLOSE
   frame: none can be sealed), every later one is refused as on any closed channel, `close()`
   goes through, and a PING, a PONG or a held message that cannot be sealed closes the channel
   (a Closed event from `receive` and `keepalive`; `outgoing()` returns what was sealed).
"""

from __future__ import annotations

import pytest

from tests.support.channels import closed, make_world, pump
from troth.channel import SecureChannel
from troth.channel.noise import MAX_NONCE
from troth.errors import ChannelError, ChannelFailure


def _at_the_end(channel: SecureChannel, spare: int) -> None:
    """Move an open channel's sending side to `spare` nonces before the reserved one (its
    key of that epoch is not derived: no frame is sealed with it in these tests)."""
    channel._next_nonce = MAX_NONCE - spare
    channel._send_epoch = channel._next_nonce // channel.settings.rekey_interval


def _open_pair() -> tuple[SecureChannel, SecureChannel]:
    world = make_world()
    alice, bob = world.initiator(), world.responder()
    pump(alice, bob)
    assert alice.state.value == bob.state.value == "open"
    return alice, bob


def test_a_send_at_the_end_of_the_nonce_space_is_refused_typed_and_closes_the_channel() -> None:
    alice, _ = _open_pair()
    _at_the_end(alice, 0)
    with pytest.raises(ChannelError) as refused:
        alice.send(b"x" * 5)
    assert refused.value.reason is ChannelFailure.NONCE_EXHAUSTED
    assert alice._next_nonce == MAX_NONCE  # the reserved nonce is never spent
    assert alice.closed
    assert alice.close_reason is ChannelFailure.NONCE_EXHAUSTED
    for _ in range(2):  # typed ever after (not struct.error)
        with pytest.raises(ChannelError):
            alice.send(b"x" * 5)
    assert alice.close().reason is ChannelFailure.NONCE_EXHAUSTED
    assert alice.outgoing() == []  # no CLOSE: it cannot be sealed


def test_close_at_the_end_of_the_nonce_space_closes_without_a_close_frame() -> None:
    alice, _ = _open_pair()
    _at_the_end(alice, 0)
    event = alice.close()
    assert alice.closed
    assert event.reason is ChannelFailure.NORMAL
    assert alice.outgoing() == []


def test_a_ping_at_the_end_of_the_nonce_space_closes_the_channel_with_an_event() -> None:
    alice, bob = _open_pair()
    _at_the_end(alice, 0)
    bob.probe(0.0)
    events = [e for packet in bob.outgoing() for e in alice.receive(packet, 0)]
    assert closed(events).reason is ChannelFailure.NONCE_EXHAUSTED
    assert alice.closed


def test_a_keepalive_ping_at_the_end_of_the_nonce_space_closes_the_channel() -> None:
    alice, _ = _open_pair()
    _at_the_end(alice, 0)
    assert alice.keepalive(0.0) == []  # (the first call notes the silence)
    events = alice.keepalive(alice.settings.keepalive_interval)
    assert closed(events).reason is ChannelFailure.NONCE_EXHAUSTED
    alice.probe(0.0)  # closed: nothing more, no error
    assert alice.closed
    assert alice.outgoing() == []


def test_a_held_message_at_the_end_of_the_nonce_space_never_raises_later() -> None:
    """A message of at least MIN_BATCH_MESSAGE bytes is held by `send` and sealed when the
    packets are taken: at the end of the nonce space `send` refuses it (typed), and one held
    while the last nonce went to another frame closes the channel at `outgoing()` instead of
    making it raise."""
    alice, _ = _open_pair()
    _at_the_end(alice, 0)
    with pytest.raises(ChannelError) as refused:
        alice.send(b"x" * 200)
    assert refused.value.reason is ChannelFailure.NONCE_EXHAUSTED
    assert alice.closed
    bob, _ = _open_pair()
    _at_the_end(bob, 1)
    bob.send(b"x" * 200)  # held
    bob._next_nonce = MAX_NONCE  # (the last nonce taken by another frame meanwhile)
    assert bob.outgoing() == []
    assert bob.closed
    assert bob.close_reason is ChannelFailure.NONCE_EXHAUSTED
