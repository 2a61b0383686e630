"""Review 41b, reply paths (a relayed node's one connection, shared by every peer behind it).

Reply paths 1: a connection lets what arrives on it reach the channel ends that run over it
through its allow-set's reply paths, a least-recently-used list (4,096 per connection,
`TcpSettings.max_reply_paths`): a responder end was put there as its message 1 arrived, an end
of any role whenever it sent. Over a direct connection that bounds nothing another peer uses,
but every channel a relayed node's peers open runs over its one connection to the relay: peers
that open more channels through the relay than the list holds (channels are bounded per
identity and per source address, not per node: identities and addresses cost little) push the
others' ends off it, and a packet for an end no longer on it is refused at that connection
("may not reach"), dropped unseen by its channel — an idle peer's next request went
unanswered. The ends that run over a connection are now held on it while they live (not in the
LRU), and forgotten when they close.
"""

from __future__ import annotations

from tests.test_channel_manager import HUB, Net, Peer, echo, run
from troth.node.channels import LISTENER, ChannelLimits
from troth.routing import Address, RoutedMessage, Source, parse_route

PATHS = 8
"""The relayed node's connection keeps this many reply paths (`TROTH_TCP_MAX_REPLY_PATHS`),
so that a few channels show what 4,097 do at the default."""


async def relayed(net: Net, hub: Peer, name: str) -> Peer:
    """`Net.relayed` with a connection that keeps PATHS reply paths."""
    node = net.peer("10.0.0.2", limits=ChannelLimits(max_channels_per_peer=PATHS * 2))
    node.transport.max_reply_paths = PATHS
    connection = await node.transport.connect("hub", 4000)
    connection.allowed.permit(LISTENER)
    (at_hub,) = [c for c in hub.transport.connections() if c.other is connection]

    async def forward(message: RoutedMessage, source: Source | None) -> None:
        onward = (at_hub.address, *message.onward)
        await hub.router.route(RoutedMessage(onward, message.return_route, message.payload))

    hub.router.register(Address("relay", name), forward)
    return node


def test_channels_opened_through_a_relay_do_not_cut_another_peers_channel_off() -> None:
    """Reply paths 1: a peer's channel through the relay answers once more after another peer
    opened as many channels through the same relay as the relayed node's connection keeps
    reply paths (and used them).
    Was a strict xfail until a connection held the ends that run over it apart from its
    least-recently-used reply paths."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        await relayed(net, hub, "b")
        route = parse_route(f"{HUB}/relay/b")
        alice = net.peer("10.0.0.3")
        kept = await alice.manager.open(route)
        assert await echo(alice, kept, "before") == "before"
        mallory = net.peer("10.6.6.6")
        for n in range(PATHS):
            end = await mallory.manager.open(route)
            assert await echo(mallory, end, f"m{n}") == f"m{n}"
        assert await echo(alice, kept, "after") == "after"

    run(test)
