"""A long-running sender's channel to a member that restarted behind its relay (left from
review 44d as "stays dead for up to 45 s"; docs/protocols.md, "Keepalive").

a has a channel to b through the hub's relay (`/tcp/hub:4000/relay/b`). b is killed and
started again; it creates its relay again, and the hub forwards to the new b. a's connection
is to the hub, which never closed, so nothing closed a's channel: every call a sent went into
it, the new b (which has no such channel) dropped it, and each call failed "no answer within
10 s" until a's keepalive closed the channel 45 s after b's last frame.

Was a strict xfail until a channel this node opened probes its peer with a PING when a message
sent on it gets nothing authenticated back (`ChannelEnd.probe`), and `channel_to` closes one
whose message and probe both went unanswered (`ChannelEnd.suspect`) and opens a fresh channel:
the first call after b is back fails within its own timeout (or succeeds), the next one
reaches the new b. Only this node's own sends and authenticated frames decide it: a live peer
answers the probe, and junk injected into the channel neither makes it suspect nor clears it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_review44d_relays import FAST, crash_and_restart, until
from troth.errors import TrothError
from troth.node.channel_ends import PROBE_AFTER, PROBE_WAIT, ChannelEnd
from troth.node.channels import ChannelLimits
from troth.node.links import LinkState
from troth.node.runtime import SINK, NodeRuntime
from troth.routing import RoutedMessage, parse_route

TO_B = f"{HUB}/relay/b/service/echo"
B = parse_route(f"{HUB}/relay/b")


async def relayed_b(net: MemNet) -> None:
    b = await net.node("b", backoff=FAST)
    await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
    await b.create_relay("b", HUB)


async def restarted_behind_relay(net: MemNet) -> tuple[NodeRuntime, ChannelEnd]:
    """b behind the hub's relay, a member a that called it (its channel to b: returned), then b
    crashed and restarted, up at the relay and linked again: (a, a's old channel to b)."""
    await relayed_b(net)
    b = net.runtimes[-1]
    a = await net.member("a")
    assert await a.send_message(TO_B, "before") == "before"
    old = await a.channel_to(B)
    hub = net.hub
    assert hub is not None
    b = await crash_and_restart(net, b)
    await until(lambda: hub.status()["services"]["relay"]["b"]["state"] == "up")
    await until(lambda: b.link_rows()[0].state is LinkState.CONNECTED)
    return a, old


def test_a_sender_reaches_a_member_restarted_behind_its_relay(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        a, old = await restarted_behind_relay(net)
        back = time.monotonic()
        try:  # the first call may go into the dead channel: it fails within its timeout
            first = await asyncio.wait_for(a.send_message(TO_B, "first"), 15)
        except TrothError:
            first = None
        assert first in (None, "first")
        assert await asyncio.wait_for(a.send_message(TO_B, "second"), 15) == "second"
        assert time.monotonic() - back < 25  # well before the keepalive timeout (45 s)
        assert old.channel.closed
        assert (await a.channel_to(B)).peer == old.peer  # the same b, a fresh channel

    run_memnet(test, tmp_path)


def test_a_live_peer_that_does_not_answer_a_message_is_not_suspect(tmp_path: Path) -> None:
    """A one-way message gets no answer, and junk injected into the channel meanwhile is no
    news of the peer: the probe PING is answered by the live b, and the channel is reused."""

    async def test(net: MemNet) -> None:
        await relayed_b(net)
        quick = ChannelLimits(keepalive_interval=4.0)  # the channel timer every second
        a = await net.node("a", limits=quick)
        await a.enroll(net.ticket(), "a")
        assert await a.send_message(TO_B, "before") == "before"
        end = await a.channel_to(B)
        await a.send_oneway(B, SINK, b"no answer")
        deadline = time.monotonic() + PROBE_AFTER + PROBE_WAIT + 3
        while time.monotonic() < deadline:
            junk = b"\x00\x21\x02" + b"\x00" * 32  # a transport frame no key made
            await a.router.route(RoutedMessage((end.dec,), (), junk))
            await asyncio.sleep(0.2)
        assert sum(end.channel.drops.values()) > 0  # the junk reached it, and was dropped
        assert not end.channel.closed
        assert not end.suspect(asyncio.get_running_loop().time())
        assert await a.channel_to(B) is end
        assert await a.send_message(TO_B, "after") == "after"

    run_memnet(test, tmp_path)
