"""A node's channel manager under hostile load, on the in-memory transport (no TCP: TCP is not
the point here): junk frames injected through a relay, handshake floods per source and
globally, handshakes and reassemblies expired by timer, reassembly bounded per peer and per
node, channels per peer bounded, limits from the environment."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.channels import T, World, channel_reply, make_world, packet
from tests.support.parties import ChannelParty, make_channel_party
from troth.channel import ChannelSettings, ChannelState, split_packet
from troth.errors import ChannelError, ChannelFailure, ConfigError
from troth.node.access import AnyAuthenticated, RulesPolicy, Standing
from troth.node.channel_pins import Pins
from troth.node.channels import LISTENER, ChannelEnd, ChannelLimits, ChannelManager, caller_of
from troth.node.services import (
    FAILED,
    NodeService,
    ServiceHost,
    call,
    error_response,
    service_address,
)
from troth.node.services.admission import RequestLimits
from troth.node.services.base import calls_through
from troth.node.services.echo import EchoService
from troth.routing import Address, RoutedMessage, Router, Source, parse_route
from troth.transport import Listener, MemoryNetwork, MemoryTransport
from troth.vault.ephemeral import EphemeralKey

ECHO = Address("service", "echo")
HUB = "/tcp/hub:4000"


@dataclass
class Clock:
    now: int = T + 1

    def __call__(self) -> int:
        return self.now


@dataclass
class Peer:
    router: Router
    transport: MemoryTransport
    manager: ChannelManager
    host: ServiceHost


@dataclass
class Net:
    world: World
    network: MemoryNetwork = field(default_factory=MemoryNetwork)
    clock: Clock = field(default_factory=Clock)
    peers: list[Peer] = field(default_factory=list)

    def peer(
        self,
        host: str,
        party: ChannelParty | None = None,
        *,
        limits: ChannelLimits | None = None,
        settings: ChannelSettings | None = None,
        services: tuple[NodeService, ...] = (),
        requests: RequestLimits | None = None,
        pins: Pins | None = None,
    ) -> Peer:
        """A node-like peer: router, memory transport, channel manager, echo service (and
        `services`, open to any authenticated peer)."""
        who = party or make_channel_party(self.world.vault, now=T)
        credentials = (self.world.credential(who),)
        router = Router()
        served = frozenset({ECHO, *(service_address(s.name) for s in services)})
        manager = ChannelManager(
            router,
            me=lambda: who.me(credentials),
            trust=self.world.trust,
            services=lambda: served,
            settings=settings or ChannelSettings(),
            clock=self.clock,
            limits=limits or ChannelLimits(),
            pins=pins,
        )
        manager.start()

        rules = {("echo", "echo"): AnyAuthenticated()}
        for service in services:
            methods = [*service.methods, *(["message"] if service.oneway else [])]
            rules.update({(service.name, method): AnyAuthenticated() for method in methods})
        policy = RulesPolicy(host, rules, lambda peer, now: Standing(()))
        served_by = ServiceHost(
            router, policy, clock=self.clock, callers=caller_of, limits=requests
        )
        for service in (EchoService(), *services):
            served_by.add(service)
        transport = MemoryTransport(router, self.network, host=host)
        peer = Peer(router, transport, manager, served_by)
        self.peers.append(peer)
        return peer

    async def hub(self, **options: Any) -> Peer:
        hub = self.peer("10.0.0.1", **options)
        listener = Listener(addresses=frozenset({LISTENER}), kinds=frozenset({"relay"}))
        await hub.transport.listen("hub", 4000, listener)
        return hub

    async def relayed(self, hub: Peer, name: str, **options: Any) -> Peer:
        """A peer without a listener, reachable as HUB/relay/<name> (as the relay service
        sets it up: the hub forwards to the peer's connection)."""
        node = self.peer("10.0.0.2", **options)
        connection = await node.transport.connect("hub", 4000)
        connection.allowed.permit(LISTENER)  # relayed handshakes reach the node's listener
        (at_hub,) = [c for c in hub.transport.connections() if c.other is connection]

        async def forward(message: RoutedMessage, source: Source | None) -> None:
            onward = (at_hub.address, *message.onward)
            await hub.router.route(RoutedMessage(onward, message.return_route, message.payload))

        hub.router.register(Address("relay", name), forward)
        return node

    async def close(self) -> None:
        for peer in self.peers:
            await peer.manager.close_all()
            await peer.transport.close()


def run(test: Callable[[Net], Awaitable[None]]) -> None:
    async def main() -> None:
        net = Net(make_world())
        try:
            await asyncio.wait_for(test(net), 30)
        finally:
            await net.close()

    asyncio.run(main())


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for the in-memory network to deliver (the test fails on timeout)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def echo(peer: Peer, end: ChannelEnd, text: str) -> Any:
    return await call(peer.router, (end.enc, ECHO), "echo", text, timeout=5)


def attacker(net: Net) -> Router:
    """A router on a machine of its own, connected to nothing yet."""
    router = Router()
    MemoryTransport(router, net.network, host="10.6.6.6")
    return router


def message_1(reply: str) -> RoutedMessage:
    """A fresh, valid handshake message 1 to the hub's listener (what a flood sends), its reply
    address a channel end's (`channel_reply`: the node at the other end itself, its source's
    whole limits)."""
    e = EphemeralKey().public_key.data
    listener = parse_route(f"{HUB}/service/channels")
    return RoutedMessage(listener, (channel_reply(reply),), packet(b"\x01" + e))


def only_end(peer: Peer) -> ChannelEnd:
    (end,) = peer.manager.ends.values()
    return end


def test_junk_frames_injected_through_a_relay_do_not_close_the_channel() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub()
        b = await net.relayed(hub, "b")
        a = net.peer("10.0.0.3")
        end = await a.manager.open(parse_route(f"{HUB}/relay/b"))
        assert await echo(a, end, "before") == "before"
        b_end = only_end(b)
        flooder = attacker(net)
        junk = packet(b"\x02" + bytes(range(38)))  # 41 bytes, as seen on the hub<->node link
        target = (*parse_route(f"{HUB}/relay/b"), b_end.dec)
        for _ in range(100):
            await flooder.route(RoutedMessage(target, (), junk))
        await until(lambda: b.manager.counters.dropped_frames == 100)
        assert b_end.enc in b.manager.ends
        assert b_end.channel.state is ChannelState.OPEN
        assert await echo(a, end, "after") == "after"  # the next real message is delivered

    run(test)


def test_a_handshake_flood_from_one_source_leaves_others_able_to_connect() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_half_open_per_source=16))
        flooder = attacker(net)
        for n in range(40):
            await flooder.route(message_1(f"flood-{n}"))
        counters = hub.manager.counters
        await until(lambda: counters.refused_half_open_per_source == 24)
        assert counters.handshakes_started == 16
        a = net.peer("10.0.0.3")
        end = await a.manager.open(parse_route(HUB))
        assert await echo(a, end, "through") == "through"

    run(test)


