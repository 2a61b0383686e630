"""Hostile load against real node processes on loopback (issue 8, "Hold under hostile load";
docs/protocols.md, "Load limits"). For each attack: the node's memory (RSS) stays under the
documented bound, and a legitimate peer opens a new secure channel and gets an echo answer
within 1 s while the attack runs (the issue's liveness requirement, measured by the client;
nothing is retried). Attacks are paced or bounded so that the test does not simply saturate
the machine itself.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest

from tests.support.cli import run, run_json
from tests.support.load import (
    LIVENESS,
    HandshakeFlood,
    MiB,
    Nodes,
    Stranger,
    attacker_addresses,
    close_all,
    closed_by_node,
    connect,
    echo_route,
    enroll_and_start,
    garbage_frame,
    hub_and_member,
    junk_to,
    nodes_fixture,  # noqa: F401  (the fixture `nodes`)
    paced,
    raise_descriptor_limit,
    timed_echo,
)
from troth.node.channels import ChannelEnd
from troth.node.daemon import control, node_status
from troth.routing import Address, Router
from troth.transport import TcpSettings, TcpTransport

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and 127/8"),
]

RELAY_B = Address("relay", "b")


def test_garbage_frames_on_1000_connections_memory_bounded_and_given_back(nodes: Nodes) -> None:
    """1,000 connections (from 16 source addresses, under the per-source cap) each send one
    complete 17 KB garbage frame and go silent. Read buffers cost only the pages written and
    go back to the system; the idle timeout (shortened through the environment) closes every
    connection; a second round leaves the node no larger than the first did (what the
    allocator keeps after the first is reused, nothing accumulates)."""
    # not shorter (75a citime: the 1,000 connect in ~5 s, and an idle timeout of 4 s closed so
    # many before the peak that buffers a bytearray each measured +65 MiB, not +153)
    idle = 6
    # the node refuses an idle timeout below twice the keepalive interval (review 57c)
    environment = {"TROTH_TCP_IDLE_TIMEOUT": str(idle), "TROTH_CHANNELS_KEEPALIVE_INTERVAL": "3"}
    net = hub_and_member(nodes, environment=environment, max_files=4096)  # cap: 1,024
    raise_descriptor_limit(1200)
    sources = attacker_addresses(16)
    garbage = garbage_frame(17_000)
    before = net.hub.rss()
    after: list[int] = []
    for round_ in range(2):
        attackers = []
        try:
            during = before
            for n in range(1000):
                sock = connect(sources[n % len(sources)], net.hub)
                sock.sendall(garbage)
                attackers.append(sock)
                if n % 100 == 99:  # the peak: the first ones idle out while the last connect
                    during = max(during, net.hub.rss())
            time.sleep(0.5)  # the node reads the last ones
            during = max(during, net.hub.rss())
            assert during - before < 64 * MiB, (before, during)
            if round_ == 0:
                assert timed_echo(echo_route(net.hub.address)) < LIVENESS
            assert closed_by_node(attackers, timeout=idle + 10) == len(attackers)
        finally:
            close_all(attackers)
        after.append(net.hub.rss())
    assert after[0] - before < 40 * MiB, (before, after)
    assert after[1] - after[0] < 8 * MiB, (before, after)


def test_out_of_descriptors_idle_connections_cannot_lock_out_a_handshake(nodes: Nodes) -> None:
    """`ulimit -n 256` (the node caps accepted connections at half: 128), 300 idle connections
    from 10 source addresses: new connections evict silent ones, a legitimate handshake
    still succeeds, and the node's log grows by a few lines only (rate limited)."""
    net = hub_and_member(nodes, max_files=256)
    log_before = net.hub.log_size()
    before = net.hub.rss()
    sources = attacker_addresses(10, subnet=2)
    attackers = []
    try:
        for n in range(300):
            attackers.append(connect(sources[n % len(sources)], net.hub))
        time.sleep(0.5)
        assert timed_echo(echo_route(net.hub.address)) < LIVENESS
        evicted = 300 - 128  # evicted or refused (waited for until that many)
        assert closed_by_node(attackers, timeout=3, at_least=evicted) >= evicted
        time.sleep(2)
        during = net.hub.rss()
    finally:
        close_all(attackers)
    assert timed_echo(echo_route(net.hub.address)) < LIVENESS  # the open channel still works
    log = net.hub.log.read_text()[log_before:]
    assert net.hub.log_size() - log_before < 4096, log
    assert "Traceback" not in log, log
    assert during - before < 16 * MiB, (before, during)


