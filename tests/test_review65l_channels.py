"""Review 65l, the channels' re-checks after review 65e (channels 1: a local failure while a
frame is read closes the channel).

channels 1: `SecureChannel.check_peer` (continuous evaluation: revocation, expiry) caught only
`ChannelError`: a failure of this side's own while a peer was re-checked (the store behind
`trust` failed in `known`, `observe`, `vouch`: node.db locked by another process) escaped it,
and the node's `ChannelManager.check_peers`, which loops over every channel, stopped at that
channel: every channel after it went un-checked for the round, a revoked peer's included (it
kept its channel until a round in which no channel before it failed). A local failure at a
re-check now closes that channel as one at a credential refresh does (`peer invalid`, review
65e, channels 1: deny when in doubt; the Closed event names the local error, the peer's CLOSE
does not), and the round goes on to the next channel.

channels 2 (low): `one_line_text` (review 54v, errors 6; applied to a peer's CLOSE detail by
review 65e, channels 2) escaped C0, DEL and C1 but not U+2028 LINE SEPARATOR and U+2029
PARAGRAPH SEPARATOR, the two Unicode line breaks outside them: `str.splitlines` (and log
viewers that follow Unicode) broke a peer's text there, so a peer still made what reads as a
line of the node's own. They are escaped now (`\\u2028`, `\\u2029`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from tests.support.channels import T, World, closed, make_world, pump
from tests.test_channel_manager import Net, run, until
from tests.test_review43a_channels import open_as
from troth.channel import ChannelState, ChannelTrust, VerifiedPeer
from troth.errors import ChannelFailure, StorageError
from troth.identity import Identifier
from troth.node.channels import ChannelEnd
from troth.routing import Address


def _failing_store(peer: VerifiedPeer) -> None:
    raise StorageError("database is locked")


def _failing(trust: ChannelTrust) -> ChannelTrust:
    return dataclasses.replace(trust, observe=_failing_store)


def test_a_store_failing_at_a_recheck_closes_the_channel_not_the_caller() -> None:
    """channels 1: the re-check meets a failing store: `check_peer` returns the Closed event
    (peer invalid, the local error named for the host) instead of raising, and the peer is
    told with a CLOSE that names no local error text."""
    world: World = make_world()
    a, b = world.initiator(), world.responder()
    pump(a, b)
    assert b.state is ChannelState.OPEN
    b.trust = _failing(b.trust)
    events = b.check_peer(T + 2)
    event = closed(events)
    assert event.reason is ChannelFailure.PEER_INVALID
    assert not event.by_peer
    assert "database is locked" in event.detail
    assert b.closed
    told = closed([e for p in b.outgoing() for e in a.receive(p, T + 2)])
    assert told.by_peer
    assert told.reason is ChannelFailure.PEER_INVALID
    assert "database" not in told.detail
    assert b.check_peer(T + 3) == []  # closed once: a later round finds nothing to close


def test_a_peers_close_detail_holds_no_unicode_line_break() -> None:
    """channels 2: a peer's CLOSE detail with U+2028 and U+2029 in it is one line as Python
    splits lines (the separators escaped)."""
    world = make_world()
    a, b = world.initiator(), world.responder()
    pump(a, b)
    b.close(ChannelFailure.NORMAL, "bye\u20282026-12-06 ERROR troth.node: forged\u2029!")
    detail = closed([e for p in b.outgoing() for e in a.receive(p, T + 2)]).detail
    assert detail.splitlines() == [detail]
    assert detail == "bye\\u20282026-12-06 ERROR troth.node: forged\\u2029!"


def _responder_of(ends: Mapping[Address, ChannelEnd], identifier: Identifier) -> ChannelEnd:
    return next(
        e
        for e in ends.values()
        if not e.channel.initiator and e.peer is not None and e.peer.identifier == identifier
    )


def test_a_local_failure_at_one_recheck_does_not_stop_the_round() -> None:
    """channels 1: two channels at the hub, alice's first; her re-check meets a failing store,
    bob is no longer admitted (his channel's policy now refuses him). The round re-checks bob
    all the same and closes his channel (it went on past alice's failure before: bob kept his
    channel until a round in which no channel before his failed)."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        alice, bob = net.world.alice, net.world.bob
        first = await open_as(net.peer("10.65.1.1"), alice.me((net.world.credential(alice),)))
        await open_as(net.peer("10.65.1.2"), bob.me((net.world.credential(bob),)))
        ends = hub.manager.ends
        await until(lambda: sum(1 for e in ends.values() if e.peer is not None) == 2)
        held_a = _responder_of(ends, alice.identifier)
        held_b = _responder_of(ends, bob.identifier)
        held_a.channel.trust = _failing(held_a.channel.trust)
        held_b.channel.trust = dataclasses.replace(held_b.channel.trust, policy=_RefuseAll())
        await hub.manager.check_peers()
        assert held_b.channel.state is ChannelState.CLOSED
        assert held_b.channel.close_reason is ChannelFailure.PEER_NOT_ALLOWED
        assert held_a.channel.state is ChannelState.CLOSED  # deny when in doubt
        assert not hub.manager.ends
        await until(lambda: first.channel.closed)

    run(test)


class _RefuseAll:
    """A peer policy that admits no one (bob's admission taken back)."""

    def admit(self, peer: VerifiedPeer) -> bool:
        return False