def test_at_the_global_limit_a_new_source_evicts_the_largest_sources_oldest() -> None:
    async def test(net: Net) -> None:
        limits = ChannelLimits(max_half_open=8, max_half_open_per_source=8)
        hub = await net.hub(limits=limits)
        flooder = attacker(net)
        for n in range(8):
            await flooder.route(message_1(f"flood-{n}"))
        counters = hub.manager.counters
        await until(lambda: counters.handshakes_started == 8)
        await flooder.route(message_1("one-more"))  # the same source: refused
        await until(lambda: counters.refused_half_open_per_source == 1)
        a = net.peer("10.0.0.3")
        end = await a.manager.open(parse_route(HUB))
        assert counters.evicted_half_open == 1
        assert await echo(a, end, "in") == "in"

    run(test)


def test_relayed_handshakes_are_limited_per_sender_behind_the_relay() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub()
        b = await net.relayed(hub, "b", limits=ChannelLimits(max_half_open_per_source=4))
        flooder = attacker(net)
        for n in range(10):
            flood = message_1(f"flood-{n}")
            relayed = parse_route(f"{HUB}/relay/b/service/channels")
            await flooder.route(RoutedMessage(relayed, flood.return_route, flood.payload))
        await until(lambda: b.manager.counters.refused_half_open_per_source == 6)
        a = net.peer("10.0.0.3")  # another sender through the same relay connection
        end = await a.manager.open(parse_route(f"{HUB}/relay/b"))
        assert await echo(a, end, "relayed") == "relayed"

    run(test)


def test_half_open_handshakes_expire_by_timer() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(handshake_timeout=0.2))
        flooder = attacker(net)
        for n in range(3):
            await flooder.route(message_1(f"stall-{n}"))
        await until(lambda: len(hub.manager.ends) == 3)
        await until(lambda: not hub.manager.ends, timeout=2)
        assert hub.manager.counters.handshakes_timed_out == 3

    run(test)


def test_an_unusable_message_1_leaves_no_state() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub()
        flooder = attacker(net)
        low_order = packet(b"\x01" + bytes(32))  # e = 0: no key agreement possible
        listener = parse_route(f"{HUB}/service/channels")
        await flooder.route(RoutedMessage(listener, (Address("worker", "x"),), low_order))
        await until(lambda: hub.manager.counters.dropped_frames == 1)
        assert not hub.manager.ends

    run(test)


async def send_fragments(peer: Peer, end: ChannelEnd, size: int, keep: int) -> None:
    """Send only the first `keep` fragments of a `size`-byte message (a packet each)."""
    end.channel.send(bytes(size))
    fragments = [f for p in end.channel.outgoing() for f in split_packet(p)]
    for fragment in fragments[:keep]:
        await peer.router.route(RoutedMessage(end.peer_route, (end.dec,), packet(fragment)))


def test_reassembly_memory_is_released_by_the_timer() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub(
            limits=ChannelLimits(reassembly_sweep=0.02),
            settings=ChannelSettings(reassembly_timeout=30),
        )
        a = net.peer("10.0.0.3")
        end = await a.manager.open(parse_route(HUB))
        hub_end = only_end(hub)
        await send_fragments(a, end, 200_000, 2)
        await until(lambda: hub_end.channel.reassembling > 0)
        held = hub_end.channel.reassembling
        net.clock.now += 31  # no other fragment ever comes: the timer gives it up
        await until(lambda: hub_end.channel.reassembling == 0)
        assert hub.manager.counters.reassembly_expired_bytes == held
        assert await echo(a, end, "still open") == "still open"

    run(test)