@pytest.mark.parametrize("source_count", [1, 20], ids=["one-source", "20-sources"])
def test_a_handshake_flood_leaves_room_for_a_legitimate_handshake(
    nodes: Nodes, source_count: int
) -> None:
    """A burst of 260 handshake messages 1, then 50 a second: from 127.0.0.2 alone (its 16
    half-open handshakes are all it gets), or from 20 addresses (together they hold the global
    256). A legitimate handshake from 127.0.0.1 still completes: its source holds none, so it
    is under its own limit and, at the global one, evicts the largest source's oldest."""
    net = hub_and_member(nodes)
    before = net.hub.rss()
    sources = ["127.0.0.2"] if source_count == 1 else attacker_addresses(20, subnet=3)
    flood = HandshakeFlood(net.hub, sources)
    started = time.monotonic()
    try:
        flood.burst(260)
        flood.start(rate=50, duration=20)
        time.sleep(0.5)  # the node has taken the burst up
        assert timed_echo(echo_route(net.hub.address)) < LIVENESS
        time.sleep(0.5)
    finally:
        flood.stop()
    elapsed = time.monotonic() - started
    during = net.hub.rss()
    assert flood.answered >= 1  # the node did answer the flood: the attack is real
    if source_count == 1:  # one source: at most 16 at once, freed by the 10 s timeout
        assert flood.answered <= 16 * (1 + int(elapsed // 10))
    assert during - before < 16 * MiB, (before, during)


def test_incomplete_reassemblies_bounded_per_peer_and_node_and_expired_by_timer(
    nodes: Nodes,
) -> None:
    """Four strangers (any authenticated identity reaches a node that hosts an authority)
    each open 3 channels and leave a 16 MiB message incomplete on each. Each peer holds at
    most 2 x (16 MiB + 64 KiB); all peers together at most the node's total (64 MiB here,
    set through the environment): the channels over it are closed. The legitimate peer is
    unaffected, and the timer (reassembly timeout 6 s here) gives everything back: the
    surviving channels can hold as much again."""
    # longer than the attack takes on a loaded machine (~1 s measured at a load average of 4):
    # all of it is held at once (12 s before 75a citime: the test waits it out)
    timeout = 6
    limits = {
        "TROTH_CHANNELS_REASSEMBLY_TIMEOUT": str(timeout),
        "TROTH_CHANNELS_REASSEMBLY_SWEEP": "0.5",
        "TROTH_CHANNELS_MAX_REASSEMBLY_TOTAL": str(64 * MiB),
    }
    net = hub_and_member(nodes, environment=limits)
    before = net.hub.rss()

    async def attack() -> tuple[int, int, list[bool]]:
        router = Router()
        tcp = TcpTransport(router, TcpSettings())
        strangers = [Stranger(router) for _ in range(4)]
        try:
            held: list[tuple[Stranger, ChannelEnd]] = []
            for stranger in strangers:
                for _ in range(3):
                    end = await stranger.open(net.hub)
                    await stranger.hold_incomplete(end, 16 * MiB)
                    if await stranger.still_open(end):
                        held.append((stranger, end))
            seconds = await asyncio.to_thread(timed_echo, echo_route(net.hub.address))
            assert seconds < LIVENESS
            during = net.hub.rss()
            # the timer gives the incomplete messages up: waited for as it happens (a fixed
            # timeout + 2 s before, 72f ci). Each held message is 16 MiB but its last packet,
            # so the n (<= 4) held are all given up once the node released over n x 15 MiB.
            deadline = time.monotonic() + timeout + 30  # (a bound for a failure only)
            while await asyncio.to_thread(expired, nodes, net.hub.name) <= len(held) * 15 * MiB:
                assert time.monotonic() < deadline, "the incomplete messages were kept"
                await asyncio.sleep(0.2)
            again = []
            for stranger, end in held:
                await stranger.hold_incomplete(end, 16 * MiB)
                again.append(await stranger.still_open(end))
            return len(held), during, again
        finally:
            for stranger in strangers:
                await stranger.manager.close_all()
            await tcp.close()

    survivors, during, again = asyncio.run(attack())
    assert 1 <= survivors <= 4  # 64 MiB hold 4 incomplete 16 MiB messages at most
    assert during - before < 96 * MiB, (before, during)  # 4 x 32 MiB without the node's bound
    assert all(again), again  # the timer released both budgets, the peers' and the node's
    assert net.hub.rss() - before < 96 * MiB


def expired(nodes: Nodes, name: str) -> int:
    """The bytes of incomplete messages node `name` gave up at their reassembly timeout
    (`troth node status --json`: counters, channels)."""
    answer = control(nodes.home, name, "status", {}, status=node_status(nodes.home, name))
    return int(answer["counters"]["channels"]["reassembly_expired_bytes"])


def test_junk_injected_at_a_relayed_nodes_channel_ends_closes_nothing(nodes: Nodes) -> None:
    """Node b has no listener and is reachable as HUB/relay/b. A party that can reach the hub
    (and saw the hub<->b link: it knows b's channel-end addresses) sends junk packets to every
    channel end of b through the relay, 200 a second. Every channel stays open, a's channel
    through the relay keeps working, and a new handshake through the relay (from c)
    completes."""
    net = hub_and_member(nodes)
    b = enroll_and_start(nodes, "b", ("agents.team=x", "troth.relay=b"))
    run("relay", "create", "b", "--at", net.hub.address, "--node", "b")
    relayed = f"{net.hub.address}/relay/b/service/echo"
    timed_echo(relayed)  # a's channel to b, through the relay
    enroll_and_start(nodes, "c", ("agents.team=x",))
    channels = {row["id"]: row for row in run_json("channel", "list", "--node", "b")}
    assert len(channels) >= 2  # b -> hub (it carries the relay) and a -> b
    log_before = b.log_size()
    ends = [(RELAY_B, Address("worker", f"{id_}.dec")) for id_ in channels]
    attacker = connect("127.0.0.3", net.hub)
    stop = threading.Event()
    sent = 0

    def inject() -> None:
        nonlocal sent
        for n in paced(200, 20, lambda n: attacker.sendall(junk_to(ends[n % len(ends)]))):
            sent = n
            if stop.is_set():
                return

    thread = threading.Thread(target=inject, daemon=True)
    thread.start()
    try:
        time.sleep(1)
        assert timed_echo(relayed) < LIVENESS  # a's open channel through the relay
        assert timed_echo(relayed, sender="c") < LIVENESS  # a new handshake through it
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(10)
        attacker.close()
    after = {row["id"]: row for row in run_json("channel", "list", "--node", "b")}
    assert sent >= 200
    for id_ in channels:  # the same channels, all open
        assert after[id_]["state"] == "open", after
    assert timed_echo(relayed) < LIVENESS
    log = b.log.read_text()[log_before:]
    assert "dropped a frame" in log  # the junk did reach b's channel ends (logged, limited)
    assert b.log_size() - log_before < 4096, log
