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
packet of it (`direct`, its peer route that connection and the peer's end, no hop between: a
party behind that node, its channel come over the same connection, is not it; review 72c,
notices 2). So it gives that node no power it lacked, and a frame no key made, or a notice
from any other peer, closes nothing (issue #8: no unauthenticated word is taken for a peer's
departure). A node sends at most `NOTICE_BURST` notices on a connection at once for one source
and regains one every `NOTICE_INTERVAL` s, within a total for the connection
(troth.node.notice_budgets; troth.limits): packets sent to many dead addresses are not answered
in kind, and one source does not spend the notices of the others (review 51h, notices 1-2).

Further along a chain of relays (a -> hub -> hub2 -> member), the packet that hub2 drops came
from the hub, not from its sender: hub2 tells the hub (over its own channel with the node at the
other end of that connection), and the hub passes it back to the node the packet came from
before it, the same way, hop by hop to the sender (review 50f, relays 2). A node passes one on
only from a channel whose peer is at the other end of the connection named the next hop of the
way it names, toward a connection that may reach that connection (the packet could have gone
that way: `AllowSet.allows`) or was cut off from it (it could until a relay's refusal cut it,
and its channels that way are dead: `AllowSet.cut_from`; review 71w, wave4a 1), under the
budget of the connection it came from (so what a peer sends toward a connection that never
reached it spends only its own), then that of the one it goes over, and puts the connection it
came from before the way, so each way names every hop from the receiver's connection to the
dead address. A sender closes its channel only when the way is the channel's own next hops
there: each hop on it could already drop every packet of it, and no one else says anything a
sender takes. Only a `/worker/...` address the packet's connection may reach (or was cut off
from: review 71s, relaywait 1) is answered at all (review 50f, relays 3; `Router.route`): a
peer learns nothing of an address it could never send to.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from troth import limits
from troth.channel import ChannelState
from troth.errors import ChannelFailure, DecodeError, TrothError
from troth.node.channel_sources import from_other_end
from troth.node.notice_budgets import NoticeBudgets
from troth.node.services.calls import forget_calls
from troth.routing import Address, Route, RoutedMessage, Source
from troth.routing.notice import NOTICE_SERVICE, no_route, parse_no_route
from troth.transport.connection import Connection

if TYPE_CHECKING:
    from troth.node.channel_ends import ChannelEnd
    from troth.node.channels import ChannelManager

__all__ = ["NOTICE_DETAIL", "NOTICE_DETAIL_PAST", "NoRouteNotices"]

log = logging.getLogger("troth.node.channels")

NOTICE_DETAIL: Final = "no route at the hub"
"""Why a channel closed by a notice for a dead address right after its first hop closed (its
waiting calls fail `Unreachable` with it)."""
NOTICE_DETAIL_PAST: Final = "no route at a relay past the hub"
"""`NOTICE_DETAIL` for a dead address further along (a notice passed back: the hub had a route;
review 53h, relays 1, where it read "no route at the hub")."""


