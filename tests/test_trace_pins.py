"""A node's trace route is pinned (troth.node.pins; docs/traces.md, "Where records go"): to
the identity that answered there first, kept across a restart in pins.json, or to node.json's
`traces_expect`; anyone else there is refused with a typed error while the records stay queued;
the identifier is pinned, not a key, so a collector that rotates is still accepted."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_attacks_review19 import GRACE, records_of, traces_to
from tests.test_trace_node import step
from troth.errors import ChannelError, ChannelFailure, ConfigError
from troth.identity import Identifier
from troth.node import Node
from troth.node.config import NodeConfig
from troth.node.home import write_private_file
from troth.node.pins import RoutePins, pinned_traces
from troth.node.runtime import NodeRuntime
from troth.node.services.trace import TraceClient
from troth.routing import parse_route
from troth.trace.batcher import Queued

TRACES = f"{HUB}/relay/collector/service/trace"


async def until(done: Callable[[], bool], what: str) -> None:
    """Wait (on the event loop) until `done()`; fail after 30 s."""
    async with asyncio.timeout(30):
        while not done():
            await asyncio.sleep(0.05)
    assert done(), what


def client_of(runtime: NodeRuntime) -> TraceClient:
    client = runtime.traces.recorder()
    assert isinstance(client, TraceClient)
    return client


def pins_of(runtime: NodeRuntime) -> dict[str, Identifier]:
    return RoutePins(runtime.node.path / "pins.json").load()


async def leave(net: MemNet, runtime: NodeRuntime, *peers: NodeRuntime) -> None:
    """`runtime` stops (its relay held for it for the grace period); the `peers` notice; the
    grace period passes."""
    gone = net.identifier(runtime)
    await runtime.stop()
    net.runtimes.remove(runtime)
    for peer in peers:
        for end in list(peer.channels.ends.values()):
            if end.peer is not None and end.peer.identifier == gone:
                await end.close()
    net.clock.advance(GRACE + 1)


async def restart(net: MemNet, runtime: NodeRuntime) -> NodeRuntime:
    """`runtime`'s node stopped and started again (a new runtime over the same node)."""
    await runtime.stop()
    net.runtimes.remove(runtime)
    again = NodeRuntime(
        runtime.node, clock=net.clock, transport=net.transport(f"host-{runtime.name}-again")
    )
    net.runtimes.append(again)
    await again.start()
    return again


def test_the_first_collector_is_pinned_and_kept_across_a_restart(tmp_path: Path) -> None:
    """The agent's first record pins the collector (pins.json). The agent restarts, the
    collector leaves and mallory takes its relay name: the restarted agent's client refuses
    her (ChannelError PEER_NOT_ALLOWED naming the route and both identities) and keeps the
    record queued; she gets nothing."""

    async def test(net: MemNet) -> None:
        collector = await net.member("collector", **{"troth.relay": "collector"})
        await collector.create_relay("collector", HUB)
        agent = await net.node("agent", prepare=traces_to(TRACES))
        await agent.enroll(net.ticket(), "agent")
        agent_id, collector_id = net.identifier(agent), net.identifier(collector)
        first = client_of(agent).record(step(0))
        await client_of(agent).flush(20)
        assert first.result() == 0
        assert pins_of(agent) == {f"{HUB}/relay/collector": collector_id}

        agent = await restart(net, agent)
        await leave(net, collector, agent)
        mallory = await net.member("mallory", **{"troth.relay": "*"})
        await mallory.create_relay("collector", HUB)
        client = client_of(agent)
        second = client.record(step(1))
        await until(lambda: client.failures > 0, "the client tried mallory")
        assert not second.done
        assert await mallory.worker.run(records_of, mallory, agent_id) == []
        pinned = pinned_traces(agent.node, agent.channel_to, agent.router, agent.worker)
        with pytest.raises(ChannelError) as refused:
            await pinned.call("head", [str(agent_id)])
        assert refused.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        detail = refused.value.detail
        assert TRACES in detail
        assert f"pinned to {collector_id}" in detail
        assert f"but {net.identifier(mallory)} answered" in detail

    run_memnet(test, tmp_path / "home", relay_grace=GRACE)


