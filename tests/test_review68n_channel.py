"""Review 68n (channel: 68g's end of the nonce space, batching) findings.

channel 1 (low: the end of a 2^64-frame nonce space): a message `send` held (MIN_BATCH_MESSAGE
   bytes or more, sealed when the packets are taken) could be left with no nonce, and was
   then dropped without its sender being told: `send` refused only when no nonce was left
   before it, so a second held message that pushed the first one out (sealed with the last
   nonce) was accepted, and `outgoing()` closed the channel on it silently (no error, no
   Closed event: the node's `flush` sent the rest and the end never heard why its channel had
   closed). And a frame the channel emitted while messages were held (a keepalive PING, a
   PONG, a CLOSE, credentials, a small message) was sealed before them, so it took the last
   nonce and the messages sent earlier were the ones lost. Now every frame seals the held
   messages first (they are older: the nonces follow the order of the packets), and `send`
   holds a message only when a nonce is left for it (else NONCE_EXHAUSTED to its sender,
   the messages held before it still sealed and sent).
"""

from __future__ import annotations

import pytest

from tests.support.channels import closed, frames_of, make_world, pump
from tests.test_review68g_channel import _at_the_end
from troth.channel import SecureChannel
from troth.channel.noise import MAX_NONCE, TAGLEN
from troth.channel.payloads import HEADER
from troth.channel.secure import _NONCE
from troth.errors import ChannelError, ChannelFailure

BIG = 40_000  # held by `send` (>= MIN_BATCH_MESSAGE); two do not fit one frame


def _open_pair() -> tuple[SecureChannel, SecureChannel]:
    world = make_world()
    alice, bob = world.initiator(), world.responder()
    pump(alice, bob)
    return alice, bob


def _sealed(packets: list[bytes | bytearray]) -> list[tuple[int, int]]:
    """The (nonce, length) of each transport frame of `packets` (the peer holds no key of
    the epoch `_at_the_end` moved to: what was sealed is read off the frames)."""
    return [(_NONCE.unpack_from(f, 1)[0], len(f)) for f in frames_of(packets)]


HELD = [(MAX_NONCE - 1, 1 + _NONCE.size + HEADER.size + BIG + TAGLEN)]  # held, the last nonce


def test_a_held_message_left_without_a_nonce_is_refused_to_its_sender() -> None:
    alice, _ = _open_pair()
    _at_the_end(alice, 1)
    alice.send(b"a" * BIG)  # held: the last nonce is its
    with pytest.raises(ChannelError) as refused:
        alice.send(b"b" * BIG)  # seals the first with the last nonce: none left for it
    assert refused.value.reason is ChannelFailure.NONCE_EXHAUSTED
    assert alice.closed
    assert _sealed(alice.outgoing()) == HELD  # the first still goes


@pytest.mark.parametrize("frame", ["ping", "small", "close", "credentials"])
def test_a_frame_emitted_after_a_held_message_does_not_take_its_nonce(frame: str) -> None:
    alice, _ = _open_pair()
    _at_the_end(alice, 1)
    alice.send(b"a" * BIG)  # held: the last nonce is its
    if frame == "ping":
        events = alice.keepalive(0.0) + alice.keepalive(alice.settings.keepalive_interval)
        assert closed(events).reason is ChannelFailure.NONCE_EXHAUSTED
    elif frame == "small":
        with pytest.raises(ChannelError) as refused:
            alice.send(b"b")
        assert refused.value.reason is ChannelFailure.NONCE_EXHAUSTED
    elif frame == "close":
        alice.close()
    else:
        with pytest.raises(ChannelError) as refused:
            alice.send_credentials(())
        assert refused.value.reason is ChannelFailure.NONCE_EXHAUSTED
    assert alice.closed
    assert _sealed(alice.outgoing()) == HELD  # sent before it: it goes
