"""Review 58s, channels 1: a credential refresh (Established again) handled for a responder end
the node had already forgotten counted the channel against its member for good.

A packet's events are handled in order (`ChannelEnd.handle`); a Received message's delivery may
wait (its route awaits), and meanwhile the node may close the end (evicted at its cap, its
keepalive run out, a no-route notice, `troth channel close`): `_forget` drops every count. The
packet's Established (a refresh in the same packet, after the message) was still handled:
`_on_established` found the end in no table, so it counted it again, against the members at
the roots of the refreshed chains (`MemberChannels.add`, `_users`, a reassembly budget's
holders), and no close would ever take it out (the end is gone). Each such packet leaked one of
the member's channels until the node restarted: a delegate of alice could lock her (and every
other delegate of hers) out of the node for good, even after she revoked it."""

from __future__ import annotations

import asyncio

from tests.support.channels import T
from tests.test_channel_manager import Net, echo, run, until
from tests.test_review43a_channels import delegate_of_alice, open_as
from tests.test_review58i_channels import delegate_of
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.routing import RoutedMessage


def _responder(hub_ends: dict[object, ChannelEnd]) -> ChannelEnd:
    return next(e for e in hub_ends.values() if not e.channel.initiator)


def test_a_refresh_handled_after_the_end_was_forgotten_counts_nothing() -> None:
    """Per member 1. Alice's delegate opens a channel and sends one packet: a message, then a
    credential refresh. The hub's delivery of the message waits; meanwhile the hub closes the
    channel. Once the packet is handled, nothing is open: a new delegate of alice opens its
    channel (it was refused `peer-not-allowed`: the forgotten end counted against alice)."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_channels_per_member=1))
        mallory = net.peer("10.58.19.1")
        me = delegate_of_alice(net)
        end = await open_as(mallory, me)
        assert await echo(mallory, end, "held") == "held"
        held = _responder(hub.manager.ends)
        gate, waiting, done = asyncio.Event(), asyncio.Event(), asyncio.Event()
        deliver = held._deliver

        async def slow(e: ChannelEnd, payload: bytes | memoryview) -> None:
            waiting.set()
            await gate.wait()  # a delivery whose route waits
            await deliver(e, payload)
            done.set()

        held._deliver = slow
        end.channel.send(b"a message")
        end.channel.send_credentials(me.credentials)
        packets = end.channel.outgoing()
        assert len(packets) == 1  # the message, then the refresh, in one packet
        await mallory.router.route(RoutedMessage(end.peer_route, (end.dec,), packets[0]))
        await until(waiting.is_set)
        await held.close()  # the node closes it meanwhile (forgotten)
        gate.set()
        await until(done.is_set)
        await asyncio.sleep(0)  # the rest of the packet handled
        assert not hub.manager.ends
        assert hub.manager._members.most(frozenset({net.world.alice.identifier.digest})) == 0
        again = net.peer("10.58.19.2")
        fresh = await open_as(again, delegate_of(net, net.world.alice))
        assert await echo(again, fresh, "room again") == "room again"

    run(test)
