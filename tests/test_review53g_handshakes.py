"""Review 53g, handshakes 1: the half-open table held from one network's many sources.

At the global half-open limit, a newcomer evicted the oldest handshake of the sources holding
the most, this source's own when it was one of them (review 34e, handshakes 2). Sources are
addresses (an IPv6 /64), so a party holding many of one network (the 256 addresses of an IPv4
/24, the /64s of an IPv6 /48), each one message 1 from a fresh source, was never "the most"
and evicted the oldest handshake of all, another network's included: a legitimate peer whose
message 3 came after `max_half_open` such messages 1 lost its handshake (at 256, one round trip
of the legitimate peer's is 2,560 messages 1 a second at 100 ms, each a few hundred bytes). The
table now also judges networks (`source_network`, as the TCP connection table does since review
48h, sources 1): a newcomer from the network holding the most handshakes evicts that network's
own oldest.
"""

from __future__ import annotations

import pytest

from tests.support.channels import T
from tests.support.parties import make_channel_party
from tests.test_channel_manager import HUB, Net, message_1, run, until
from troth.channel import ChannelState, SecureChannel
from troth.node.channels import ChannelLimits
from troth.routing import Address, RoutedMessage, Router, Source, parse_route
from troth.transport import MemoryTransport


@pytest.mark.parametrize(
    "address",
    [
        "10.6.6.{n}",  # the addresses of one IPv4 /24
        "::ffff:10.6.6.{n}",  # the same, IPv4-mapped (every other one: a mix of the two)
        "2001:db8:0:{n:x}::1",  # the /64s of one IPv6 /48
    ],
    ids=["ipv4", "ipv4-mapped-mix", "ipv6"],
)
def test_one_networks_sources_do_not_evict_another_networks_handshake(address: str) -> None:
    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_half_open=8))
        counters = hub.manager.counters
        flooders = 0

        async def flood(count: int) -> None:  # one message 1 from each fresh address of a /24
            nonlocal flooders
            for _ in range(count):
                flooders += 1
                flooder = Router()
                mapped = address.startswith("::ffff:") and flooders % 2
                host = (address if mapped else address.removeprefix("::ffff:")).format(n=flooders)
                MemoryTransport(flooder, net.network, host=host)
                await flooder.route(message_1(f"flood-{flooders}"))

        await flood(7)
        await until(lambda: counters.handshakes_started == 7)
        # a legitimate peer from another network: its message 1 answered, its message 3 later
        party = make_channel_party(net.world.vault, now=T)
        legit = SecureChannel.initiate(
            me=party.me((net.world.credential(party),)), trust=net.world.trust()
        )
        router = Router()
        MemoryTransport(router, net.network, host="192.0.2.9")
        back: list[RoutedMessage] = []

        async def receive(message: RoutedMessage, source: Source | None) -> None:
            back.append(message)
            legit.receive(message.payload, T + 1)

        me = Address("worker", "legit")
        router.register(me, receive)
        listener = parse_route(f"{HUB}/service/channels")
        (first,) = legit.outgoing()
        await router.route(RoutedMessage(listener, (me,), first))
        await until(lambda: legit.state is ChannelState.AWAITING_ACCEPT)
        await flood(8)  # the table is full: each of these evicts one
        await until(lambda: counters.handshakes_started == 16)
        assert counters.evicted_half_open == 8
        for packet in legit.outgoing():  # message 3, after them
            await router.route(RoutedMessage(back[0].return_route, (me,), packet))
        await until(lambda: legit.state is ChannelState.OPEN, timeout=2)

    run(test)
