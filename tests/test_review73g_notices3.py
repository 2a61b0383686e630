"""Review 73g, notices3: a second review of who a relay takes for the node at the other end of a
connection (review 72c, notices 2; review 72i, ends 1), attacked as a member behind a hub and
as a stranger connecting directly (each test failed before its fix).

1. (low-medium: a member starving its hub's own notices) A packet dropped for a dead
   `/worker/...` hop spent the notice budget of the source the node at the other end of its
   connection names in its return route (`route[1]`, the connection it came on there), but
   only for a route of more than two hops; one of two hops was taken for that node's own
   packet and spent that node's share. Since review 72i a party behind that node that names no
   reply address of its own arrives with two hops too (the connection, and that node's
   connection to it: `channel_sources.from_other_end` false), so a member behind hub H sending
   a few packets a second to a dead address H's connection may reach (a reply path, a cut
   mark) spent H's own share: H's own calls to a restarted member waited their timeout, told
   nothing. Now a route is that node's own only when `from_other_end` says so; any other spends
   the share of the hop that node put second (its connection to the party, by host).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, cast

import pytest

import troth.node.notice_budgets as notice_budgets
from tests.test_channel_manager import Net, run, until
from tests.test_review71w_refuted import _hub, _settle
from tests.test_review71w_wave4a import _connection
from troth.errors import RoutingError
from troth.limits import NOTICE_BURST
from troth.node.channels import _MESSAGE_1, LISTENER, ChannelLimits
from troth.routing import Address, RoutedMessage, Router
from troth.routing.notice import parse_no_route
from troth.transport.connection import Connection

_OWN_END = Address("worker", "chan-00000000000000b1.dec")
"""The hub's own channel end (its reply address: what its own packets name)."""
_AT_HUB = Address("worker", "tcp-0000000000000m01")
"""The hub's connection to its member (what the hub puts in the route of the member's)."""


async def _into(router: Router, hub: Connection, dead: Address, *back: Address) -> None:
    """A packet over connection `hub` into `dead`, its return route `hub` then `back`."""
    message = RoutedMessage((dead, Address("service", "echo")), (hub.address, *back), b"x")
    with pytest.raises(RoutingError):
        await router.route(message, hub)


def test_a_member_naming_no_reply_address_spends_its_own_share_not_the_hubs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """73g notices3 1: a member behind the hub at the other end of connection `h`, naming no
    reply address (its route: `h` and the hub's connection to it), sends more packets into a
    dead address `h` may reach than a source's burst; the hub's own packet after them still
    gets its notice (before: the member had spent the hub's own share, and it got none)."""
    monkeypatch.setattr(notice_budgets, "NOTICE_INTERVAL", 1e9)  # no refill in this test
    monkeypatch.setattr(notice_budgets, "NOTICE_CONNECTION_INTERVAL", 1e9)

    async def test() -> None:
        h, dead = _connection(), Address("worker", "tcp-dead")
        h.allow(dead)
        router, hub = _hub(h)
        for _ in range(2 * NOTICE_BURST):
            await _into(router, h, dead, _AT_HUB)
        await _into(router, h, dead, _OWN_END)
        await _settle()
        senders = [parse_no_route(m.payload)[1] for m in hub.sent]
        assert senders.count((_AT_HUB,)) == NOTICE_BURST  # the member's share, spent
        assert senders[-1:] == [(_OWN_END,)]  # the hub's own, untouched

    asyncio.run(test())


# -- 2: the handshake rate a node's members spend for it ----------------------------------------


class _Member:
    """A party behind b, sending messages 1 to the hub over b's connection (b puts its
    connection to it in the route, as a relay does), or b itself sending its own; what the
    hub answers is dropped at b (no handshake is finished: the openings are never given back)."""

    def __init__(self, hub: Any, b: Any) -> None:
        self.hub, self.b = hub, b
        (self.connection,) = b.transport.connections()
        self.connection.allowed.permit(_AT_HUB)
        self.sent = 0
        b.router.register(_AT_HUB, self._sink)

    async def _sink(self, message: RoutedMessage, source: object) -> None:
        pass

    async def opens(self, *, own: bool = False) -> bool:
        """Send one message 1 (`own`: b's own, from a channel end of b's); whether the hub took
        it up (else it refused it at its handshake rate)."""
        counters = self.hub.manager.counters
        started, refused = counters.handshakes_started, counters.refused_handshake_rate
        self.sent += 1
        reply = Address("worker", f"chan-{self.sent:016x}.dec")
        self.b.router.register(reply, self._sink)
        back = (reply,) if own else (_AT_HUB, reply)
        first = _MESSAGE_1 + bytes(range(32))
        message = RoutedMessage((self.connection.address, LISTENER), back, first)
        await self.b.router.route(message)
        await until(
            lambda: (
                counters.handshakes_started > started or counters.refused_handshake_rate > refused
            )
        )
        return bool(counters.handshakes_started > started)

    async def drain(self) -> None:
        """Messages 1 until the hub refuses one at its handshake rate."""
        for _ in range(8):
            if not await self.opens():
                return
        raise AssertionError("never refused")


@pytest.mark.xfail(
    strict=True,
    reason="73g notices3 2: the fix is in node/channels.py (73c's file this session): "
    "`_make_room` spends a forwarded message 1's opening under a key of its own",
)
def test_members_spending_the_handshake_rate_leave_the_nodes_own_openings() -> None:
    """73g notices3 2: b's members flood the hub with messages 1 over b's connection and never
    finish them, refused at the hub's handshake rate each second; b's own message 1 is still
    taken up within the next second's refill (before: they spent the share of b's host, which
    b's own draws on too, and b's own was refused, its open failing at its handshake timeout,
    for as long as they kept it up; reviews 72p and 72r kept b room in the channel and
    half-open limits, not in the rate)."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(handshake_burst=4, handshake_rate=2))
        b = await net.relayed(hub, "b")
        member = _Member(hub, b)
        loop = asyncio.get_running_loop()
        real, offset = loop.time, [0.0]
        offset[0] = math.ceil(real()) - real() + 0.01  # a whole second ahead of the rates'
        cast("Any", loop).time = lambda: real() + offset[0]  # next refill, then one refill
        await member.drain()
        offset[0] += 1.0
        await member.drain()
        assert await member.opens(own=True)

    run(test)
