"""Review 53g, buffers 1, against a real node process on loopback (as tests/test_node_load.py;
marker `load`): 200 connections from 4 addresses (under the per-source cap) each send a burst
of 600 KB (their read buffers grown to 512 KiB, written through) and then a frame of 17 KiB,
just over the small read buffer, every sweep (each second here). Review 49f's sweep kept each
large buffer for that trickle (at most the small buffer since the sweep before shrank it):
~100 MiB held for ~3.4 MB/s. Now a large buffer is kept only by half of it or more a sweep
interval, so the node gives them back; a legitimate peer gets its echo meanwhile (not timed:
this test is about memory)."""

from __future__ import annotations

import sys
import time

import pytest

from tests.support.load import (
    MiB,
    Nodes,
    attacker_addresses,
    close_all,
    connect,
    echo_route,
    garbage_frame,
    hub_and_member,
    nodes_fixture,  # noqa: F401  (the fixture `nodes`)
    raise_descriptor_limit,
    timed_echo,
)

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and 127/8"),
]

SWEEP = 1.0
"""Seconds between the hub's TCP sweeps here (and between the trickle's frames)."""


def test_a_trickle_just_over_the_small_buffer_keeps_no_large_read_buffers(nodes: Nodes) -> None:
    # the sweep runs every quarter of the shortest TCP timeout: 1 s with a first frame due
    # within 4 s (each attacker sends its burst as it connects), not 2.5 s (75a citime: the
    # trickle stays one frame a sweep, so the same 17 KiB a sweep keeps no 512 KiB)
    net = hub_and_member(nodes, environment={"TROTH_TCP_FIRST_FRAME_TIMEOUT": str(4 * SWEEP)})
    raise_descriptor_limit(400)
    sources = attacker_addresses(4, subnet=5)
    burst, trickle = garbage_frame(120_000) * 5, garbage_frame(17 * 1024)
    before = net.hub.rss()
    attackers = []
    try:
        for n in range(200):
            sock = connect(sources[n % len(sources)], net.hub)
            sock.sendall(burst)
            attackers.append(sock)
        for _ in range(4):  # 4 s: past three sweeps (every 1 s)
            for sock in attackers:
                sock.sendall(trickle)
            time.sleep(SWEEP)
        during = net.hub.rss()
        timed_echo(echo_route(net.hub.address))  # the legitimate peer is answered
    finally:
        close_all(attackers)
    # measured: +139 MiB before (the large buffers), +45 MiB now (what the allocator keeps of
    # the burst's frames, and the connections' state)
    assert during - before < 72 * MiB, (before, during)