def test_reassembly_is_bounded_per_peer_across_its_channels() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_reassembly_per_peer=200_000))
        party = make_channel_party(net.world.vault, now=T)
        a = net.peer("10.0.0.3", party)
        first = await a.manager.open(parse_route(HUB))
        second = await a.manager.open(parse_route(HUB))
        await send_fragments(a, first, 400_000, 2)  # ~131 KB held
        await send_fragments(a, second, 400_000, 2)  # would pass 200 KB: closed
        await until(lambda: second.enc not in a.manager.ends)
        assert second.channel.close_reason is ChannelFailure.TOO_LARGE  # the hub's CLOSE
        assert len(hub.manager.ends) == 1
        assert await echo(a, first, "first survives") == "first survives"

    run(test)


def test_a_channel_cannot_answer_the_requests_sent_through_another() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub()
        await net.relayed(hub, "b")
        a = net.peer("10.0.0.3")
        to_hub = await a.manager.open(parse_route(f"{HUB}/service/channels"))
        to_b = await a.manager.open(parse_route(f"{HUB}/relay/b"))
        assert await echo(a, to_hub, "hub") == "hub"
        assert await echo(a, to_b, "b") == "b"
        hub_calls, b_calls = calls_through(a.router, to_hub.enc), calls_through(a.router, to_b.enc)
        assert hub_calls.address != b_calls.address
        hub_end = only_end(hub)  # the hub forges answers into a through its own channel
        for target in (b_calls.address, hub_calls.address):
            for request in range(50):
                forged = error_response(FAILED, "forged", request=request)
                await hub.router.route(RoutedMessage((hub_end.enc, target), (), forged))
        await until(lambda: hub_calls.dropped == 50)  # reached its own channel's worker only
        assert b_calls.dropped == 0
        assert not to_hub.allows(b_calls.address)
        assert await echo(a, to_b, "still") == "still"

    run(test)


def test_channels_per_peer_are_bounded() -> None:
    async def test(net: Net) -> None:
        await net.hub(limits=ChannelLimits(max_channels_per_peer=2))
        a = net.peer("10.0.0.3")
        ends = [await a.manager.open(parse_route(HUB)) for _ in range(2)]
        with pytest.raises(ChannelError) as caught:
            await a.manager.open(parse_route(HUB))
        assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        await ends[0].close()
        end = await a.manager.open(parse_route(HUB))
        assert await echo(a, end, "third") == "third"

    run(test)


def test_reassembly_is_bounded_for_all_peers_together() -> None:
    """Identities cost nothing on a node that admits any authenticated one: the node's total
    bounds what all peers' incomplete messages hold, whatever each peer's own budget."""

    async def test(net: Net) -> None:
        limits = ChannelLimits(max_reassembly_per_peer=300_000, max_reassembly_total=200_000)
        hub = await net.hub(limits=limits)
        first, second = net.peer("10.0.0.3"), net.peer("10.0.0.4")
        first_end = await first.manager.open(parse_route(HUB))
        second_end = await second.manager.open(parse_route(HUB))
        await send_fragments(first, first_end, 400_000, 2)  # ~131 KB held
        await send_fragments(second, second_end, 400_000, 2)  # would pass 200 KB in all
        await until(lambda: second_end.enc not in second.manager.ends)
        assert second_end.channel.close_reason is ChannelFailure.TOO_LARGE
        assert len(hub.manager.ends) == 1
        assert await echo(first, first_end, "first survives") == "first survives"

    run(test)


def test_the_node_sets_the_reassembly_timeout_of_its_channels() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(reassembly_timeout=5, reassembly_sweep=0.02))
        a = net.peer("10.0.0.3")
        end = await a.manager.open(parse_route(HUB))
        hub_end = only_end(hub)
        await send_fragments(a, end, 200_000, 2)
        await until(lambda: hub_end.channel.reassembling > 0)
        net.clock.now += 6  # past the node's 5 s, long before the channel default (60 s)
        await until(lambda: hub_end.channel.reassembling == 0)
        assert await echo(a, end, "still open") == "still open"

    run(test)


def test_channel_limits_come_from_the_environment() -> None:
    environ = {"TROTH_CHANNELS_REASSEMBLY_TIMEOUT": "8", "TROTH_CHANNELS_MAX_HALF_OPEN": "32"}
    limits = ChannelLimits.from_environment(environ)
    assert (limits.reassembly_timeout, limits.max_half_open) == (8, 32)
    assert ChannelLimits.from_environment({}) == ChannelLimits()
    with pytest.raises(ConfigError) as caught:
        ChannelLimits.from_environment({"TROTH_CHANNELS_HANDSHAKE_TIMEOUT": "ten"})
    assert "TROTH_CHANNELS_HANDSHAKE_TIMEOUT='ten': not a number (float)" in str(caught.value)
