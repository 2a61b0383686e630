"""Review 48h, routes 1: route headers at `limits.MAX_ROUTE_HEADER_BYTES` held by the header
caches (troth.routing.message).

Every frame's route header is decoded through an LRU cache of 1,024 entries (a stream repeats
its route frame after frame), and every header written through another. Their bound was on
entries, not bytes: a header may take 8,192 bytes, and its decoded routes (32 addresses of
up to 256 characters) as much again, so 1,024 distinct headers near the limit held ~20 MiB in
the decode cache and as much in the encode cache (a relay re-encodes each with a return route
one hop longer), for good. Anyone who reaches a listener sends them (nothing authenticates a
route header): ~8 MB of frames, one per distinct header, left the node ~20-40 MiB larger.
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc

import pytest

from tests.support.load import (
    LIVENESS,
    MiB,
    Nodes,
    close_all,
    connect,
    hub_and_member,
    nodes_fixture,  # noqa: F401  (the fixture `nodes`)
    timed_echo,
)
from troth import limits
from troth.errors import RoutingError
from troth.routing import Address, RoutedMessage
from troth.routing.message import CACHED_HEADER
from troth.transport import frame

HEADERS = 1200  # distinct route headers: past the caches' 1,024 entries


def long_route(first: Address | None, count: int, size: int) -> tuple[Address, ...]:
    """`count` worker addresses of `size` characters, distinct in their first 8 (random)."""
    route = tuple(Address("worker", os.urandom(4).hex() + "x" * (size - 8)) for _ in range(count))
    return (first, *route[1:]) if first is not None else route


def largest_message(onward_first: Address) -> RoutedMessage:
    """A message whose route header is the largest a router reads or writes (within 64 bytes
    of `MAX_ROUTE_HEADER_BYTES`: 16 onward addresses and 16 return ones, each as long as
    fits), distinct from every other's."""
    size = 256
    while True:
        onward = long_route(onward_first, 16, size)
        message = RoutedMessage(onward, long_route(None, 16, size), b"p")
        try:
            header = len(message.header())
        except RoutingError:
            size -= 1
            continue
        assert limits.MAX_ROUTE_HEADER_BYTES - 64 < header <= limits.MAX_ROUTE_HEADER_BYTES
        return message


def test_distinct_largest_route_headers_are_not_kept_by_the_caches() -> None:
    """Was a strict xfail until the caches kept only small headers (`CACHED_HEADER`).
    In-process: 1,200 distinct headers near the limit, each written and read once, leave
    the caches holding less than 4 MiB (a cache keeps only headers that small routes make)."""
    messages = [largest_message(Address("relay", "b")) for _ in range(HEADERS)]
    encoded = [m.encode() for m in messages]  # outside the measure: the frames themselves
    del messages
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for data in encoded:
            message = RoutedMessage.decode(data)
            message.header()  # the writer's cache: a relay writes it again
            del message
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 4 * MiB, held / MiB


@pytest.mark.load
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and 127/8")
def test_distinct_largest_route_headers_leave_the_node_no_larger(nodes: Nodes) -> None:
    """Was a strict xfail until the caches kept only small headers (`CACHED_HEADER`).
    1,200 frames to a node's listener, each with a route header near the limit and distinct
    from the others, to a relay that is not there (dropped, counted): the node's memory grows
    by less than 8 MiB, and a legitimate peer opens a channel and gets its echo within 1 s."""
    net = hub_and_member(nodes)
    timed_echo(f"{net.hub.address}/service/echo")  # the node's own caches warm
    before = net.hub.rss()
    attacker = connect("127.0.0.4", net.hub)
    try:
        for _ in range(HEADERS):
            attacker.sendall(frame(largest_message(Address("relay", "nobody")).encode()))
        time.sleep(0.5)
        assert timed_echo(f"{net.hub.address}/service/echo", sender="a") < LIVENESS
        time.sleep(0.5)
        during = net.hub.rss()
    finally:
        close_all([attacker])
    assert during - before < 8 * MiB, (before / MiB, during / MiB)


def test_the_caches_worst_case_is_a_few_mib() -> None:
    """The largest headers the caches keep, 1,200 distinct of each: routes of `CACHED_HOPS`
    addresses of 256 characters (the encoder's), headers of at most `CACHED_HEADER` bytes
    (the decoder's, 3 addresses of up to 256 characters): both caches together hold less
    than 8 MiB."""
    keep = RoutedMessage(long_route(None, 3, 256), long_route(None, 3, 256), b"")
    assert len(keep.header()) <= 2048
    small = [
        RoutedMessage(long_route(None, 2, 256), long_route(None, 1, 256), b"").encode()
        for _ in range(HEADERS)
    ]
    assert all(len(data) <= CACHED_HEADER for data in small)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(HEADERS):
            RoutedMessage(long_route(None, 3, 256), long_route(None, 3, 256), b"").header()
        for data in small:
            RoutedMessage.decode(data)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 8 * MiB, held / MiB
