"""Secure channels on a node: the asyncio glue between the sans-IO SecureChannel and the
router. Each channel end has two workers:

    /worker/chan-<id>.dec   frames from the peer: decrypt, then route the inner message with
                            this channel as its Source (it reaches only what the peer may)
    /worker/chan-<id>.enc   local messages to send through the channel: encrypt, forward

The listener (`/service/channels`) answers handshakes and creates responder ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from troth.channel import (
    Accepted,
    ChannelIdentity,
    ChannelSettings,
    ChannelState,
    ChannelTrust,
    Closed,
    Established,
    Received,
    SecureChannel,
    VerifiedPeer,
)
from troth.errors import ChannelError, ChannelFailure, DecodeError, RoutingError, TrothError
from troth.node.services import error_response
from troth.routing import Address, Route, RoutedMessage, Router, Source

__all__ = ["LISTENER", "ChannelEnd", "ChannelManager"]

log = logging.getLogger("troth.node.channels")
LISTENER = Address("service", "channels")
MAX_HALF_OPEN = 256  # responder ends still in their handshake, per node
MAX_REPLY_PATHS = 1024  # reply paths a channel remembers (oldest forgotten first)
_MESSAGE_1 = b"\x00\x21\x01"  # a packet of one 33-byte handshake frame: "-> e", no payload

Access = Callable[[VerifiedPeer], frozenset[Address]]
"""Which node addresses messages from this peer may reach (default deny)."""


class ChannelEnd:
    """One end of a secure channel on this node; the Source of the messages it decrypts."""

    def __init__(
        self,
        manager: ChannelManager,
        channel: SecureChannel,
        peer_route: Route,
        source: Source | None = None,
    ) -> None:
        self.manager = manager
        self.channel = channel
        self.peer_route = peer_route
        self.source = source  # the connection that brought message 1 (responders)
        token = os.urandom(8).hex()
        self.enc = Address("worker", f"chan-{token}.enc")
        self.dec = Address("worker", f"chan-{token}.dec")
        self.name = f"channel {token}"
        self.established: asyncio.Future[VerifiedPeer] = asyncio.get_running_loop().create_future()
        # a responder's failure has no waiter: mark the exception as seen
        self.established.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._granted: frozenset[Address] = frozenset()  # what the peer may reach, per policy
        self._replies: dict[Address, None] = {}  # reply paths of local senders (bounded)
        self.messages_in = 0
        self.messages_out = 0

    @property
    def peer(self) -> VerifiedPeer | None:
        return self.channel.peer

    # -- Source (for decrypted messages) ---------------------------------------------------------

    def allows(self, address: Address) -> bool:
        return address in self._granted or address in self._replies

    def allow(self, address: Address) -> None:
        replies = self._replies
        if address not in replies:
            if len(replies) >= MAX_REPLY_PATHS:
                del replies[next(iter(replies))]
            replies[address] = None

    def forget(self, address: Address) -> None:
        self._replies.pop(address, None)

    # -- workers -----------------------------------------------------------------------------------

    async def from_peer(self, message: RoutedMessage, source: Source | None) -> None:
        if not self.peer_route and message.return_route:
            self.peer_route = message.return_route  # the initiator learns the way back
        events = self.channel.receive(message.payload, self.manager.clock())
        await self._flush()
        for event in events:
            if isinstance(event, Established):
                # recomputed (never just widened): a refresh may also take access away
                self._granted = self.manager.access(event.peer)
                if not self.channel.initiator and not self.established.done():
                    self.established.set_result(event.peer)
            elif isinstance(event, Accepted):  # the initiator is admitted: open() may return
                if self.channel.peer is not None and not self.established.done():
                    self.established.set_result(self.channel.peer)
            elif isinstance(event, Received):
                self.messages_in += 1
                await self._deliver(event.payload)
            elif isinstance(event, Closed):
                self._closed(event)

    async def _deliver(self, payload: bytes | memoryview) -> None:
        """Route a decrypted message; a denied request is answered, not silently dropped."""
        try:
            limit = self.channel.settings.max_message
            inner = RoutedMessage.decode(payload, max_size=limit).stepped_in(self.enc)
        except DecodeError as exc:
            log.info("%s: dropped a malformed inner message: %s", self.name, exc)
            return
        try:
            await self.manager.router.route(inner, self)
        except RoutingError as exc:
            log.info("%s: denied: %s", self.name, exc)
            if len(inner.return_route) > 1:
                answer = RoutedMessage(inner.return_route, (), error_response(f"denied: {exc}"))
                with contextlib.suppress(TrothError):
                    await self.manager.router.route(answer)
        except TrothError as exc:
            log.info("%s: dropped an inner message: %s", self.name, exc)

    async def from_local(self, message: RoutedMessage, source: Source | None) -> None:
        if self.channel.state is not ChannelState.OPEN:
            raise RoutingError(f"{self.name} is {self.channel.state.value}")
        if message.return_route:
            self.allow(message.return_route[0])  # the reply may come back to the sender
        self.channel.send(message.encode())
        self.messages_out += 1
        await self._flush()

    async def present(self, chains: tuple[bytes, ...]) -> None:
        """In-band credential refresh: show the peer (new) credentials on this open channel."""
        self.channel.send_credentials(chains)
        await self._flush()

    async def _flush(self) -> None:
        for frame in self.channel.outgoing():
            await self.manager.router.route(RoutedMessage(self.peer_route, (self.dec,), frame))

    async def close(self, reason: ChannelFailure = ChannelFailure.NORMAL) -> None:
        event = self.channel.close(reason)
        with contextlib.suppress(TrothError):
            await self._flush()
        self._closed(event)

    def _closed(self, event: Closed) -> None:
        if not self.established.done():
            self.established.set_exception(ChannelError(event.reason, event.detail))
        self.manager._forget(self)


@dataclass
class ChannelManager:
    router: Router
    me: Callable[[], ChannelIdentity]
    trust: Callable[[], ChannelTrust]
    access: Access
    settings: ChannelSettings = field(default_factory=ChannelSettings)
    handshake_timeout: float = 10.0
    clock: Callable[[], int] = lambda: int(time.time())
    ends: dict[Address, ChannelEnd] = field(default_factory=dict)

    def start(self) -> None:
        self.router.register(LISTENER, self._listen)

    async def open(self, route: Route, *, trust: ChannelTrust | None = None) -> ChannelEnd:
        """Open a channel to the listener at the end of `route`; wait for the handshake.
        `trust` replaces the manager's for this channel only."""
        channel = SecureChannel.initiate(
            me=self.me(), trust=trust or self.trust(), settings=self.settings
        )
        end = self._add(channel, ())
        (first,) = channel.outgoing()
        try:
            await self.router.route(RoutedMessage((*route, LISTENER), (end.dec,), first))
            await asyncio.wait_for(asyncio.shield(end.established), self.handshake_timeout)
        except TimeoutError:
            await end.close(ChannelFailure.TIMEOUT)
            raise ChannelError(
                ChannelFailure.TIMEOUT, f"no handshake within {self.handshake_timeout} s"
            ) from None
        except BaseException:
            await end.close(ChannelFailure.HANDSHAKE_FAILED)
            raise
        return end

    async def _listen(self, message: RoutedMessage, source: Source | None) -> None:
        payload = message.payload
        if len(payload) != len(_MESSAGE_1) + 32 or bytes(payload[:3]) != _MESSAGE_1:
            raise RoutingError("not a secure channel message 1")  # no state for garbage
        half_open = sum(
            1 for e in self.ends.values() if not e.channel.initiator and e.channel.peer is None
        )
        if half_open >= MAX_HALF_OPEN:
            raise RoutingError("too many handshakes in progress")
        channel = SecureChannel(
            initiator=False, me=self.me(), trust=self.trust(), settings=self.settings
        )
        end = self._add(channel, message.return_route, source)
        if source is not None:
            source.allow(end.dec)  # the rest of this handshake, and the channel, come this way
        asyncio.get_running_loop().call_later(self.handshake_timeout, self._expire, end)
        await end.from_peer(message, source)

    def _expire(self, end: ChannelEnd) -> None:
        if end.channel.state is ChannelState.HANDSHAKE:
            log.info("%s: handshake timed out", end.name)
            end._closed(end.channel.close(ChannelFailure.TIMEOUT))

    def _add(
        self, channel: SecureChannel, peer_route: Route, source: Source | None = None
    ) -> ChannelEnd:
        end = ChannelEnd(self, channel, peer_route, source)
        self.router.register(end.dec, end.from_peer)
        self.router.register(end.enc, end.from_local)
        self.ends[end.enc] = end
        return end

    def _forget(self, end: ChannelEnd) -> None:
        self.router.unregister(end.dec)
        self.router.unregister(end.enc)
        self.ends.pop(end.enc, None)
        if end.source is not None:
            end.source.forget(end.dec)

    async def check_peers(self) -> None:
        """Continuous evaluation: re-check every open channel's peer (revocation, expiry)."""
        now = self.clock()
        for end in list(self.ends.values()):
            for event in end.channel.check_peer(now):
                if isinstance(event, Closed):
                    with contextlib.suppress(TrothError):
                        await end._flush()
                    end._closed(event)

    async def close_all(self) -> None:
        for end in list(self.ends.values()):
            await end.close()
