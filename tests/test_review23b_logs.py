"""Review 23b (a node under hostile peers: what a peer's messages write to the node's log).

1. a node logs at INFO to `node.log` (appended, never rotated), and docs/protocols.md ("Load
   limits") bounds the lines misbehaving peers cause: 10 a minute from the transport, 10 a
   minute from the channels. Three places below them log a line for every message a channel's
   peer sends, unlimited: a request whose envelope cannot be read (`ServiceHost`: "dropped a
   malformed request"), an inner message to an address the channel may not reach or that is
   malformed (`ChannelManager._deliver`: "no route", "dropped a malformed inner message"), and
   an answer to a request not in flight (`Calls.answer`: "dropped an answer ... not in
   flight"). Any authenticated identity reaches a node that hosts an authority, so a stranger
   writes a line to the hub's disk for every ~60-byte message it sends (and a peer we call,
   for every forged answer).

2. the same when channels close: every channel a peer opened writes a line when it closes with
   its connection ("closed: its connection closed") or by its keepalive, unlimited. A stranger
   opens 256 channels over one connection (the per-source limit; identities are free) and
   drops the connection: 256 lines, again at every reconnect.

Each test asserts the secure behaviour and was a strict xfail until its fix. Fixed: 1. those
lines go through rate-limited logs (`RateLimitedLog`: the channel manager's, 10 a minute; the
service host's and the calls' own, `LOG_LINES_PER_MINUTE`), the rest counted as before;
2. a channel a peer opened logs its close within the channel manager's lines a minute (one
this node opened, a line each, as before).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_reconnect import until
from troth.channel import ChannelTrust
from troth.node.runtime import NodeRuntime
from troth.node.services import call, error_response
from troth.node.services.base import FAILED, calls_through, encode_request
from troth.routing import Address, RoutedMessage

FLOOD = 200  # bad messages of each kind
LOGGERS = ("troth.node.services", "troth.node.channels")


async def _stranger_at_hub(net: MemNet) -> tuple[NodeRuntime, NodeRuntime, ChannelTrust]:
    """The hub, a node that is none of its authority's members, and the trust it opens
    channels to the hub with."""
    hub = net.hub
    assert hub is not None
    assert hub.identifier is not None
    stranger = await net.node("stranger")
    return hub, stranger, stranger._channel_trust(also=frozenset({hub.identifier}))


def test_a_peers_bad_messages_write_a_bounded_number_of_log_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stranger's channel to the hub: 200 unreadable requests, 200 requests to a service it
    may not reach, 200 unreadable inner messages; and the hub answers 200 requests the
    stranger never sent. Each is dropped (or answered `no-route`) and counted; the log gets a
    few lines a minute of them, not one each."""

    async def test(net: MemNet) -> None:
        hub, stranger, trust = await _stranger_at_hub(net)
        end = await stranger.channels.open(route(HUB), trust=trust)
        with pytest.raises(Exception, match="refused"):  # echo is members only: one call made
            await call(stranger.router, (end.enc, Address("service", "echo")), "echo", "hi")
        calls = calls_through(stranger.router, end.enc)
        (theirs,) = [e for e in hub.channels.ends.values() if e.peer_route]
        caplog.clear()
        with caplog.at_level(logging.INFO):
            back = (calls.address,)
            for n in range(FLOOD):
                bad = RoutedMessage((end.enc, Address("service", "echo")), back, b"\x01")
                await stranger.router.route(bad)
                nope = (end.enc, Address("service", "nope"))
                await stranger.router.route(RoutedMessage(nope, back, encode_request(n, "x", 1)))
                end.channel.send(b"\xff\xff not a routed message")
                await end.flush()
                forged = error_response(FAILED, "forged", request=n)
                await hub.router.route(RoutedMessage((theirs.enc, calls.address), (), forged))
            await until(lambda: calls.dropped >= 2 * FLOOD)  # the forged and the no-route
            await until(lambda: hub.host.malformed >= FLOOD)
        lines = [r for r in caplog.records if r.name.startswith(LOGGERS)]
        assert len(lines) <= 40, f"{len(lines)} lines for {4 * FLOOD} bad messages"

    run_memnet(test, tmp_path / "home", budget=30)


def test_channels_a_peer_opened_write_a_bounded_number_of_lines_when_they_close(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stranger opens 60 channels to the hub over its one connection, then closes the
    connection: the hub closes the 60 channels, and logs a few lines a minute of them."""

    async def test(net: MemNet) -> None:
        hub, stranger, trust = await _stranger_at_hub(net)
        for _ in range(60):
            await stranger.channels.open(route(HUB), trust=trust)
        opened = len(hub.channels.ends)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            (connection,) = stranger.tcp.connections()
            await connection.close()
            await until(lambda: len(hub.channels.ends) <= opened - 60)
        who = str(stranger.identifier)  # the hub's lines name the stranger (its own, the hub)
        lines = [r for r in caplog.records if r.name.startswith(LOGGERS) and who in r.getMessage()]
        assert len(lines) <= 20, f"{len(lines)} lines for 60 channels closed"

    run_memnet(test, tmp_path / "home", budget=30)
