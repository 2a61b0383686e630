"""Review 54r, channels 1: the node-wide cap on open channels was not split between
authorities (docs/protocols.md, "Limits on a node", "Shares of node-wide pools").

The cap (review 54k) kept a quarter for members and let strangers' channels give way to them,
but members of all authorities drew on the same places: an authority mints members for free
(tickets), so on a node trusting several, one authority's members filled the cap (the kept
quarter and every stranger's place besides) and a member of any other authority was then
refused a channel. Now at the cap a member of an authority under its share of the cap (the
share rule of the other node-wide pools, `troth.node.shares`) takes the place of a channel of
the authority holding the most over its share (of its source holding the most, the oldest).
"""

from __future__ import annotations

import pytest

from tests.support.channels import MEMBER, T
from tests.support.parties import Party, make_channel_party, make_party, verified_feed
from tests.test_channel_manager import HUB, Net, Peer, echo, run, until
from tests.test_review53o_refuted import AdmitAnyone
from troth.channel import ChannelTrust
from troth.credentials import ChainVerifier, CredentialChain, TrustPolicy, issue_credential
from troth.errors import ChannelError, ChannelFailure
from troth.node.channel_cap import OpenChannels
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.node.shares import LOCAL
from troth.routing import parse_route

CAP = 12
"""The hub's cap on open channels peers opened in the test over the in-memory transport; the
hub trusting two authorities, each one's share is 12 // (2 + 2) = 3 (4 with one trusted)."""
BOUND = 8
"""The sans-IO cap on open channels peers opened; trusting two authorities, each one's share is
8 // (2 + 2) = 2 (the strangers and the local callers hold the other two shares)."""


def trust_both(net: Net, other: Party) -> ChannelTrust:
    """The hub's trust: the world's authority (X) and `other` (Y), anyone admitted."""
    feeds = {
        net.world.authority.identifier: net.world.feed,
        other.identifier: verified_feed(other, now=T),
    }
    return ChannelTrust(
        policy=AdmitAnyone(),
        verifier=ChainVerifier(TrustPolicy(frozenset(feeds), max_feed_staleness=10**6)),
        feeds=lambda: feeds,
    )


async def open_as_member_of(net: Net, authority: Party, peer: Peer) -> ChannelEnd:
    """A channel from `peer` as a fresh member of `authority` (free to mint: a ticket)."""
    who = make_channel_party(net.world.vault, now=T)
    signed = issue_credential(
        authority.signer, subject=who.identifier, attributes=MEMBER, now=T, ttl=3600, depth=1
    )
    chain = CredentialChain((signed,), (authority.identity.history,)).encode()
    return await peer.manager.open(parse_route(HUB), me=who.me((chain,)))


def test_one_authoritys_members_fill_the_cap_and_another_authoritys_member_still_opens() -> None:
    """Authority X's members, from twelve sources, fill the hub's whole cap (12: no stranger's
    channel to give way); members of authority Y then open channels and get echoes: for each,
    one of X's channels gave way, told with a CLOSE, until Y holds its share (12 // (2 + 2):
    two authorities trusted) and a fourth is refused. Was a strict xfail (Y's first member
    refused `peer not allowed`) until the cap split its places by authority."""

    async def test(net: Net) -> None:
        other = make_party(net.world.vault, now=T)
        hub = await net.hub(limits=ChannelLimits(max_open_channels=CAP))
        hub.manager.trust = lambda: trust_both(net, other)
        hub.manager.trusted = lambda: 2
        held = []
        for n in range(CAP):
            peer = net.peer(f"10.6.{n}.1")
            end = await open_as_member_of(net, net.world.authority, peer)
            assert await echo(peer, end, "x") == "x"
            held.append(end)
        assert len(hub.manager.ends) == CAP
        ys = [net.peer(f"10.7.{n}.1") for n in range(4)]
        for y in ys[:3]:
            end = await open_as_member_of(net, other, y)
            assert await echo(y, end, "y") == "y"
        assert hub.manager.counters.evicted_open == 3
        await until(lambda: sum(not end.channel.closed for end in held) == CAP - 3)
        with pytest.raises(ChannelError) as caught:
            await open_as_member_of(net, other, ys[3])
        assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        assert len(hub.manager.ends) == CAP

    run(test)


def test_the_authority_most_over_its_share_gives_way_and_one_within_its_share_is_kept() -> None:
    """Sans-IO (shares of 2 with two authorities trusted): X holds 4 (two from s1), Y 2, the
    local callers 2. A member of Z (a third authority, holding none) takes X's place — s1's
    oldest; a member of Y, at its share, is refused; so is a newcomer counting against no
    authority; the local callers' channels never give way. Was a strict xfail (no share per
    authority) until the cap kept one."""
    cap: OpenChannels[str] = OpenChannels(BOUND, lambda: 2)
    x, y, z = frozenset({b"x"}), frozenset({b"y"}), frozenset({b"z"})
    for end, source, authorities in [
        ("l1", "local", frozenset({LOCAL})),
        ("x1", "s2", x),
        ("x2", "s1", x),
        ("x3", "s1", x),
        ("x4", "s3", x),
        ("y1", "s4", y),
        ("y2", "s5", y),
        ("l2", "local", frozenset({LOCAL})),
    ]:
        place = cap.place(stranger=False, source=source, network=source, authorities=authorities)
        assert (place.admitted, place.victim) == (True, None)
        cap.add(end, stranger=False, source=source, network=source, authorities=authorities)
    newcomer = cap.place(stranger=False, source="s9", network="s9", authorities=z)
    assert (newcomer.admitted, newcomer.victim) == (True, "x2")
    assert not cap.place(stranger=False, source="s9", network="s9", authorities=y).admitted
    assert not cap.place(stranger=False, source="s9", network="s9").admitted
    cap.discard("x2")
    cap.add("z1", stranger=False, source="s9", network="s9", authorities=z)
    cap.discard("x3")
    cap.add("z2", stranger=False, source="s9", network="s9", authorities=z)
    # X holds 2 now (its share), Z 2: a third Z is refused, and nothing of X's gives way
    assert not cap.place(stranger=False, source="s8", network="s8", authorities=z).admitted
    local = cap.place(stranger=False, source="local", network="local", authorities=LOCALS)
    assert not local.admitted  # the local callers hold their share: nobody is over theirs


LOCALS = frozenset({LOCAL})


def test_members_filling_the_cap_leave_the_node_its_own_connections_place() -> None:
    """Node b (cap 4, one authority trusted: shares of 4 // 3 = 1) made its connection to the
    hub. Members of X relayed to it through the hub hold all four places; the hub's own channel
    to b (counting against the local callers' share, which holds none) takes the place of one
    of X's, and a further X member is then refused (X holds 3, past its share) rather than
    taking the hub's place, which still answers."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        b = await net.relayed(hub, "b", limits=ChannelLimits(max_open_channels=4))
        relayed = parse_route(f"{HUB}/relay/b")
        for n in range(4):
            await net.peer(f"10.6.{n}.1").manager.open(relayed)
        (uplink,) = b.transport.connections()
        (at_hub,) = [c for c in hub.transport.connections() if c.other is uplink]
        own = await hub.manager.open((at_hub.address,))
        assert b.manager.counters.evicted_open == 1
        with pytest.raises(ChannelError) as caught:
            await net.peer("10.6.9.1").manager.open(relayed)
        assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        assert await echo(hub, own, "kept") == "kept"

    run(test)
