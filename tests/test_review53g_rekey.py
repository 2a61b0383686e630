"""Review 53g, rekey 1: a receiver that missed a whole epoch of frames could decrypt nothing its
peer sent ever after.

Epoch e of the nonce space uses REKEY^e(k) (docs/protocols.md, "Secure channel"). The receiver
held the current epoch's key and derived only the next one, so a frame two or more epochs
ahead of the last one that authenticated was dropped (`undecryptable`, "no key for epoch").
Frames are lost on the way by design (a stalled peer's, a congested hop's: the channel sealed
them, the first hop dropped them, troth.node.channel_ends `flush`): once a whole epoch of them
(65,536 frames by default) was lost, every later frame the peer sent was dropped, its PINGs
included, until the keepalive timeout closed the channel. The receiver now derives keys up to
`MAX_EPOCHS_AHEAD` epochs ahead (each derived once, kept until a frame authenticates); junk
naming an epoch past that is dropped without deriving anything.
"""

from __future__ import annotations

from tests.support.channels import T, World, dropped, make_world, packet, pump
from troth.channel import ChannelSettings, ChannelState, DropReason, Received, SecureChannel
from troth.channel.packets import TRANSPORT_FRAME
from troth.channel.rekey import MAX_EPOCHS_AHEAD

INTERVAL = 64  # the least a replay window of 64 allows (the rekey interval is at least it)
SETTINGS = ChannelSettings(replay_window=INTERVAL, rekey_interval=INTERVAL)


def _open_pair(world: World) -> tuple[SecureChannel, SecureChannel]:
    a, b = world.initiator(SETTINGS), world.responder(SETTINGS)
    pump(a, b)
    assert a.state is b.state is ChannelState.OPEN
    return a, b


def _lose(a: SecureChannel, frames: int) -> None:
    """`a` sends `frames` transport frames that never arrive (a stalled path dropped them)."""
    for n in range(frames):
        a.send(b"lost %d" % n)
        a.outgoing()


def test_frames_after_a_whole_lost_epoch_still_arrive() -> None:
    a, b = _open_pair(make_world())
    a.send(b"before")
    assert pump(a, b)[1] == [Received(b"before")]
    _lose(a, 3 * INTERVAL)  # three epochs of frames lost on the way
    a.send(b"after")
    assert pump(a, b)[1] == [Received(b"after")]
    # and late frames of the epoch before the new one, inside the window, still decrypt
    late = []
    for n in range(INTERVAL):
        a.send(b"next %d" % n)
        late += a.outgoing()
    for each in reversed(late):  # the frames straddle an epoch boundary, newest first
        b.receive(each, T + 1)
    assert b.state is ChannelState.OPEN
    assert b.drops == {}


def test_a_peer_past_the_epochs_a_receiver_derives_is_dropped_not_fatal() -> None:
    a, b = _open_pair(make_world())
    _lose(a, (MAX_EPOCHS_AHEAD + 1) * INTERVAL)
    a.send(b"too far ahead")
    [far] = a.outgoing()
    assert dropped(b.receive(far, T + 1)) == [DropReason.UNDECRYPTABLE]
    assert b.state is ChannelState.OPEN
    b.send(b"the other way works")
    assert pump(a, b)[0] == [Received(b"the other way works")]


def test_junk_naming_a_far_epoch_changes_nothing() -> None:
    """A forged frame naming each epoch ahead derives each key once and commits none: the
    peer's next genuine frame (of the current epoch) still decrypts."""
    a, b = _open_pair(make_world())
    for epoch in range(1, MAX_EPOCHS_AHEAD + 3):
        nonce = epoch * INTERVAL
        junk = packet(bytes((TRANSPORT_FRAME,)) + nonce.to_bytes(8, "big") + bytes(32))
        assert dropped(b.receive(junk, T + 1)) == [DropReason.UNDECRYPTABLE]
    a.send(b"genuine")
    assert pump(a, b)[1] == [Received(b"genuine")]


def test_keys_derived_for_junk_are_the_ones_the_peer_then_uses() -> None:
    """Junk naming epoch 3 derives the keys of epochs 1-3 ahead of time; the peer's genuine
    frames then walk epochs 1 to 5 one frame each (the derived keys shift as each commits) and,
    after three lost epochs, on again: every one decrypts."""
    a, b = _open_pair(make_world())
    junk = packet(bytes((TRANSPORT_FRAME,)) + (3 * INTERVAL).to_bytes(8, "big") + bytes(32))
    assert dropped(b.receive(junk, T + 1)) == [DropReason.UNDECRYPTABLE]
    sent = 0  # the frames `a` sent: its next nonce
    for epoch in (1, 2, 3, 4, 5, 9):
        _lose(a, epoch * INTERVAL - sent)
        a.send(b"epoch %d" % epoch)
        assert pump(a, b)[1] == [Received(b"epoch %d" % epoch)]
        sent = epoch * INTERVAL + 1
    assert b.drops == {DropReason.UNDECRYPTABLE: 1}
