"""Review 54o, channels 1: a stranger relayed to a node through the hub its own connection goes
to, sending with no return route of its own, counted as the node at the other end of that
connection (not a stranger) against the node's cap on open channels (review 54k).

`_own_link` took a message 1 whose return route is two hops long (the connection it came on,
and one more) as sent by the node at the other end of a connection this node made: its own
reply address. But a relay puts its connection to the sender in the route itself (review 29b,
sources 1: a tagged connection address), so a relayed sender that sends with an empty return
route arrives with two hops too, the second the relay's tagged connection to it. Such
strangers took the places kept for members and the node's own connections, and, counted as
no strangers, never gave way: from enough sources they held the whole cap, and the hub's own
channel (or a member's) was refused.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random

from tests.support.channels import T
from tests.support.parties import make_channel_party
from tests.test_channel_manager import HUB, Net, Peer, echo, run, until
from tests.test_review53o_refuted import AdmitAnyone
from troth.node.channel_cap import OpenChannels
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.node.shares import LOCAL
from troth.routing import Address, RoutedMessage, Source, parse_route


def no_return_route(peer: Peer) -> None:
    """`peer` sends every message with an empty return route and takes what comes back with
    no onward route as its channel's (as an attacker's own code reads its connection)."""
    route = peer.router.route
    replies: list[Address] = []

    async def routed(message: RoutedMessage, source: Source | None = None) -> None:
        if source is None and message.return_route:  # ours, going out: no way back named
            replies.append(message.return_route[0])
            message = RoutedMessage(message.onward, (), message.payload)
        elif source is not None and not message.onward and replies:  # back to our channel
            await route(RoutedMessage((replies[-1],), message.return_route, message.payload))
            return
        await route(message, source)

    peer.router.route = routed  # type: ignore[method-assign]


def test_a_stranger_relayed_with_no_return_route_is_a_stranger_at_the_cap() -> None:
    """Node b (cap 4: strangers 3) made its connection to the hub; four strangers from four
    sources, relayed to b through the hub with no return route of their own, hold at most the
    strangers' three places: the hub's own channel to b still takes the kept one."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        b = await net.relayed(hub, "b", limits=ChannelLimits(max_open_channels=4))
        b.manager.trust = lambda: net.world.trust(AdmitAnyone())
        relayed = parse_route(f"{HUB}/relay/b")
        ends: list[ChannelEnd] = []
        for n in range(4):
            peer = net.peer(f"10.6.{n}.1")
            no_return_route(peer)
            who = make_channel_party(net.world.vault, now=T)
            ends.append(await peer.manager.open(relayed, me=who.me(())))
        assert b.manager._open.strangers == len(b.manager._open) == 3
        (uplink,) = b.transport.connections()
        (at_hub,) = [c for c in hub.transport.connections() if c.other is uplink]
        who = make_channel_party(net.world.vault, now=T)
        own = await hub.manager.open((at_hub.address,), me=who.me(()))
        assert await echo(hub, own, "kept") == "kept"

    run(test)


