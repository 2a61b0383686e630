"""Review 65e, the channel protocol core (sans-IO).

channels 1: a local failure while a packet was read escaped `SecureChannel.receive` as a
non-channel error and left the channel half way through its handshake. The static key is used
by handle (`VaultDhKey`): a rotation in another process deletes it (`troth identity rotate`
beside the running node, review 48l), and a handshake already under way then read its next
message with a key the vault no longer held. `receive` raised `KeyNotFound` (a `VaultError`,
not the one typed channel error): a responder given a message 1 stayed AWAITING_MESSAGE_1 (its
host's "message 1 was unusable" clean-up never ran: the end waited for its handshake timer),
and an initiator given message 2 kept the copy of its handshake that had read it, failed, so
every later message 2 was dropped ("handshake already failed") and the channel, never closed,
waited the same 10 s. Likewise a trust callback that failed (the node's store behind `known`,
`observe`, `vouch`) while message 3 was verified: the responder stayed AWAITING_MESSAGE_3
and the initiator, told nothing, waited for an ACCEPTED that would never come (a refused
message 3 gets an authenticated CLOSE, review 56x, channel 2). Now any other library failure
(`TrothError`) while a frame is read closes the channel (a Closed event, HANDSHAKE_FAILED while
handshaking, PEER_INVALID at a credential refresh), the responder telling the initiator with a
CLOSE whose detail names no local error text.

channels 2: the detail of a peer's CLOSE frame (text the peer chose) came back as it was sent,
control characters and all, in the Closed event and the `ChannelError` a node's `open()`
raises with it; a link that failed logs that error (`link %s: attempt %d failed: %s`), so a
peer's newline forged a line of the node's log. It is now quoted as one line
(`one_line_text`, as every text a peer gives: review 54v, errors 6).
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.support.channels import T, World, closed, dropped, make_world, pump
from troth.channel import ChannelState, Closed, DropReason, VerifiedPeer
from troth.errors import ChannelFailure, StorageError


@pytest.fixture
def world() -> World:
    return make_world()


def test_a_responder_whose_channel_key_is_gone_closes_on_message_1(world: World) -> None:
    a, b = world.initiator(), world.responder()
    message_1 = a.outgoing()
    world.vault.delete(world.bob.channel_key)  # a rotation in another process deleted it
    events = b.receive(message_1[0], T + 1)
    assert closed(events).reason is ChannelFailure.HANDSHAKE_FAILED
    assert "KeyNotFound" in closed(events).detail
    assert b.state is ChannelState.CLOSED
    assert not b.has_outgoing
    assert dropped(b.receive(message_1[0], T + 1)) == [DropReason.UNEXPECTED]


def test_an_initiator_whose_channel_key_is_gone_closes_on_message_2(world: World) -> None:
    a, b = world.initiator(), world.responder()
    for packet in a.outgoing():
        b.receive(packet, T + 1)
    message_2 = b.outgoing()
    world.vault.delete(world.alice.channel_key)
    events = a.receive(message_2[0], T + 1)
    assert closed(events).reason is ChannelFailure.HANDSHAKE_FAILED
    assert a.state is ChannelState.CLOSED
    assert not a.has_outgoing  # no message 3 made with half a handshake
    assert dropped(a.receive(message_2[0], T + 1)) == [DropReason.UNEXPECTED]


def test_a_store_failing_at_message_3_closes_both_ends(world: World) -> None:
    def failing_store(peer: VerifiedPeer) -> None:
        raise StorageError("database is locked")

    trust = dataclasses.replace(world.trust(), observe=failing_store)
    a, b = world.initiator(), world.responder(trust=trust)
    seen_a, seen_b = pump(a, b)
    assert closed(seen_b).reason is ChannelFailure.HANDSHAKE_FAILED
    assert "database is locked" in closed(seen_b).detail  # the host is told what failed
    assert b.state is ChannelState.CLOSED
    told = closed(seen_a)  # the initiator is told, not left awaiting ACCEPTED
    assert told.by_peer
    assert told.reason is ChannelFailure.HANDSHAKE_FAILED
    assert "database" not in told.detail  # no local error text on the wire
    assert a.state is ChannelState.CLOSED


def test_a_store_failing_at_a_refresh_closes_the_channel(world: World) -> None:
    calls = 0

    def store(peer: VerifiedPeer) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:  # admitted at the handshake; failing at the refresh
            raise StorageError("disk I/O error")

    a, b = (
        world.initiator(),
        world.responder(trust=dataclasses.replace(world.trust(), observe=store)),
    )
    pump(a, b)
    assert a.state is ChannelState.OPEN
    assert b.state is ChannelState.OPEN
    a.send_credentials((world.credential(world.alice),))
    events = [e for p in a.outgoing() for e in b.receive(p, T + 2)]
    found = [e for e in events if isinstance(e, Closed)]
    assert found
    assert found[0].reason is ChannelFailure.PEER_INVALID
    assert b.closed


def test_a_peers_close_detail_is_one_line_of_text(world: World) -> None:
    """channels 2: the detail of a peer's CLOSE frame is text the peer chose; it reaches the
    node's log lines (a link's failure: `link %s: attempt %d failed: %s`) and the error
    `open()` raises, so it is quoted as one line, control characters escaped (as every text a
    peer gives, review 54v, errors 6): a newline in it forged a line of the node's log."""
    a, b = world.initiator(), world.responder()
    pump(a, b)
    b.close(ChannelFailure.NORMAL, "bye\n2026-12-06 ERROR troth.node: forged\x1b[2J\r")
    event = closed([e for p in b.outgoing() for e in a.receive(p, T + 2)])
    assert event.by_peer
    assert event.detail == "bye\\n2026-12-06 ERROR troth.node: forged\\x1b[2J\\r"
