"""Review 23b (a node under hostile peers: node-wide limits that strangers fill first).

1. the reassembly bytes of all peers together are bounded node-wide (`max_reassembly_total`,
   8 x (16 MiB + 64 KiB)), first come, first served. On a node hosting an authority any
   authenticated identity opens channels (to enroll), and identities cost nothing: a few
   strangers, each within its own budget (2 x (16 MiB + 64 KiB)), leave incomplete messages
   that fill the node's total — renewed every reassembly timeout — and meanwhile every
   member's fragmented message (anything above one frame: an enroll request with its chain, a
   trace batch, a policy bundle, an echo of 100 KB) passes the total and closes the member's
   channel (`too large`). The other node-wide pools keep each authority its share past their
   bound (docs/protocols.md, "Shares of node-wide pools"); this one did not.

Each test asserts the secure behaviour and was a strict xfail until its fix. Fixed: 1. the
node's reassembly bytes are a pool shared between authorities (troth.node.shares, counted in
bytes): past the total, a peer identity takes more only within the share of one of its
authorities (those of its latest verified chains; strangers are one), so strangers fill the
total and no more; the node holds at most twice it. (A channel joining its budget with no
fragment takes 0 bytes, always room: the first version of the fix refused it past the total,
closing every new stranger's channel `too large`; the second test.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.channels import packet
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_reconnect import until
from troth.channel import split_packet
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.node.runtime import NodeRuntime
from troth.node.services import call
from troth.routing import Address, RoutedMessage

ECHO = Address("service", "echo")
BOUND = 600_000  # the hub's reassembly total (and each peer's own budget)


def test_strangers_filling_the_reassembly_total_leave_a_member_its_share(tmp_path: Path) -> None:
    """A stranger (no credential: any identity reaches the hub, which hosts an authority)
    leaves nine fragments of a 1 MB message incomplete: ~590 KB of the hub's 600 KB. A member
    then echoes 150 KB (three fragments, ~196 KB): answered, within its authority's share
    (600 KB // (1 trusted + strangers + local callers) = 200 KB), not closed `too large`."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        assert hub.identifier is not None
        member = await net.member("member")
        stranger = await net.node("stranger")
        trust = stranger._channel_trust(also=frozenset({hub.identifier}))
        end = await stranger.channels.open(route(HUB), trust=trust)
        end.channel.send(bytes(1_000_000))
        fragments = [f for p in end.channel.outgoing() for f in split_packet(p)]
        for fragment in fragments[:9]:  # never the rest
            message = RoutedMessage(end.peer_route, (end.dec,), packet(fragment))
            await stranger.router.route(message)
        (theirs,) = [
            e
            for e in hub.channels.ends.values()
            if e.peer and e.peer.identifier == stranger.identifier
        ]
        await until(lambda: theirs.channel.reassembling > BOUND - 65_536)  # the node's total

        to_hub = await member.channel_to(route(HUB))
        text = "x" * 150_000
        assert await call(member.router, (to_hub.enc, ECHO), "echo", text) == text
        assert to_hub.enc in member.channels.ends

    limits = ChannelLimits(max_reassembly_per_peer=BOUND, max_reassembly_total=BOUND)
    run_memnet(test, tmp_path / "home", budget=30, limits=limits)


async def _hold(net: MemNet, runtime: NodeRuntime, end: ChannelEnd, size: int, keep: int) -> None:
    """`runtime` sends the first `keep` fragments of a `size`-byte message on `end` (never the
    rest); returns once the hub holds them."""
    hub = net.hub
    assert hub is not None
    end.channel.send(bytes(size))
    fragments = [f for p in end.channel.outgoing() for f in split_packet(p)]
    for fragment in fragments[:keep]:
        await runtime.router.route(RoutedMessage(end.peer_route, (end.dec,), packet(fragment)))
    peer = runtime.identifier
    (theirs,) = [e for e in hub.channels.ends.values() if e.peer and e.peer.identifier == peer]
    await until(lambda: theirs.channel.reassembling >= keep * 65_000)


def test_a_channel_that_brings_no_fragment_opens_past_the_reassembly_total(tmp_path: Path) -> None:
    """Past the node's reassembly total (a stranger holds ~590 KB of 600 KB, a member ~196 KB
    within its share), another stranger still opens a channel: it holds nothing yet, and
    nothing is always room (its channel joins its budget with 0 bytes)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        assert hub.identifier is not None
        also = frozenset({hub.identifier})
        member = await net.member("member")
        first, second = await net.node("first"), await net.node("second")
        end = await first.channels.open(route(HUB), trust=first._channel_trust(also=also))
        await _hold(net, first, end, 1_000_000, 9)
        await _hold(net, member, await member.channel_to(route(HUB)), 1_000_000, 3)
        opened = await second.channels.open(route(HUB), trust=second._channel_trust(also=also))
        await asyncio.sleep(0.1)  # the hub's end has joined its budget (or closed)
        assert opened.enc in second.channels.ends

    limits = ChannelLimits(max_reassembly_per_peer=BOUND, max_reassembly_total=BOUND)
    run_memnet(test, tmp_path / "home", budget=30, limits=limits)