class NoRouteNotices:
    """Sends no-route notices for what the router drops (`unroutable`, the router's hook) and
    takes them on the node's channels (`received`)."""

    def __init__(self, channels: ChannelManager) -> None:
        self._channels = channels
        self._budgets = NoticeBudgets()  # what each connection is sent
        self._taken = NoticeBudgets()  # what each passes back to us
        self._sending: set[asyncio.Task[None]] = set()

    # -- the node that dropped a packet ------------------------------------------------------

    def unroutable(self, message: RoutedMessage, source: Source) -> None:
        """`message`, from `source`, was dropped for its next hop (a `/worker/...` address
        `source` may reach that no worker serves): tell the node at the other end of the
        connection, when this node has an open channel with it over it and the connection's
        budget allows; it is the sender, or passes the notice back toward it."""
        route = message.return_route
        # the return route: the connection, then what the node before put there (its own
        # connection the packet came over, and so on), the sender's channel end last
        if not isinstance(source, Connection) or len(route) < 2 or not _local(route):
            return
        via = route[0]
        # the budget first: finding the channel looks at every channel over the connection;
        # the packet's source: the connection it came on at the node before, or that node for
        # its own (`from_other_end`: not by the route's length, a party behind it naming no
        # reply address has two hops too; review 73g, notices3 1)
        spender = via if from_other_end(route) else route[1]
        if not self.take(via, asyncio.get_running_loop().time(), spender):
            return
        end = self._direct_end(via)
        if end is None:
            return
        self._channels.counters.no_route_notices_sent += 1
        self._send(end, no_route((message.onward[0],), route[1:]))

    def _direct_end(self, via: Address) -> ChannelEnd | None:
        """An open channel of this node whose peer is at the other end of connection `via`."""
        for end in self._channels.ends_over(via):
            if (
                _at_other_end(end)
                and end.peer is not None
                and end.peer_route[0] == via
                and end.channel.state is ChannelState.OPEN
            ):
                return end
        return None

    def take(self, via: Address, now: float, source: Address | None = None) -> bool:
        """Spend one notice of connection `via`'s budget (what it is sent) at loop time `now`
        for `source` (None: the node at the other end of `via`; troth.node.notice_budgets);
        False when it has none."""
        return self._budgets.take(via, via if source is None else source, now)

    def forget(self, connection: Address) -> None:
        """`connection` closed: its budgets go."""
        self._budgets.forget(connection)
        self._taken.forget(connection)

    def _send(self, end: ChannelEnd, notice: bytes) -> None:
        message = RoutedMessage((end.enc, NOTICE_SERVICE), (), notice)
        task = asyncio.get_running_loop().create_task(self._route(message))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _route(self, notice: RoutedMessage) -> None:
        try:
            await self._channels.router.route(notice)
        except TrothError as exc:  # the channel closed meanwhile, or its way is congested
            log.debug("a no-route notice was not sent: %s", exc)

    # -- a notice that came out of a channel -------------------------------------------------

    def received(self, end: ChannelEnd, message: RoutedMessage) -> None:
        """A notice came out of `end`: taken only when `end`'s peer is at the other end of its
        connection (`direct`); then the stale channel it names is closed (a sender of one
        address: this node's channel end), or it is passed back toward its sender (more)."""
        channels = self._channels
        try:
            way, sender = parse_no_route(message.payload)
        except DecodeError as exc:
            channels.note("%s: dropped a malformed no-route notice: %s", end.name, exc)
            return
        if not _at_other_end(end):
            channels.note("%s: dropped a no-route notice from a peer past a hop", end.name)
            return
        if len(sender) > 1:
            self._pass_back(end, way, sender)
        else:
            self._close(end, way, sender[0])

    def _close(self, end: ChannelEnd, way: Route, sender: Address) -> None:
        """Close the channel whose end is `sender` when it runs over `end`'s connection and its
        next hops there are `way` (the dead address last)."""
        channels = self._channels
        stale = None
        if sender.value.endswith(".dec"):
            stale = channels.ends.get(Address("worker", sender.value[: -len(".dec")] + ".enc"))
        hops = len(way)
        if (
            stale is None
            or stale is end
            or stale.dec != sender
            or len(stale.peer_route) < 1 + hops
            or stale.peer_route[0] != end.peer_route[0]
            or stale.peer_route[1 : 1 + hops] != way
        ):
            channels.note("%s: dropped a no-route notice for no channel of ours", end.name)
            return
        peer = stale.peer.identifier if stale.peer else "?"
        detail = NOTICE_DETAIL if hops == 1 else NOTICE_DETAIL_PAST
        log.info("%s with %s closed: %s (%s)", stale.name, peer, detail, way[-1])
        channels.counters.closed_by_no_route += 1
        forget_calls(channels.router, stale.enc, f"{stale.name} closed: {detail}")
        channels.close_end(stale, ChannelFailure.PEER_CLOSED, detail)

    def _pass_back(self, end: ChannelEnd, way: Route, sender: Route) -> None:
        """Pass a notice from the node at the other end of `end`'s connection back over the
        connection the packet came on (`sender[0]`), when that connection may reach `end`'s
        (the way the packet went) or was cut off from it (it reached it before a relay's
        refusal cut it: the packet may have gone before the cut; review 71w, wave4a 1) and its
        budget allows, with `end`'s connection put first."""
        channels = self._channels
        ahead, back = end.peer_route[0], sender[0]
        if len(way) >= limits.MAX_ROUTE_LENGTH or not channels.router.has(back):
            channels.note("%s: dropped a no-route notice for no connection here", end.name)
            return
        # the budget of the connection it came from before the channel is looked for among
        # every channel over `back`; `back`'s only once it is found to go a way the packet
        # could have gone (what a peer sends toward another connection spends only its own)
        now = asyncio.get_running_loop().time()
        if not self._taken.take(ahead, back, now):
            return
        out = self._direct_end(back)
        source = out.source if out is not None else None
        if (
            out is None
            or not isinstance(source, Connection)
            or source.address != back
            or not (source.allows(ahead) or source.cut_from(ahead))
        ):
            channels.note("%s: dropped a no-route notice it could not pass back", end.name)
            return
        if not self.take(back, now, ahead):
            return
        channels.counters.no_route_notices_forwarded += 1
        self._send(out, no_route((ahead, *way), sender[1:]))


def _at_other_end(end: ChannelEnd) -> bool:
    """Whether `end`'s peer is the node at the other end of the connection the channel runs
    over: a `direct` channel whose peer route is that connection and the peer's channel end,
    nothing between (`from_other_end`). A party behind that node whose channel came over the
    same connection (a member of it that reached this node through it: review 66q) has its
    node's connection to it in between, which it cannot take out of the route (review 72c,
    notices 2: it was sent the node's notices and its own were taken as the node's), nor make
    the second hop by naming no return route of its own: that is a connection's, not a channel
    end's (review 72i, ends 1)."""
    return end.direct and from_other_end(end.peer_route)


def _local(route: Route) -> bool:
    """Whether every hop of `route` is node-local (`/worker/...`)."""
    return all(address.kind == "worker" for address in route)
