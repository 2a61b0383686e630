"""Review 48h: attacks on a node under hostile load that the code already met (each a passing
test against real node processes on loopback, as tests/test_node_load.py: memory via VmRSS, a
legitimate peer opens a channel and gets its echo within 1 s while the attack runs)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import pytest

from tests.support.cli import run, run_json
from tests.support.load import (
    LIVENESS,
    MiB,
    NodeProcess,
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
    nodes_fixture,  # noqa: F401  (the fixture `nodes`)
    paced,
    timed_echo,
)
from troth import limits
from troth.channel.packets import LENGTH
from troth.errors import Congested, TrothError
from troth.node.channels import ChannelManager
from troth.node.services.protocol import encode_request
from troth.routing import Address, RoutedMessage, Router
from troth.transport import TcpSettings, TcpTransport, frame
from troth.transport.framing import FRAME_HEADER, FRAME_VERSION

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and 127/8"),
]

RELAY_B = Address("relay", "b")


def drip(sockets: list[socket.socket], stop: threading.Event) -> threading.Thread:
    """A thread that sends one byte a second on each socket until `stop` (or it closed)."""

    def run() -> None:
        while not stop.wait(1.0):
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.send(b"\x00", socket.MSG_DONTWAIT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_slowloris_frames_announcing_the_largest_size_are_closed_by_the_frame_timers(
    nodes: Nodes,
) -> None:
    """120 connections from 4 addresses announce a frame of `MAX_TRANSPORT_FRAME` bytes and
    then send one byte a second: half as their first frame, half after one complete frame (so
    only the frame timer, not the first-frame one, applies). The bytes keep coming, but a
    started frame must finish within `frame_timeout` (3 s here) and a first frame arrive within
    `first_frame_timeout` (3 s): the node closes every one of them, holds no more memory than a
    page or two each, and a legitimate peer gets its echo within 1 s meanwhile."""
    environment = {"TROTH_TCP_FRAME_TIMEOUT": "3", "TROTH_TCP_FIRST_FRAME_TIMEOUT": "3"}
    net = hub_and_member(nodes, environment=environment)
    before = net.hub.rss()
    header = FRAME_HEADER.pack(FRAME_VERSION, limits.MAX_TRANSPORT_FRAME)
    sources = attacker_addresses(4, subnet=6)
    attackers: list[socket.socket] = []
    stop = threading.Event()
    try:
        for n in range(120):
            sock = connect(sources[n % len(sources)], net.hub)
            if n % 2:
                sock.sendall(garbage_frame(64))  # a first frame: only the frame timer is left
            sock.sendall(header + b"\x00")
            attackers.append(sock)
        thread = drip(attackers, stop)
        time.sleep(1)
        assert closed_by_node(attackers, timeout=0.1) == 0  # still held, bytes arriving
        assert timed_echo(echo_route(net.hub.address)) < LIVENESS
        during = net.hub.rss()
        assert closed_by_node(attackers, timeout=10) == len(attackers)
    finally:
        stop.set()
        close_all(attackers)
    thread.join(5)
    assert during - before < 16 * MiB, (before, during)
    assert timed_echo(echo_route(net.hub.address)) < LIVENESS


def flood_without_reading(hub: NodeProcess, seconds: float, rate: int, report: Connection) -> None:
    """In a process of its own (the legitimate peer's timing is not the attacker's loop's):
    a stranger opens a channel to `hub` over a socket whose kernel holds little for it (its
    receive buffer set before it connects, so the window it offers stays small), stops
    reading, says "flooding", and sends `feed` requests to the authority, `rate` a second
    (paced, so that the test does not simply saturate the machine), never reading an answer,
    until the node drops it, the test says "stop", or `seconds` pass (a bound, not the
    attack's length); then reports the requests sent and why it stopped. It never gives up on
    the node itself: when the node reads it more slowly than it sends (its CPU busy with the
    flood), its requests wait and it goes on."""

    async def attack() -> tuple[int, str]:
        router = Router()
        patient = TcpSettings(stall_timeout=600, write_timeout=600, frame_timeout=600)
        tcp = TcpTransport(router, patient)
        stranger = Stranger(router)
        sent = 0
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, hub.host_port)
        connect = loop.create_connection

        async def over_sock(factory: Any, *_where: object, **_options: object) -> Any:
            return await connect(factory, sock=sock)  # (the transport connects to hub only)

        loop.create_connection = over_sock  # type: ignore[method-assign,assignment]
        try:
            end = await stranger.open(hub)
            loop.create_connection = connect  # type: ignore[method-assign]
            (connection,) = tcp.connections()
            transport = connection._socket
            assert transport is not None
            transport.pause_reading()  # the attacker never reads again
            route = (end.enc, Address("service", "authority"))
            nowhere = (Address("worker", "nowhere"),)
            report.send("flooding")
            start = loop.time()
            while loop.time() < start + seconds and not connection.closed.is_set():
                if report.poll():  # "stop"
                    return sent, "stopped"
                for _ in range(100):
                    request = encode_request(sent, "feed", [0])
                    try:
                        await router.route(RoutedMessage(route, nowhere, request))
                    except Congested:  # the node reads it more slowly than it sends: wait
                        await asyncio.sleep(0.05)
                        break
                    except TrothError as exc:  # the node dropped the connection (or channel)
                        return sent, repr(exc)
                    sent += 1
                await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
            return sent, "its connection closed" if connection.closed.is_set() else "time up"
        finally:
            loop.create_connection = connect  # type: ignore[method-assign]
            await stranger.manager.close_all()
            await tcp.close()

    try:
        report.send(asyncio.run(attack()))
    except BaseException as exc:
        report.send(repr(exc))


def test_an_authenticated_peer_that_floods_requests_and_never_reads_is_dropped(
    nodes: Nodes,
) -> None:
    """A stranger (any authenticated identity reaches a node that hosts an authority) opens a
    channel, stops reading its connection, and sends 10,000 `feed` requests a second to the
    authority, never reading an answer. The answers fill the connection's write buffer (64 KiB
    here) and queue (256 KiB here), the peer stalls (frames for it dropped) and, not reading
    for `write_timeout` (3 s here), is dropped; the node's memory stays within the bounds, and
    a legitimate peer gets its echo within 1 s while the flood runs (one member's requests do
    not starve another's).

    The flood goes on until the node has dropped the attacker (the test waits for its counters
    to say so, up to a bound: about 5 s here). A flood of a fixed 6 s skipped about a third of
    runs, nothing backed up on the node: its attacker gave up as soon as the node (its CPU busy
    with the flood) read it more slowly than it sent (its own stall timeout), before the
    answers passed what the node's kernel took for it (review 49f)."""
    environment = {
        "TROTH_TCP_WRITE_BUFFER": str(64 * 1024),
        "TROTH_TCP_MAX_QUEUED_BYTES": str(256 * 1024),
        "TROTH_TCP_WRITE_TIMEOUT": "3",
    }
    net = hub_and_member(nodes, environment=environment)
    before = net.hub.rss()
    log_before = net.hub.log_size()
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    attacker = multiprocessing.get_context("fork").Process(
        target=flood_without_reading, args=(net.hub, 120.0, 10_000, theirs), daemon=True
    )
    attacker.start()
    try:
        assert ours.poll(30)
        assert ours.recv() == "flooding"
        time.sleep(1.5)  # the answers are filling the buffers by now
        assert timed_echo(echo_route(net.hub.address)) < LIVENESS
        during = net.hub.rss()
        counters, ended = dropped_not_reading(ours, timeout=90)
        ours.send("stop")  # (dropped: it has stopped, or stops now)
        assert ended is not None or ours.poll(30)
        sent = ended if ended is not None else ours.recv()
    finally:
        attacker.join(10)
        if attacker.is_alive():
            attacker.kill()
    assert isinstance(sent, tuple), sent
    assert during - before < 16 * MiB, (before, during)
    log = net.hub.log.read_text()[log_before:]
    assert "Traceback" not in log, log
    assert timed_echo(echo_route(net.hub.address)) < LIVENESS
    assert counters["stalled"] >= 1, counters  # the attack was real: the answers backed up
    assert counters["closed_not_reading"] >= 1, counters


def dropped_not_reading(
    attacker: Connection, timeout: float
) -> tuple[dict[str, int], object | None]:
    """The hub's TCP counters once they show a connection closed for not reading, and the
    attacker's report if it came meanwhile (an AssertionError with both after `timeout`)."""
    deadline = time.monotonic() + timeout
    ended: object | None = None
    while True:
        counters: dict[str, int] = run_json("node", "status", "hub")["counters"]["tcp"]
        if counters["closed_not_reading"] >= 1:
            return counters, ended
        if ended is None and attacker.poll():
            ended = attacker.recv()
        assert time.monotonic() < deadline, f"the flooder was not dropped: {counters}, {ended}"
        time.sleep(0.5)


def test_one_identity_from_many_source_addresses_holds_its_per_peer_channels_only(
    nodes: Nodes,
) -> None:
    """One stranger identity opens 3 channels from each of 4 source addresses (4 TCP
    connections, 127.0.7.1-4) with the per-peer limit at 8 (set through the environment): 8
    open, the others are refused (the limit counts the identity, whatever its addresses), and
    a legitimate peer gets its echo within 1 s."""
    environment = {"TROTH_CHANNELS_MAX_CHANNELS_PER_PEER": "8"}
    net = hub_and_member(nodes, environment=environment)

    async def attack() -> int:
        loop = asyncio.get_running_loop()
        connect_from = loop.create_connection
        first = Stranger(Router())
        strangers: list[Stranger] = []
        transports: list[TcpTransport] = []
        for source in attacker_addresses(4, subnet=7):
            router = first.router if not strangers else Router()
            stranger = first if not strangers else Stranger(router)
            stranger.manager = ChannelManager(  # the first's identity
                router, me=first.manager.me, trust=first.manager.trust, services=frozenset
            )
            strangers.append(stranger)
            transports.append(TcpTransport(router, TcpSettings()))
            loop.create_connection = functools.partial(  # type: ignore[method-assign]
                connect_from, local_addr=(source, 0)
            )
            try:
                await transports[-1].connect(*net.hub.host_port)
            finally:
                loop.create_connection = connect_from  # type: ignore[method-assign]
        try:
            opened = 0
            for _ in range(3):
                for stranger in strangers:
                    try:
                        end = await stranger.open(net.hub)
                    except TrothError:
                        continue
                    opened += await stranger.still_open(end)
            sockets = [c._socket for t in transports for c in t.connections()]
            sources = {s.get_extra_info("sockname")[0] for s in sockets if s is not None}
            assert len(sources) == 4  # the identity's channels came from 4 addresses
            seconds = await asyncio.to_thread(timed_echo, echo_route(net.hub.address))
            assert seconds < LIVENESS
            return opened
        finally:
            for stranger in strangers:
                await stranger.manager.close_all()
            for transport in transports:
                await transport.close()

    assert asyncio.run(attack()) == 8


def large_junk_to(route: tuple[Address, ...]) -> bytes:
    """A TCP frame carrying a packet of two 60,000-byte "transport" frames of junk (the
    receiver tries to authenticate the first: an AEAD over 60 KB, which fails) along `route`:
    ~120 KB, near the largest packet."""
    body = b"\x02" + os.urandom(60_000 - 1)
    packet = (LENGTH.pack(len(body)) + body) * 2
    return frame(RoutedMessage(route, (), packet).encode())


def test_a_bandwidth_flood_through_a_relay_does_not_starve_the_relayed_nodes_channels(
    nodes: Nodes,
) -> None:
    """Node b has no listener and is reachable as HUB/relay/b. An attacker that reaches the
    hub sends ~120 KB packets of junk to b's channel ends through the relay, 300 a second
    (~36 MB/s, all of it for b's one connection to the hub, which it shares with every
    relayed sender). The hub's queue for b stays bounded and the attacker's own routing waits
    (backpressure), b drops the junk, every channel stays open, a's channel through the relay
    and a new handshake through it (from c) are answered within 1 s, and neither node's memory
    grows past the bounds."""
    net = hub_and_member(nodes)
    b = enroll_and_start(nodes, "b", ("agents.team=x", "troth.relay=b"))
    run("relay", "create", "b", "--at", net.hub.address, "--node", "b")
    relayed = f"{net.hub.address}/relay/b/service/echo"
    timed_echo(relayed)  # a's channel to b, through the relay
    enroll_and_start(nodes, "c", ("agents.team=x",))
    channels = {row["id"]: row for row in run_json("channel", "list", "--node", "b")}
    ends = [(RELAY_B, Address("worker", f"{id_}.dec")) for id_ in channels]
    junk = [large_junk_to(end) for end in ends]
    hub_before, b_before = net.hub.rss(), b.rss()
    log_before = b.log_size()
    attacker = connect("127.0.0.8", net.hub)
    stop = threading.Event()
    sent = 0

    def inject() -> None:
        nonlocal sent
        for n in paced(300, 20, lambda n: attacker.sendall(junk[n % len(junk)])):
            sent = n
            if stop.is_set():
                return

    thread = threading.Thread(target=inject, daemon=True)
    thread.start()
    try:
        time.sleep(1.5)
        assert timed_echo(relayed) < LIVENESS  # a's open channel through the relay
        assert timed_echo(relayed, sender="c") < LIVENESS  # a new handshake through it
        hub_during, b_during = net.hub.rss(), b.rss()
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(10)
        attacker.close()
    after = {row["id"]: row for row in run_json("channel", "list", "--node", "b")}
    assert sent >= 300  # the attack was real: ~36 MB through the relay
    for id_ in channels:  # the same channels, all open
        assert after[id_]["state"] == "open", after
    assert hub_during - hub_before < 16 * MiB, (hub_before, hub_during)
    assert b_during - b_before < 16 * MiB, (b_before, b_during)
    log = b.log.read_text()[log_before:]
    assert "dropped a frame" in log  # the junk did reach b's channel ends
    assert "Traceback" not in log, log
