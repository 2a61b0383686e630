"""Review 54k, channels 1: open secure channels had no node-wide cap (issue 8).

Open channels peers opened were bounded per peer identity (64), per member (256, its delegates
included) and per source (256), but not per node: identities with no chain cost nothing on a
node that admits strangers (one that hosts an authority, to enrol them), so strangers from
many sources, each under its per-source share, held as many open channels (~17 KB each) as
they had sources, and the node's memory grew without a bound as sources multiplied. Now the
channels peers opened are capped for the node (`ChannelLimits.max_open_channels`,
`troth.limits.MAX_OPEN_CHANNELS`; `troth.node.channel_cap`): strangers hold at most three
quarters, the rest is kept for members; at the cap a newcomer takes the place of a stranger's
channel (of the network, then the source, holding the most), or, with none, is refused.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.channels import T
from tests.support.parties import make_channel_party
from tests.test_channel_manager import HUB, Net, Peer, echo, run, until
from tests.test_review53o_refuted import AdmitAnyone
from troth.errors import ChannelError, ChannelFailure, ConfigError
from troth.node.channel_cap import OpenChannels
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.routing import parse_route

BOUND = 8
"""The node-wide bound the hub is given on open channels peers opened (strangers: 6)."""


async def open_as_stranger(net: Net, peer: Peer) -> ChannelEnd:
    """A channel from `peer` as a fresh identity showing no chain (free to mint)."""
    who = make_channel_party(net.world.vault, now=T)
    return await peer.manager.open(parse_route(HUB), me=who.me(()))


def test_strangers_from_many_sources_hold_no_more_than_the_nodes_bound() -> None:
    """Ten sources, two channels each (their per-source limit), as fresh stranger identities:
    the hub holds at most BOUND open channels whatever the number of sources, strangers at
    most three quarters of it (each newcomer past it took the place of the oldest channel of
    the network holding the most, told with a CLOSE); a member then still opens a channel and
    gets an echo. Was a strict xfail (20 open) until the channel manager capped them."""

    async def test(net: Net) -> None:
        limits = ChannelLimits(max_channels_per_source=2, max_open_channels=BOUND)
        hub = await net.hub(limits=limits)
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())  # strangers admitted
        sources = [net.peer(f"10.6.{n}.1") for n in range(10)]
        ends = []
        for source in sources:
            for _ in range(2):
                end = await open_as_stranger(net, source)
                assert await echo(source, end, "held") == "held"
                ends.append(end)
        assert len(hub.manager.ends) <= BOUND, len(hub.manager.ends)
        assert len(hub.manager.ends) == BOUND - BOUND // 4
        assert hub.manager.counters.evicted_open == 20 - (BOUND - BOUND // 4)
        await until(lambda: sum(not end.channel.closed for end in ends) == 6)
        member = net.peer("10.0.0.9")
        end = await member.manager.open(parse_route(HUB))
        assert await echo(member, end, "member") == "member"

    run(test)


def test_at_the_cap_a_member_takes_a_strangers_place_and_members_alone_are_refused() -> None:
    """The strangers hold their six; members take the two places kept for them, then each
    further member takes a stranger's place; once members hold all eight, a ninth member and
    a stranger are both refused (`peer not allowed`), and the members' channels all answer."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_open_channels=BOUND))
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())
        strangers = [net.peer(f"10.7.{n}.1") for n in range(6)]
        for source in strangers:
            await open_as_stranger(net, source)
        members = [net.peer(f"10.0.1.{n}") for n in range(1, 10)]
        held = []
        for member in members[:BOUND]:
            end = await member.manager.open(parse_route(HUB))
            held.append((member, end))
        counters = hub.manager.counters
        assert (counters.evicted_open, len(hub.manager.ends)) == (6, BOUND)
        with pytest.raises(ChannelError) as caught:
            await members[BOUND].manager.open(parse_route(HUB))
        assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        with pytest.raises(ChannelError):
            await open_as_stranger(net, net.peer("10.8.0.1"))
        assert counters.refused_open == 2
        for member, end in held:
            assert await echo(member, end, "still") == "still"

    run(test)


