"""A running node's channels to other nodes: opened once per route and reused while open
(`channel_to`, pinned to the identity expected there), or opened as another local identity;
and the connections closed under them (a silent peer's, another identity answering a pinned
channel, a handshake never answered). Part of `NodeRuntime` (troth.node.runtime).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from troth import limits
from troth.errors import ChannelError, ChannelFailure, TrothError
from troth.identity import Identifier
from troth.node.channel_ends import ChannelEnd
from troth.node.key_renewal import replace_at
from troth.node.links import Links
from troth.node.shown_identity import ShownIdentity
from troth.routing import Address, Route, format_route
from troth.transport import MemoryTransport, TcpTransport
from troth.transport.ratelog import RateLimitedLog

__all__ = ["ChannelOpening", "Transport"]

log = logging.getLogger("troth.node")

Transport = TcpTransport | MemoryTransport


class ChannelOpening(ShownIdentity):
    """Channels opened and reused, and connections closed (a part of `NodeRuntime`)."""

    tcp: Transport
    links: Links
    _open: dict[str, ChannelEnd]
    _opening: dict[str, asyncio.Lock]
    _rotations: int
    _dropping: set[Address]
    _kept: dict[Address, float]
    _drop_lines: RateLimitedLog
    if TYPE_CHECKING:

        def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...
        async def _create_relay_over(self, end: ChannelEnd, name: str) -> None: ...

    def _peer_closed(self, end: ChannelEnd) -> None:
        """A channel closed: its peer's cached standings go with its last channel."""
        peer = end.peer
        if peer is not None and not self.channels.holds_channels_of(peer.identifier):
            self.trust.forget_peer(peer.identifier)

    async def channel_to(
        self,
        route: Route,
        *,
        also_trust: frozenset[Identifier] = frozenset(),
        expect: Identifier | None = None,
        identity: str | None = None,
        claimed: bool = False,
    ) -> ChannelEnd:
        """An open channel to the node at `route` (reused while it stays open). `expect` pins
        the identity expected there: anyone else is refused (ChannelError PEER_NOT_ALLOWED
        naming both), and the connection it came over is closed as going to the wrong node
        (unless a link's pinned identity answers over it) — not when `claimed`: `expect` is
        then only what a ticket says is there (an enrollment's), and another identity
        answering says nothing of the connection (review 43c, resume 1: a hostile ticket
        naming a peer's address closed the node's channels with it at each resumption).
        `also_trust` admits these identities as if they were anchors. `identity` (a local
        identity other than the node's) opens the channel as that identity: its history,
        channel key and credentials (an agent leasing a secret as itself)."""
        if identity is not None and identity != self.name:
            return await self._channel_as(identity, route, expect)
        key = format_route(route)
        end = self._open.get(key)  # a channel there still open, its peer alive and the one
        if end is not None and self._reusable(end, expect):  # expected: reused without making,
            end.pinned = end.pinned or expect is not None  # taking and releasing the route's
            return end  # lock (a message sent, each time)
        if len(self._opening) > 1024:  # routes no one is opening a channel to now
            self._opening = {k: v for k, v in self._opening.items() if v.locked()}
        async with self._opening.setdefault(key, asyncio.Lock()):
            end = self._still_open(key, expect)
            if end is not None:
                end.pinned = end.pinned or expect is not None
                return end
            replaced = self._open.get(key)  # still open: past its time for the renewed key
            pinned = also_trust or expect is not None
            trust = self._channel_trust(also=also_trust, expect=expect) if pinned else None
            rotations = self._rotations
            try:
                end = await self.channels.open(route, trust=trust)
            except ChannelError as exc:
                refused = exc.reason is ChannelFailure.PEER_NOT_ALLOWED and not exc.by_peer
                if exc.reason is ChannelFailure.TIMEOUT:
                    self._drop_unanswered(route[0])
                elif refused and pinned and len(route) == 1 and not claimed:
                    # (not the peer's own refusal: it was the one expected; review 25, relays
                    # 1; nor a ticket's claim: review 43c, resume 1)
                    pin = self.links.pin(key)
                    self._drop_connection(
                        route[0], "another identity answered over it", pin, keep_pinned=True
                    )
                if rotations == self._rotations:
                    raise
                # `_rotated` closed it during the handshake: once more, with the new history
                end = await self.channels.open(route, trust=trust)
            self._open[key] = end
        end.pinned = end.pinned or expect is not None
        link = self.links.links.get(key)
        moved = None if link is None or link.end is not replaced else link.end
        self.links.opened(key, end)
        if moved is not None and link is not None and link.relays and not moved.channel.closed:
            self._spawn(self._move_relays(end, sorted(link.relays)))
        return end

    async def _move_relays(self, end: ChannelEnd, names: list[str]) -> None:
        """A link's channel replaced while still open (`_replacing`): its relays created again
        over the new one, as a reconnect's restore does, before the maintenance round closes
        the old one (the relay node then held the names, the link never reconnecting to create
        them: review 69c, renewal 2). One failing closes the new channel: the link reconnects
        and its restore tries again."""
        try:
            for name in names:
                await self._create_relay_over(end, name)
        except TrothError as exc:
            log.warning(
                "%s: relays not moved to it (%s): closed, the link reconnects", end.name, exc
            )
            await end.close()

    async def _channel_as(
        self, identity: str, route: Route, expect: Identifier | None
    ) -> ChannelEnd:
        """A channel to `route` as local identity `identity` (reused while open; not a link:
        nothing is restored when it dies)."""
        key = f"{identity} {format_route(route)}"  # a space is in no route nor name
        async with self._opening.setdefault(key, asyncio.Lock()):
            end = self._still_open(key, expect, own=False)
            if end is not None:
                return end
            me = await self._shown_as(identity)
            trust = self._channel_trust(expect=expect) if expect is not None else None
            end = await self.channels.open(route, trust=trust, me=me)
            self._open[key] = end
        return end

    def _still_open(
        self, key: str, expect: Identifier | None, *, own: bool = True
    ) -> ChannelEnd | None:
        """The channel opened under `key` if it is still open and its peer is `expect` (when
        given); else None: a new channel is opened, pinned to `expect`, and takes the key (an
        open channel another identity answered, opened without a pin, must not keep a pinned
        caller — a link — from the identity it expects: review 23b, relays 3)."""
        end = self._open.get(key)
        if end is None or end.enc not in self.channels.ends:
            return None
        if self._reusable(end, expect, own=own):
            return end
        if end.suspect(asyncio.get_running_loop().time()):
            # a request and a probe PING went unanswered (nothing authenticated since): the
            # peer is gone, e.g. restarted behind a relay, whose connection never closed.
            # Closed here, by what this node saw itself, and a fresh channel opened, rather
            # than calls sent into it until its keepalive timeout (45 s)
            log.warning("%s to %s: closed, no answer to a request nor a PING", end.name, key)
            self._spawn(end.close(ChannelFailure.TIMEOUT))
        return None

    def _reusable(self, end: ChannelEnd, expect: Identifier | None, *, own: bool = True) -> bool:
        """Whether `end` (open) is reused as it is: its peer looks alive (not `suspect`) and is
        `expect` (when given), and, `own` (opened as the node), it is not past its time to be
        replaced for the renewed channel key (`_replacing`). Nothing is changed: `_still_open`
        closes a suspect one."""
        if end.enc not in self.channels.ends or end.suspect(asyncio.get_running_loop().time()):
            return False
        if own and self._replacing(end):
            return False
        peer = end.peer
        return expect is None or (peer is not None and peer.identifier == expect)

    def _replacing(self, end: ChannelEnd) -> bool:
        """Whether `end` shows a channel key attestation the node has renewed since, and is
        past its time to be replaced (troth.node.key_renewal): a new channel takes the node's
        next requests, and the maintenance round closes this one once they are answered. Reused,
        the node's own requests kept it busy to its last time, and those in flight then failed
        with Unreachable (review 69c, renewal 2)."""
        me = self._me_cache
        shown = end.channel.me.attestation
        if me is None or shown == me.identity.attestation:
            return False
        at = replace_at(shown, end.id)
        return at is not None and self.clock.now() >= at

    def _drop_connection(
        self,
        address: Address,
        why: str = "its peer went silent",
        unless: Identifier | None = None,
        *,
        keep_pinned: bool = False,
    ) -> None:
        """Close a connection (new channels get a new one): the keepalive found it dead (its
        worker address), or a pinned channel over it (`/tcp/host:port`) was answered by
        another identity than the one expected at that address — unless a channel over it is
        answered by `unless` (the identity a link pins there: it goes to the right node), or,
        with `keep_pinned`, by an identity another caller pinned there (`ChannelEnd.pinned`:
        a fresh connection reaches the same node, so closing it reached the expected one no
        sooner and cut those channels, each within the backoff of a link whose node left the
        address; review 63r, reconnect 1) — for PINNED_CONNECTION_KEPT_SECONDS from the first
        such refusal, then closed once: the address may lead to the expected node again (review
        63y, reconnect 1: kept for good, the link never dialled it afresh)."""
        if address.kind == "tcp":
            connection = next(
                (c for c in self.tcp.connections() if c.outgoing and c.peer == address.value), None
            )
        else:
            connection = self.tcp.connection(address)
        if connection is None or connection.address in self._dropping:
            return  # already closing: a line a connection, not one per channel over it
        over, ends = (connection.address,), self.channels.ends.values()
        direct = [end for end in ends if end.direct and end.peer_route[:1] == over]
        if unless is not None and any(
            end.peer is not None and end.peer.identifier == unless for end in direct
        ):
            return  # an open channel over it is answered by `unless`: the right node
        if keep_pinned and any(end.pinned for end in direct) and self._keeps(connection.address):
            return  # answered by the node a caller expected there: the one at the address
        self._kept.pop(connection.address, None)
        self._dropping.add(connection.address)
        if connection.outgoing:
            log.warning("%s: closed, %s", connection.name, why)
        else:  # one a peer made: as many as it chooses, within lines a minute (review 24b)
            self._drop_lines.log(logging.WARNING, "%s: closed, %s", connection.name, why)
        task = self._spawn(connection.close())
        task.add_done_callback(lambda _: self._dropping.discard(connection.address))

    def _keeps(self, over: Address) -> bool:
        """Whether the connection `over` (its worker address) is still kept for the pinned
        channels over it: within PINNED_CONNECTION_KEPT_SECONDS of the first refusal it was
        kept for (review 63y, reconnect 1)."""
        now = asyncio.get_running_loop().time()
        if len(self._kept) >= 1024:  # connections closed since: forgotten
            live = {c.address for c in self.tcp.connections()}
            self._kept = {a: t for a, t in self._kept.items() if a in live}
        return now - self._kept.setdefault(over, now) < limits.PINNED_CONNECTION_KEPT_SECONDS

    def _drop_unanswered(self, address: Address) -> None:
        """A handshake over our connection to `address` got no answer: unless an open channel
        runs over that connection, it is dead too (a blackholed connection would otherwise
        swallow every later attempt)."""
        connection = next(
            (c for c in self.tcp.connections() if c.outgoing and c.peer == address.value), None
        )
        if connection is None:
            return
        for end in self.channels.ends.values():
            if end.peer_route[:1] == (connection.address,) and not end.channel.handshaking:
                return
        log.warning("%s: closed, no handshake answered over it", connection.name)
        self._spawn(connection.close())
