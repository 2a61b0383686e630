"""Review 49b, relays 1: a sender's first call to a member restarted behind a relay waited its
whole timeout (10 s) in the channel to the old member (docs/protocols.md, "Unanswered
channels"; the scenario of the reverted review 48u, in memory).

a holds a channel to b through the hub's relay (`/tcp/hub:4000/relay/b`); b crashes and starts
again, creates its relay again, and the hub forwards `/relay/b` to the new b. a's connection to
the hub never closed, so a's channel to the old b stayed open: its peer route names the old
b's connection at the hub (`/worker/tcp-…`), which is gone, and the hub dropped what a sent
into it without a word. Now the hub answers such a packet with a *no-route notice* on its own
channel with a over the same connection (authenticated by that channel; docs/formats.md,
"No-route notice"), and a closes the stale channel at once: the call waiting in it fails
(`Unreachable`, "no route at the hub") instead of waiting out its timeout, and the next call
opens a fresh channel to the new b. Asserted by outcome and counters, not by the clock.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_reconnect_restarted_member import TO_B, B, restarted_behind_relay
from tests.test_review44d_relays import until
from troth.encoding import cbor
from troth.errors import DecodeError, Unreachable
from troth.limits import NOTICE_BURST, NOTICE_INTERVAL
from troth.node.channel_ends import ChannelEnd
from troth.node.no_route import NoRouteNotices
from troth.node.runtime import NodeRuntime
from troth.routing import Address, RoutedMessage, parse_route
from troth.routing.notice import no_route, parse_no_route

GENEROUS = 60.0  # far past the channel's 10 s call timeout: only the outcome is asserted


def test_the_first_call_after_a_relayed_member_restarts_fails_fast(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        a, old = await restarted_behind_relay(net)
        hub = net.hub
        assert hub is not None

        # before: "no answer within 10 s" (the call's own timeout, in the dead channel)
        with pytest.raises(Unreachable, match="no route at the hub"):
            await asyncio.wait_for(a.send_message(TO_B, "first"), GENEROUS)
        assert old.channel.closed
        assert hub.channels.counters.no_route_notices_sent >= 1
        assert a.channels.counters.closed_by_no_route == 1
        assert await asyncio.wait_for(a.send_message(TO_B, "second"), GENEROUS) == "second"
        assert (await a.channel_to(B)) is not old

    run_memnet(test, tmp_path)


def direct_end(runtime: NodeRuntime) -> ChannelEnd:
    """`runtime`'s open channel whose peer is at the other end of its connection (a's link to
    the hub, or the hub's end of it)."""
    ends = [e for e in runtime.channels.ends.values() if e.direct and e.peer is not None]
    assert ends
    return ends[0]


def test_a_flood_to_dead_addresses_gets_at_most_a_burst_of_notices(tmp_path: Path) -> None:
    """a sends 50 packets to addresses the hub serves no more, over its connection, as fast as
    it can: the hub answers a burst of them (`NOTICE_BURST`), not one notice each. (Addresses
    a's connection could reach there, as the connections of 50 peers gone that it talked to:
    one it could not is not answered at all; review 50f, relays 3.)"""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a = await net.member("a")
        link = direct_end(a)
        connection = link.peer_route[0]
        at_hub = hub.tcp.connection(direct_end(hub).peer_route[0])
        assert at_hub is not None
        for n in range(50):
            dead = Address("worker", f"tcp-gone-{n}")
            at_hub.allow(dead)
            probe = RoutedMessage((connection, dead, Address("worker", "x")), (link.dec,), b"!")
            await a.router.route(probe)
        await until(lambda: hub.channels.counters.no_route_notices_sent >= NOTICE_BURST)
        assert hub.channels.counters.no_route_notices_sent < 50
        assert not link.channel.closed  # it named no channel of a's: nothing closed
        assert a.channels.counters.closed_by_no_route == 0

    run_memnet(test, tmp_path)


def test_a_connections_notice_budget_is_a_burst_then_one_an_interval() -> None:
    notices = NoRouteNotices(cast(Any, None))
    one, other = Address("worker", "tcp-one"), Address("worker", "tcp-other")
    assert [notices.take(one, 0.0) for _ in range(NOTICE_BURST + 2)] == [True] * NOTICE_BURST + [
        False,
        False,
    ]
    assert notices.take(other, 0.0)  # each connection its own budget
    assert notices.take(one, NOTICE_INTERVAL)
    assert not notices.take(one, NOTICE_INTERVAL)
    notices.forget(one)
    assert notices.take(one, NOTICE_INTERVAL)


VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "channel" / "keepalive_vectors.json").read_text()
)


def test_the_stored_no_route_notice_is_the_documented_array() -> None:
    vector = VECTORS["no_route_notice"]
    stored = bytes.fromhex(vector["bytes"])
    (dead,), (sender,) = parse_route(vector["dead"]), parse_route(vector["sender"])
    assert cbor.decode(stored) == [
        "troth.route.noroute",
        1,
        [dead.kind, dead.value],
        [sender.kind, sender.value],
    ]
    assert parse_no_route(stored) == ((dead,), (sender,))
    assert no_route((dead,), (sender,)) == stored
    for bad in (
        stored[:-1],
        cbor.encode(["troth.route.noroute", 3, [["worker", "a"]], [["worker", "b"]]]),
        cbor.encode(["troth.route.noroute", 1, ["service", "a"], ["worker", "b"]]),
    ):
        with pytest.raises(DecodeError):
            parse_no_route(bad)


def test_the_stored_no_route_notice_passed_back_is_the_documented_array() -> None:
    """Version 2 (review 50f, relays 2): a way and a sender route, not one address each; one
    of one address each is only ever version 1."""
    vector = VECTORS["no_route_notice_v2"]
    stored = bytes.fromhex(vector["bytes"])
    way, sender = parse_route(vector["way"]), parse_route(vector["sender"])
    assert cbor.decode(stored) == [
        "troth.route.noroute",
        2,
        [[a.kind, a.value] for a in way],
        [[a.kind, a.value] for a in sender],
    ]
    assert parse_no_route(stored) == (way, sender)
    assert no_route(way, sender) == stored
    for bad in (
        stored[:-1],
        cbor.encode(["troth.route.noroute", 2, [["worker", "a"]], [["worker", "b"]]]),
        cbor.encode(["troth.route.noroute", 2, [], [["worker", "a"], ["worker", "b"]]]),
        cbor.encode(
            ["troth.route.noroute", 2, [["worker", "a"]], [["relay", "b"], ["worker", "c"]]]
        ),
        cbor.encode(["troth.route.noroute", 2, [["worker", "a"]] * 17, [["worker", "b"]]]),
    ):
        with pytest.raises(DecodeError):
            parse_no_route(bad)
