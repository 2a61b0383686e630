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
total and no more; the node holds at most twice it.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.channels import packet
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_reconnect import until
from troth.channel import split_packet
from troth.node.channels import ChannelLimits
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
