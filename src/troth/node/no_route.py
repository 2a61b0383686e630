"""No-route notices on a node (docs/protocols.md, "Unanswered channels"; docs/formats.md,
"No-route notice"; review 49b, relays 1).

A member behind a relay that restarts comes back on a new connection to the hub; a sender's
channel to the old member names the old connection at the hub (`/worker/tcp-…`), which no
worker serves now, and the hub dropped what the sender sent into it without a word: the
sender's call waited its whole timeout (10 s). Now the node that drops such a packet (its next
hop a `/worker/...` address it does not serve, from a transport connection) tells the sender
so over its own open channel with the sender at the other end of that same connection
(`ChannelEnd.direct`), and the sender closes the stale channel at once, its waiting calls
failing `Unreachable` ("no route at the hub").

The notice is authenticated by that channel, and is taken only from a channel whose peer is at
the other end of the stale channel's first hop: the one node that could already drop every
packet of it. So it gives that node no power it lacked, and a frame no key made, or a notice
from any other peer, closes nothing (issue #8: no unauthenticated word is taken for a peer's
departure). A node sends at most `NOTICE_BURST` notices on a connection at once and regains
one every `NOTICE_INTERVAL` s: packets sent to many dead addresses are not answered in kind.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from troth.channel import ChannelState
from troth.errors import ChannelFailure, DecodeError, TrothError
from troth.node.services.calls import forget_calls
from troth.routing import Address, RoutedMessage, Source
from troth.routing.notice import NOTICE_SERVICE, no_route, parse_no_route
from troth.transport.connection import Connection

if TYPE_CHECKING:
    from troth.node.channel_ends import ChannelEnd
    from troth.node.channels import ChannelManager

__all__ = ["NOTICE_BURST", "NOTICE_INTERVAL", "NoRouteNotices"]

log = logging.getLogger("troth.node.channels")

NOTICE_BURST: Final = 4
"""The most no-route notices a node sends back to back on one connection."""
NOTICE_INTERVAL: Final = 1.0
"""Seconds a connection takes to regain one notice past its burst."""
MAX_NOTICE_BUCKETS: Final = 4096
"""The most connections whose notice budgets are kept; past it, a full (refilled) one is
dropped first, and with none full a notice is not sent (deny when in doubt)."""
NOTICE_DETAIL: Final = "no route at the hub"
"""Why a channel closed by a notice closed (its waiting calls fail `Unreachable` with it)."""


class NoRouteNotices:
    """Sends no-route notices for what the router drops (`unroutable`, the router's hook) and
    takes them on the node's channels (`received`)."""

    def __init__(self, channels: ChannelManager) -> None:
        self._channels = channels
        self._budgets: dict[Address, tuple[float, float]] = {}  # connection: (level, at)
        self._sending: set[asyncio.Task[None]] = set()

    # -- the node that dropped a packet ------------------------------------------------------

    def unroutable(self, message: RoutedMessage, source: Source) -> None:
        """`message`, from `source`, was dropped for its next hop (a `/worker/...` address no
        worker serves): tell its sender, when it is at the other end of the connection, has an
        open channel with this node over it, and the connection's budget allows."""
        route = message.return_route
        # the sender is the node at the other end of the connection (its return route: the
        # connection, then its own channel end); a message that came from further on (one a
        # hub forwarded to this node) is not answered: its sender is not on this connection
        if not isinstance(source, Connection) or len(route) != 2 or route[1].kind != "worker":
            return
        via, sender = route[0], route[1]
        # the budget first: finding the channel looks at every channel over the connection
        if not self.take(via, asyncio.get_running_loop().time()):
            return
        end = self._direct_end(via)
        if end is None:
            return
        self._channels.counters.no_route_notices_sent += 1
        notice = RoutedMessage((end.enc, NOTICE_SERVICE), (), no_route(message.onward[0], sender))
        task = asyncio.get_running_loop().create_task(self._send(notice))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def _direct_end(self, via: Address) -> ChannelEnd | None:
        """An open channel of this node whose peer is at the other end of connection `via`."""
        for end in self._channels.ends_over(via):
            if (
                end.direct
                and end.peer is not None
                and end.peer_route[:1] == (via,)
                and end.channel.state is ChannelState.OPEN
            ):
                return end
        return None

    def take(self, via: Address, now: float) -> bool:
        """Spend one notice of connection `via`'s budget at loop time `now`; False when it has
        none."""
        budgets = self._budgets
        level, at = budgets.get(via, (float(NOTICE_BURST), now))
        level = min(float(NOTICE_BURST), level + (now - at) / NOTICE_INTERVAL)
        if via not in budgets and len(budgets) >= MAX_NOTICE_BUCKETS:
            full = [k for k, (v, t) in budgets.items() if v + (now - t) / NOTICE_INTERVAL >= 1]
            if not full:
                return False
            del budgets[full[0]]
        if level < 1:
            budgets[via] = (level, now)
            return False
        budgets[via] = (level - 1, now)
        return True

    def forget(self, connection: Address) -> None:
        """`connection` closed: its budget goes."""
        self._budgets.pop(connection, None)

    async def _send(self, notice: RoutedMessage) -> None:
        try:
            await self._channels.router.route(notice)
        except TrothError as exc:  # the channel closed meanwhile, or its way is congested
            log.debug("a no-route notice was not sent: %s", exc)

    # -- the sender --------------------------------------------------------------------------

    def received(self, end: ChannelEnd, message: RoutedMessage) -> None:
        """A notice came out of `end`: close the stale channel it names when `end`'s peer is at
        the other end of that channel's first hop (`direct`, the same connection), and the
        address it names dead is the hop after it; anything else is dropped."""
        channels = self._channels
        try:
            dead, sender = parse_no_route(message.payload)
        except DecodeError as exc:
            channels.note("%s: dropped a malformed no-route notice: %s", end.name, exc)
            return
        if not end.direct or not end.peer_route or not sender.value.endswith(".dec"):
            channels.note("%s: dropped a no-route notice from a peer past a hop", end.name)
            return
        stale = channels.ends.get(Address("worker", sender.value[: -len(".dec")] + ".enc"))
        if (
            stale is None
            or stale is end
            or stale.dec != sender
            or len(stale.peer_route) < 2
            or stale.peer_route[0] != end.peer_route[0]
            or stale.peer_route[1] != dead
        ):
            channels.note("%s: dropped a no-route notice for no channel of ours", end.name)
            return
        peer = stale.peer.identifier if stale.peer else "?"
        log.info("%s with %s closed: %s (%s)", stale.name, peer, NOTICE_DETAIL, dead)
        channels.counters.closed_by_no_route += 1
        forget_calls(channels.router, stale.enc, f"{stale.name} closed: {NOTICE_DETAIL}")
        channels.close_end(stale, ChannelFailure.PEER_CLOSED, NOTICE_DETAIL)