def test_handshakes_finishing_together_hold_no_more_than_the_strangers_part() -> None:
    """Twelve strangers from twelve sources open at once (their messages 3 all pass the
    handshake's check of the cap before any channel is taken in): the places are taken as each
    channel is, so the hub still holds six, and every opener either got a channel the hub
    closed later or one it holds."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_open_channels=BOUND))
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())
        sources = [net.peer(f"10.9.{n}.1") for n in range(12)]
        opened = await asyncio.gather(*(open_as_stranger(net, p) for p in sources))
        await until(lambda: sum(not end.channel.closed for end in opened) == 6)
        assert len(hub.manager.ends) == BOUND - BOUND // 4
        assert hub.manager.counters.evicted_open == 6

    run(test)


def test_the_node_at_the_end_of_its_own_connection_keeps_its_place() -> None:
    """Node b (cap 4: strangers 3) made its connection to the hub. Strangers relayed to it
    through the hub hold the strangers' three; the hub's own channel to b, opened as an
    identity showing no chain (an anchor shows none), is not a stranger's there: it takes a
    kept place, and two more relayed strangers take only strangers' places, not the hub's."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        b = await net.relayed(hub, "b", limits=ChannelLimits(max_open_channels=4))
        b.manager.trust = lambda: net.world.trust(AdmitAnyone())
        relayed = parse_route(f"{HUB}/relay/b")

        async def relayed_stranger(host: str) -> ChannelEnd:
            peer = net.peer(host)
            who = make_channel_party(net.world.vault, now=T)
            return await peer.manager.open(relayed, me=who.me(()))

        for n in range(3):
            await relayed_stranger(f"10.6.{n}.1")
        (uplink,) = b.transport.connections()
        (at_hub,) = [c for c in hub.transport.connections() if c.other is uplink]
        who = make_channel_party(net.world.vault, now=T)
        own = await hub.manager.open((at_hub.address,), me=who.me(()))
        assert b.manager.counters.evicted_open == 0
        for n in range(3, 5):
            await relayed_stranger(f"10.6.{n}.1")
        assert b.manager.counters.evicted_open == 2
        assert await echo(hub, own, "kept") == "kept"
        assert not own.channel.closed

    run(test)


def test_the_network_holding_the_most_gives_way_then_its_largest_source() -> None:
    """Sans-IO: strangers' channels a..f (network n1: a, b from s1, c from s2; n2: d, e from s3;
    n3: f). A member's newcomer takes s1's oldest (n1 holds the most, s1 the most of it); a
    stranger from n2's s3 takes its own network's, its own source's oldest when among the
    most; a stranger from another source of n1, s1's."""
    cap: OpenChannels[str] = OpenChannels(8)  # strangers: 6
    for end, source, network in [
        ("a", "s1", "n1"),
        ("b", "s1", "n1"),
        ("c", "s2", "n1"),
        ("d", "s3", "n2"),
        ("e", "s3", "n2"),
        ("f", "s4", "n3"),
    ]:
        assert cap.place(stranger=True, source=source, network=network).victim is None
        cap.add(end, stranger=True, source=source, network=network)
    assert cap.place(stranger=False, source="m", network="m").victim is None  # the reserve
    full = cap.place(stranger=True, source="s9", network="n9")
    assert (full.admitted, full.victim) == (True, "a")
    cap.discard("a")
    cap.add("g", stranger=True, source="s3", network="n2")  # n2 holds 3 now, n1 2
    assert cap.place(stranger=True, source="s3", network="n2").victim == "d"
    assert cap.place(stranger=True, source="s5", network="n1").victim == "d"  # n2 the most
    cap.discard("g")
    cap.add("h", stranger=True, source="s6", network="n4")  # strangers at their 6 again
    assert cap.place(stranger=True, source="s5", network="n1").victim == "b"  # n1, s1 (2 each)
    cap.add("m1", stranger=False, source="m", network="m")
    assert (len(cap), cap.strangers) == (BOUND - 1, 6)
    assert cap.place(stranger=False, source="m", network="m").victim is None  # a place left
    cap.add("m2", stranger=False, source="m", network="m")
    assert cap.place(stranger=False, source="m", network="m").victim == "b"


def test_the_cap_comes_from_the_environment_and_must_be_positive() -> None:
    limits = ChannelLimits.from_environment({"TROTH_CHANNELS_MAX_OPEN_CHANNELS": "32"})
    assert limits.max_open_channels == 32
    assert ChannelLimits().max_open_channels == 4096
    with pytest.raises(ValueError, match="max_open_channels"):
        ChannelLimits(max_open_channels=0)
    with pytest.raises(ConfigError):
        ChannelLimits.from_environment({"TROTH_CHANNELS_MAX_OPEN_CHANNELS": "0"})
