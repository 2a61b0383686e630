"""Review 48q, write budget 1: the TCP write buffers of all connections together had no bound.

Each connection's event-loop write buffer is capped (`TcpSettings.write_buffer`, 1 MiB), but a
peer that never reads holds up to that much until the write timeout drops it, so the
connection cap (1,024) let peers that never read hold ~1 GiB for as long as they asked for
answers (review 48h measured +12-16 MiB with 16 such connections). Against a real node process
on loopback (as tests/test_node_load.py): peers that never read send frames to a relay that
does not exist, each answered with a route error along a long return route (as many bytes as
the frame: no amplification, but the answers pile up in the node); the node's memory must stay
under the documented bound (the write buffers' node-wide budget, `write_buffer_total`, plus
the queues' total) while a legitimate peer gets its echo within 1 s."""

from __future__ import annotations

import socket
import sys
import threading
import time

import pytest

from tests.support.cli import run_json
from tests.support.load import (
    LIVENESS,
    MiB,
    NodeProcess,
    Nodes,
    attacker_addresses,
    close_all,
    hub_and_member,
    nodes_fixture,  # noqa: F401  (the fixture `nodes`)
    timed_echo,
)
from troth import limits
from troth.routing import Address, RoutedMessage
from troth.transport import frame

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and 127/8"),
]

PEERS = 24  # connections that never read (from 2 addresses: under the per-source cap)
ANSWERED_PER_PEER = int(1.5 * MiB)  # bytes of answers each peer asks for
RATE = 3000  # frames a second, all peers together (paced: the machine's load does not decide)
BUDGET = 4 * MiB  # the write buffers' node-wide budget here
QUEUED_TOTAL = 1 * MiB  # the queues' node-wide bound here
SLACK = 8 * MiB  # connection state, the allocator, what one write adds per connection
ENVIRONMENT = {
    "TROTH_TCP_WRITE_TIMEOUT": "60",  # the peers stay for the measurement
    "TROTH_TCP_FRAME_TIMEOUT": "60",
    # the read side held small (its bounds are per connection, not what this test is about)
    "TROTH_TCP_LARGE_READ_BUFFER": str(16 * 1024),
    "TROTH_TCP_MAX_QUEUED_FRAMES": "4",
    "TROTH_TCP_MAX_QUEUED_BYTES": str(256 * 1024),
    "TROTH_TCP_MAX_QUEUED_TOTAL": str(QUEUED_TOTAL),
    "TROTH_TCP_WRITE_BUFFER_TOTAL": str(BUDGET),
}


def never_reading(source: str, node: NodeProcess) -> socket.socket:
    """A connection from `source` whose peer never reads (its receive buffer small, so the
    node's answers stay in the node's memory)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # small segments: the node's kernel sizes its send buffer by them (loopback's 64 KiB
        # ones let it take megabytes of answers out of the node's own memory)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        sock.settimeout(10)
        sock.bind((source, 0))
        sock.connect(node.host_port)
    except BaseException:
        sock.close()
        raise
    return sock


def unanswerable() -> bytes:
    """A frame to a relay that does not exist, with the longest return route (15 addresses of
    `MAX_ADDRESS_TEXT` characters; the node puts the connection's own first): the node answers
    it `relay not found` along that route, an answer about as large as the frame."""
    long = Address("worker", "x" * limits.MAX_ADDRESS_TEXT)
    back = (long,) * (limits.MAX_ROUTE_LENGTH - 1)
    return frame(RoutedMessage((Address("relay", "nowhere"),), back, bytes(32)).encode())


def flood(sockets: list[socket.socket], stop: threading.Event) -> threading.Thread:
    """A thread that sends `unanswerable` frames to every socket, in rounds, `RATE` a second
    in all, until each has asked for `ANSWERED_PER_PEER` bytes of answers (a socket whose send
    would block is left alone: a frame half sent would be the node's frame timer's)."""
    data = unanswerable()
    rounds = ANSWERED_PER_PEER // len(data) + 1

    def run() -> None:
        start = time.monotonic()
        sent = 0
        live = list(sockets)
        for _ in range(rounds):
            for sock in list(live):
                if stop.is_set():
                    return
                try:
                    sock.settimeout(0.5)
                    sock.sendall(data)
                except OSError:
                    live.remove(sock)
                sent += 1
                delay = start + sent / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_peers_that_never_read_hold_no_more_than_the_write_budget(nodes: Nodes) -> None:
    """24 connections from 2 addresses never read and each ask for 1.5 MiB of answers (route
    errors along a long return route), 3,000 frames a second in all: before, each connection's
    write buffer held up to its 1 MiB (+33 MiB measured); now, past the node-wide budget (4 MiB
    here) the connections holding unsent bytes get no more in their write buffers (their
    frames queue, within the queues' bound, 1 MiB here, and are dropped once they stall), so
    the node grows by less than the budget, the queues and some slack, and a legitimate peer
    gets its echo within 1 s meanwhile."""
    net = hub_and_member(nodes, environment=ENVIRONMENT)
    echo = f"{net.hub.address}/service/echo"
    timed_echo(echo)  # the legitimate peer's channel is open before
    before = net.hub.rss()
    sources = attacker_addresses(2, subnet=7)
    attackers = [never_reading(sources[n % 2], net.hub) for n in range(PEERS)]
    stop = threading.Event()
    try:
        thread = flood(attackers, stop)
        thread.join(60)
        time.sleep(1)  # the last answers are written by now
        assert timed_echo(echo) < LIVENESS
        during = net.hub.rss()
        counters = run_json("node", "status", "hub")["counters"]["tcp"]
    finally:
        stop.set()
        close_all(attackers)
    assert during - before < BUDGET + QUEUED_TOTAL + SLACK, (before, during, counters)
    assert counters.get("held_back", 0) >= 1, counters  # the attack was real: the budget acted
    assert timed_echo(echo) < LIVENESS
