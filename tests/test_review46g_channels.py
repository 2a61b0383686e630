"""Review 46g: BATCH transport frames and unanswered-channel probes (docs/protocols.md,
"Batches" and "Unanswered channels"). Findings, each a strict xfail until fixed."""

from __future__ import annotations

from tests.support.channels import T, make_world, pump
from troth.channel import ChannelState, Closed, SecureChannel


def _pair() -> tuple[SecureChannel, SecureChannel]:
    world = make_world()
    a = SecureChannel.initiate(
        me=world.alice.me((world.credential(world.alice),)), trust=world.trust()
    )
    b = SecureChannel(
        initiator=False, me=world.bob.me((world.credential(world.bob),)), trust=world.trust()
    )
    pump(a, b)
    assert a.state is ChannelState.OPEN
    assert b.state is ChannelState.OPEN
    return a, b


def test_messages_held_when_the_peer_closes_are_dropped_not_raised() -> None:
    """Batches 1: `send` holds a one-frame message until `outgoing()` seals it; a CLOSE from
    the peer read in between (the node's `.dec` worker runs before the iteration's end flushes
    the `.enc` side) dropped the keys but kept the held messages, so the channel still said
    `has_outgoing`, counted them in `queued_bytes`, and `outgoing()` raised ChannelError "no
    transport keys" (to a sender past COALESCE_LIMIT, instead of the closed channel's usual
    RoutingError). A closed channel has nothing to send: its held messages are given up with
    it, as its reassemblies are.

    Was a strict xfail until `SecureChannel._closed` gave up the held messages."""
    a, b = _pair()
    a.send(b"one")
    a.send(b"two")
    b.close()
    events = [e for p in b.outgoing() for e in a.receive(p, T + 1)]
    assert any(isinstance(e, Closed) and e.by_peer for e in events)
    assert a.closed
    assert not a.has_outgoing
    assert a.queued_bytes == 0
    assert a.outgoing() == []
