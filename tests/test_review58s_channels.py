"""Review 58s, channels 1 and 2.

Channels 1: a credential refresh (Established again) handled for a responder end
the node had already forgotten counted the channel against its member for good.

A packet's events are handled in order (`ChannelEnd.handle`); a Received message's delivery may
wait (its route awaits), and meanwhile the node may close the end (evicted at its cap, its
keepalive run out, a no-route notice, `troth channel close`): `_forget` drops every count. The
packet's Established (a refresh in the same packet, after the message) was still handled:
`_on_established` found the end in no table, so it counted it again, against the members at
the roots of the refreshed chains (`MemberChannels.add`, `_users`, a reassembly budget's
holders), and no close would ever take it out (the end is gone). Each such packet leaked one of
the member's channels until the node restarted: a delegate of alice could lock her (and every
other delegate of hers) out of the node for good, even after she revoked it.

Channels 2: a channel counts against the members at the roots of the chains it showed as it
opened, for as long as it is open (review 53o, in-band 1: a refresh does not move it), and the
re-check of open channels (`check_peers`: revocation, expiry) sees only the chains it shows
now. A delegate of alice and bob, its channel counted against both, showed bob's chain alone
(an in-band refresh): alice's delegation ending (expired, revoked) closed nothing, and the
channel held her place (a limit of 1: her delegates, herself, were all refused) for as long as
the delegate kept it alive."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from tests.support.channels import MEMBER, T
from tests.support.parties import ChannelParty, make_channel_party
from tests.test_channel_manager import Net, echo, run, until
from tests.test_review43a_channels import delegate_of_alice, open_as
from tests.test_review58i_channels import delegate_of
from troth.credentials import CredentialChain
from troth.credentials.issue import delegate
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.routing import Address, RoutedMessage


def _responder(hub_ends: Mapping[Address, ChannelEnd]) -> ChannelEnd:
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


def _chain_of(net: Net, member: ChannelParty, who: ChannelParty, ttl: int) -> bytes:
    """A chain delegating from `member` to `who`, for `ttl` seconds from T."""
    root = CredentialChain.decode(net.world.credential(member))
    return delegate(
        member.party.signer,
        root,
        subject=who.identifier,
        attributes=MEMBER,
        now=T,
        ttl=ttl,
        purpose="a delegate",
    ).encode()


def test_a_channel_no_longer_showing_a_members_chain_does_not_hold_its_place() -> None:
    """Channels 2. Per member 1. Mallory holds chains from alice (for 60 s) and from bob (for
    an hour) and opens a channel showing both: it counts against alice and bob. It then shows
    bob's alone (an in-band refresh). Alice's delegation runs out (or she revokes it: the
    re-check of open channels sees only what a channel shows now): the channel stays open, and
    a new delegate of alice must find her place free (it was refused `peer-not-allowed` for as
    long as mallory kept the channel alive: her delegation's end freed nothing)."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_channels_per_member=1))
        alice, bob = net.world.alice, net.world.bob
        mallory = net.peer("10.58.20.1")
        who = make_channel_party(net.world.vault, now=T)
        hers, his = _chain_of(net, alice, who, 60), _chain_of(net, bob, who, 3600)
        end = await open_as(mallory, who.me((hers, his)))
        assert await echo(mallory, end, "held") == "held"
        await end.present((his,))
        held = _responder(hub.manager.ends)
        await until(lambda: held.peer is not None and len(held.peer.credentials) == 1)
        net.clock.now = T + 120  # alice's delegation over
        await hub.manager.check_peers()
        again = net.peer("10.58.20.2")
        fresh = await open_as(again, delegate_of(net, alice))  # (its chain: T + 600)
        assert await echo(again, fresh, "her place") == "her place"

    run(test)