def test_a_newcomer_at_the_cap_picks_its_victim_once() -> None:
    """Channels 2: at the cap, each newcomer's handshake picked a victim twice (at message 3,
    where only whether there is room counts, and as its channel was taken in), each a scan of
    every stranger's channel (~0.7 ms with 3,072 of them, of the event loop, per handshake):
    now once, from counts kept as channels open and close."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_open_channels=4))
        hub.manager.trust = lambda: net.world.trust(AdmitAnyone())
        for n in range(3):
            await open_stranger(net, f"10.40.{n}.1")
        cap = hub.manager._open
        picked = []
        victim = cap._victim

        def counted(stranger: bool, source: str, network: str, behind: bool) -> ChannelEnd | None:
            picked.append(source)
            return victim(stranger, source, network, behind)

        cap._victim = counted  # type: ignore[method-assign]
        await open_stranger(net, "10.40.9.1")
        assert hub.manager.counters.evicted_open == 1
        assert len(picked) == 1

    run(test)


async def open_stranger(net: Net, host: str) -> ChannelEnd:
    who = make_channel_party(net.world.vault, now=T)
    return await net.peer(host).manager.open(parse_route(HUB), me=who.me(()))


def reference_victim(
    held: list[tuple[int, str, str]], source: str | None, network: str | None
) -> int:
    """The victim as review 54k picked it, by a scan of the strangers' channels oldest first
    (`held`: end, source, network)."""
    networks = collections.Counter(n for _, _, n in held)
    most = max(networks.values())
    if network is None or networks[network] != most:
        network = next(n for _, _, n in held if networks[n] == most)
    ours = [(end, s) for end, s, n in held if n == network]
    sources = collections.Counter(s for _, s in ours)
    most = max(sources.values())
    if source is None or sources[source] != most:
        source = next(s for _, s in ours if sources[s] == most)
    return next(end for end, s in ours if s == source)


def reference_members_victim(
    members: list[tuple[int, str, frozenset[bytes]]], share: int
) -> int | None:
    """The member's channel that gives way as review 54r picked it, by a scan of the members'
    channels oldest first (`members`: end, source, authorities; only those that give way), two
    authorities of the same oldest channel told apart by their digests."""
    held = collections.Counter(a for _, _, authorities in members for a in authorities)
    over = {a: n for a, n in held.items() if n > share}
    if not over:
        return None
    most = max(over.values())
    authority = next(
        min(a for a in ours if over.get(a) == most)
        for _, _, ours in members
        if any(over.get(a) == most for a in ours)
    )
    ours = [(end, s) for end, s, authorities in members if authority in authorities]
    sources = collections.Counter(s for _, s in ours)
    top = max(sources.values())
    source = next(s for _, s in ours if sources[s] == top)
    return next(end for end, s in ours if s == source)


AUTHORITIES: tuple[frozenset[bytes], ...] = (
    frozenset({b"a0"}),
    frozenset({b"a1"}),
    frozenset({b"a2"}),
    frozenset({b"a0", b"a1"}),
    frozenset({LOCAL}),
    frozenset(),
)


def test_the_kept_counts_pick_the_victim_the_scan_picked() -> None:
    """Channels 2: channels of strangers and members opened and closed at random (networks,
    sources and authorities few, so ties are many; strangers many, then few, so the cap is
    held by members alone at times): each place, for a stranger of any source and for a
    member, names the victim review 54k's scan named (a member's with no stranger left, review
    54r's), and the counts match the channels."""
    rng = random.Random(542)
    cap: OpenChannels[int] = OpenChannels(16, lambda: 2)  # shares of 16 // 4
    held: list[tuple[int, str, str]] = []  # strangers', oldest first
    members: list[tuple[int, str, frozenset[bytes]]] = []  # oldest first
    in_members_place = 0
    for end in range(6000):
        network = f"n{rng.randrange(4)}"
        source = f"{network}s{rng.randrange(3)}"
        stranger = rng.random() < (0.8 if end // 500 % 2 == 0 else 0.1)
        authorities = frozenset() if stranger else rng.choice(AUTHORITIES)
        if cap.strangers:
            for asker, at in ((source, network), (None, None)):
                victim = cap._victim(asker is not None, source, network, False)
                assert victim == reference_victim(held, asker, at)
        giving = [m for m in members if m[2] and LOCAL not in m[2]]
        expected = reference_members_victim(giving, 4)
        assert cap._members_victim(source, False) == expected
        place = cap.place(
            stranger=stranger, source=source, network=network, authorities=authorities
        )
        admits = cap.admits(
            stranger=stranger, source=source, network=network, authorities=authorities
        )
        assert place.admitted == admits  # never admitted at message 3, refused at take-in
        if place.victim is not None:
            in_members_place += not cap.strangers
            cap.discard(place.victim)
            held = [h for h in held if h[0] != place.victim]
            members = [m for m in members if m[0] != place.victim]
        if place.admitted:
            cap.add(end, stranger=stranger, source=source, network=network, authorities=authorities)
            if stranger:
                held.append((end, source, network))
            else:
                members.append((end, source, authorities))
        if rng.random() < 0.3 and (held or members):
            gone = rng.choice([h[0] for h in held] + [m[0] for m in members])
            cap.discard(gone)
            held = [h for h in held if h[0] != gone]
            members = [m for m in members if m[0] != gone]
        assert (len(cap), cap.strangers) == (len(held) + len(members), len(held))
        for authority in (b"a0", b"a1", b"a2", LOCAL):
            assert cap._shares.held(authority) == sum(authority in m[2] for m in members)
    assert in_members_place > 50  # the member branch was taken often


def test_the_node_at_the_end_of_its_own_connection_is_one_source() -> None:
    """Channels 3: node b made its connection to the hub. The hub's own channels to b (its
    identities free: an anchor shows no chain) were each a source of their own (the
    connection and the hub's reply address, another per channel), so no per-source limit
    bounded them, and, counted as the node at the other end of b's own connection, none gave
    way at the cap: a hub (a relay others run) filled b's cap, every member refused. Now they
    are one source, the connection: past `max_channels_per_source` the hub is refused."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        limits = ChannelLimits(max_open_channels=8, max_channels_per_source=2)
        b = await net.relayed(hub, "b", limits=limits)
        b.manager.trust = lambda: net.world.trust(AdmitAnyone())
        (uplink,) = b.transport.connections()
        (at_hub,) = [c for c in hub.transport.connections() if c.other is uplink]
        opened = []
        for _ in range(2):
            who = make_channel_party(net.world.vault, now=T)
            opened.append(await hub.manager.open((at_hub.address,), me=who.me(())))
        who = make_channel_party(net.world.vault, now=T)
        third = asyncio.ensure_future(hub.manager.open((at_hub.address,), me=who.me(())))
        await until(lambda: b.manager.counters.refused_channels_per_source == 1)
        third.cancel()  # its message 1 was dropped: it would wait out the handshake timeout
        with contextlib.suppress(asyncio.CancelledError):
            await third
        assert len(b.manager._open) == 2
        for end in opened:
            assert await echo(hub, end, "kept") == "kept"

    run(test)
