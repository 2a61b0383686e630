"""Review 68v (renewal: review 68t's replacement of a node's channels before its channel key's
attestation expires) findings.

renewal 1 (low): the maintenance round closed a channel at its replacement time whatever was
   in flight over it: a request this node had sent over it (a broker lease, an MCP tool call)
   failed with Unreachable (`channel … closed`), and a peer's request running on it was
   cancelled, by a close the node planned hours ahead, though the window left it rounds to
   find the channel idle. Now a channel with a request in flight either way is replaced at
   the first round past its time that finds it idle, and at its last time whatever is in
   flight: half-way from its own time to the window's end (KEY_REPLACE_MARGIN before the
   expiry), so busy channels are not all cut in one second either
   (`key_renewal.replace_times`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.errors import ChannelFailure, Unreachable
from troth.node import Node
from troth.node.access import AnyAuthenticated
from troth.node.key_renewal import replace_times
from troth.node.services.base import Method, RequestContext
from troth.node.services.calls import call
from troth.routing import Address

SLOW = Address("service", "slow")
TTL = 400  # as review 68t's tests: short attestations, the feeds kept fresh


class _Slow:
    """A service whose `wait` answers its argument once the test opens that argument's gate."""

    name = "slow"
    oneway = None

    def __init__(self) -> None:
        self.gates: dict[int, asyncio.Event] = {}
        self.started: dict[int, asyncio.Event] = {}
        self.methods = {"wait": Method(self.wait, AnyAuthenticated())}

    def gate(self, n: int) -> tuple[asyncio.Event, asyncio.Event]:
        return self.gates.setdefault(n, asyncio.Event()), self.started.setdefault(
            n, asyncio.Event()
        )

    async def wait(self, arguments: Any, context: RequestContext) -> Any:
        gate, started = self.gate(int(arguments))
        started.set()
        await gate.wait()
        return arguments

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        return {}


def _short_keys(node: Node) -> None:
    node.identities.purpose_key_ttl = TTL


async def advance_to(net: MemNet, when: int) -> None:
    """Move the clock to `when` in maintenance rounds of both nodes."""
    while net.clock.now() < when:
        net.clock.advance(min(20, when - net.clock.now()))
        for node in (net.hub, *net.runtimes[1:]):
            assert node is not None
            await node.maintain()
    await asyncio.sleep(0.01)  # the closes spawned


def test_a_request_in_flight_is_answered_over_a_channel_due_for_replacement(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        assert net.hub is not None
        slow = _Slow()
        net.hub.add_service(slow)
        a = await net.node("a", prepare=_short_keys)
        await a.enroll(net.ticket(), "a")
        end = await a.channel_to(route(HUB))
        times = replace_times(end.channel.me.attestation, end.id)
        assert times is not None
        at, last = times
        assert at < last

        first = asyncio.ensure_future(call(a.router, (end.enc, SLOW), "wait", 1, timeout=30))
        await asyncio.wait_for(slow.gate(1)[1].wait(), 2)
        await advance_to(net, at)  # its time: busy, kept
        assert not end.channel.closed
        slow.gate(1)[0].set()
        assert await first == 1  # answered, not Unreachable

        second = asyncio.ensure_future(call(a.router, (end.enc, SLOW), "wait", 2, timeout=30))
        await asyncio.wait_for(slow.gate(2)[1].wait(), 2)
        await advance_to(net, last)  # its last time: closed even so
        assert end.channel.closed
        assert end.channel.close_reason is ChannelFailure.NORMAL
        with pytest.raises(Unreachable, match="closed"):
            await second
        slow.gate(2)[0].set()

    run_memnet(test, tmp_path)


def test_an_idle_channel_is_replaced_at_its_own_time(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        a = await net.node("a", prepare=_short_keys)
        await a.enroll(net.ticket(), "a")
        end = await a.channel_to(route(HUB))
        times = replace_times(end.channel.me.attestation, end.id)
        assert times is not None
        await advance_to(net, times[0] - 1)
        assert not end.channel.closed
        await advance_to(net, times[0])
        assert end.channel.closed

    run_memnet(test, tmp_path)