async def rotated_collector(
    net: MemNet,
) -> tuple[NodeRuntime, NodeRuntime, TraceClient, Queued]:
    """The collector's relay is up and the agent's first record reached it; then the collector
    rotates (announced, its channels closed): (collector, agent, its client, that record)."""
    collector = await net.member("collector", **{"troth.relay": "collector"})
    await collector.create_relay("collector", HUB)
    agent = await net.node("agent", prepare=traces_to(TRACES))
    await agent.enroll(net.ticket(), "agent")
    client = client_of(agent)
    first = client.record(step(0))
    await client.flush(20)
    assert first.result() == 0
    history = collector.node.identities.export("collector")
    net.clock.advance(1)
    await collector.worker.run(
        lambda: collector.node.identities.rotate("collector", now=net.clock.now())
    )
    (announced,) = await collector.announce_rotations()
    assert announced["announced"] is True
    assert collector.node.identities.export("collector") != history  # new keys
    return collector, agent, client, first


def test_a_collector_that_rotates_is_still_accepted(tmp_path: Path) -> None:
    """The identifier is pinned, not a key: the collector rotates (announced, its channels
    closed) and the agent's next record reaches it over a new channel."""

    async def test(net: MemNet) -> None:
        collector, agent, client, first = await rotated_collector(net)
        second = client.record(step(1))
        await client.flush(20)
        assert second.result() == 1
        agent_id = net.identifier(agent)
        stored = await collector.worker.run(records_of, collector, agent_id)
        assert stored == [first.record, second.record]
        assert pins_of(agent) == {f"{HUB}/relay/collector": net.identifier(collector)}

    run_memnet(test, tmp_path / "home", relay_grace=GRACE)


def test_a_configured_collector_is_expected_from_the_first_contact(tmp_path: Path) -> None:
    """node.json `traces_expect` names the collector: mallory, answering at the route before
    the collector ever did, is refused at the first contact, and nothing is pinned."""

    async def test(net: MemNet) -> None:
        collector = await net.member("collector")
        mallory = await net.member("mallory", **{"troth.relay": "*"})
        await mallory.create_relay("collector", HUB)
        expected = str(net.identifier(collector))

        def prepare(node: Node) -> None:
            traces_to(TRACES)(node)
            node.config = dataclasses.replace(node.config, traces_expect=expected)

        agent = await net.node("agent", prepare=prepare)
        await agent.enroll(net.ticket(), "agent")
        client = client_of(agent)
        queued = client.record(step(0))
        await until(lambda: client.failures > 0, "the client tried mallory")
        assert not queued.done
        assert await mallory.worker.run(records_of, mallory, net.identifier(agent)) == []
        assert pins_of(agent) == {}

    run_memnet(test, tmp_path / "home")


def test_traces_expect_must_be_an_identifier(tmp_path: Path) -> None:
    path = tmp_path / "node.json"
    config = NodeConfig("agent", traces=TRACES, traces_expect="collector")
    with pytest.raises(ConfigError, match="traces_expect is an identifier"):
        NodeConfig.from_json(config.to_json(), path)
    good = dataclasses.replace(config, traces_expect=str(Identifier(b"\x01" * 32)))
    assert NodeConfig.from_json(good.to_json(), path) == good


def test_a_pin_book_keeps_routes_in_their_text_form(tmp_path: Path) -> None:
    pins = RoutePins(tmp_path / "pins.json")
    assert pins.load() == {}
    who = Identifier(b"\x02" * 32)
    pins.pin(parse_route(f"{HUB}/relay/collector"), who)
    assert pins.load() == {f"{HUB}/relay/collector": who}
    write_private_file(tmp_path / "pins.json", b'{"version": 1, "pins": {"no route": "T0"}}')
    with pytest.raises(ConfigError, match="not a valid pin book"):
        pins.load()
