"""A secure channel's end on a node (docs/protocols.md, "Secure channel"): `ChannelEnd`, the
asyncio glue between one sans-IO SecureChannel and the router, with its two workers (`.dec`,
packets from the peer; `.enc`, local messages to send through the channel) and its coalescing
of what one loop iteration sends; and `caller_of`, who sent a message that came from a source.
The manager that opens, admits, limits and forgets the ends is troth.node.channels.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable, Hashable
from typing import Final

from troth.channel import ChannelState, Event, Received, SecureChannel, VerifiedPeer
from troth.errors import ChannelFailure, RoutingError, TrothError
from troth.node.access import Caller, LocalCaller, PeerCaller
from troth.routing import (
    Address,
    AllowSet,
    AllowSetSource,
    Route,
    RoutedMessage,
    Router,
    Source,
)
from troth.transport.connection import Connection

__all__ = ["COALESCE_LIMIT", "ChannelEnd", "caller_of", "is_channel_reply"]

COALESCE_LIMIT: Final = 64 * 1024
"""Bytes of messages a channel end queues within one loop iteration before it sends them at
once (below it, what one iteration queues leaves as one packet when the iteration ends)."""
PROBE_AFTER: Final = 1.0
"""Seconds a message sent on a channel this node opened may go without any authenticated frame
back before the channel timer probes the peer with a PING (docs/protocols.md, "Unanswered
channels")."""
PROBE_WAIT: Final = 5.0
"""Seconds a probe may go unanswered (nothing authenticated since the message and the PING)
before the channel is suspect: `channel_to` opens a fresh one instead of reusing it. Generous
(a PING is answered by the peer's channel layer at once): a peer on a starved host, or behind a
busy relay, is not taken for gone."""


_CHANNEL_REPLY: Final = re.compile(r"chan-[0-9a-f]{16}\.dec")


def is_channel_reply(address: Address) -> bool:
    """Whether `address` is a channel end's reply address as a node names it (`.dec`,
    `ChannelEnd.dec`), not a connection's (troth.node.channel_sources `own_link`; review 54o,
    channels 1)."""
    return address.kind == "worker" and _CHANNEL_REPLY.fullmatch(address.value) is not None


class ChannelEnd(AllowSetSource):
    """One end of a secure channel on this node; the Source of the messages it decrypts."""

    def __init__(
        self,
        channel: SecureChannel,
        peer_route: Route,
        *,
        router: Router,
        clock: Callable[[], int],
        deliver: Callable[[ChannelEnd, bytes | memoryview], Awaitable[None]],
        on_event: Callable[[ChannelEnd, Event], None],
        max_reply_paths: int,
        source: Source | None = None,
        source_key: str = "local",
        on_unsent: Callable[[ChannelEnd, int, TrothError], None] | None = None,
        on_route: Callable[[ChannelEnd], None] | None = None,
    ) -> None:
        self.channel = channel
        self.peer_route = peer_route
        self.source = source  # the connection that brought message 1 (responders), or
        # message 2 (initiators): it holds this end's `.dec` until the end is forgotten
        self.forwarded = False  # its message 1 a party's behind the node at the other end
        # (`channel_sources.behind_other_end`): what such a party's may evict (review 72x)
        self.direct = False
        """Whether the peer is the other end of the connection this channel runs over, as
        this node knows it (not from the peer route's length, whose hops past the first are the
        peer's to choose): a channel it opened to a one-hop route (`/tcp/hub:4000`), or one a
        peer opened over a connection that peer made to this node, and in both its peer route
        that connection and a channel end's reply address (`channel_sources.from_other_end`:
        a party the node at the other end forwards for, or that answers one of this node's
        relay names past it, has the node's connection to it there, put by the node itself;
        review 72i, ends 1). Only then does the channel's silence say the connection is dead
        (`ChannelManager.silent_hooks`)."""
        self.source_key = source_key  # who sent message 1, for the per-source handshake limit
        token = os.urandom(8).hex()
        self.id = f"chan-{token}"
        self.enc = Address("worker", f"chan-{token}.enc")
        self.dec = Address("worker", f"chan-{token}.dec")
        self.name = f"channel {token}"
        # what decrypted messages may reach: the peer's access and local senders' replies
        self._use(AllowSet(max_reply_paths=max_reply_paths))
        self.established: asyncio.Future[VerifiedPeer] = asyncio.get_running_loop().create_future()
        # a responder's failure has no waiter: mark the exception as seen
        self.established.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.messages_in = 0
        self.messages_out = 0
        self._loop = asyncio.get_running_loop()
        self._batch: asyncio.Handle | None = None  # set while messages of this loop iteration
        # are being queued: they leave together when it ends (`_end_batch`)
        self._receiving: object = None  # who handles a packet now (`_handler`)
        self._flushes: set[asyncio.Task[None]] = set()
        self.requests: set[asyncio.Task[None]] = set()
        """The peer's requests running concurrently (ServiceHost): cancelled when it closes."""
        self._caller: PeerCaller | None = None
        self._router = router
        self._clock = clock
        self._deliver = deliver
        self._on_event = on_event
        self._on_unsent = on_unsent
        self._on_route = on_route  # told when an initiator learns its peer route
        self.packets_unsent = 0
        """Packets the channel made that its first hop did not take (`flush` failed: the
        connection is congested or gone), counted by the manager too."""
        self._unanswered: tuple[int, float] | None = None  # an initiator's first message
        # sent since its last authenticated frame: (`channel.authenticated` then, loop time)
        self._probed: tuple[int, float] | None = None  # the probe PING sent for it, likewise
        self.forgotten = False
        """Whether the manager forgot this end (closed, failed or expired): the messages of a
        packet still being handled are not delivered (`handle`)."""
        self.pinned = False
        """Whether a caller of this node expected the identity that answered it (it was opened,
        or reused, by `channel_to(expect=)` with that identity): its connection goes to the
        node that caller wanted, and is not closed as going to the wrong node when another
        pinned caller (a link whose node left the address) is refused there (review 63r,
        reconnect 1)."""
        self.handshake_timer: asyncio.TimerHandle | None = None
        """A responder's handshake timeout (the manager cancels it when it forgets the end,
        so a timer never holds an end that is gone: review 34e, handshakes 1)."""

    @property
    def peer(self) -> VerifiedPeer | None:
        """The verified peer (None until its handshake message is verified)."""
        return self.channel.peer

    @property
    def caller(self) -> PeerCaller | None:
        """The peer as a caller of this node's services (None before the handshake); made
        again when the peer changes (a credential refresh verifies a new VerifiedPeer)."""
        peer = self.channel.peer
        if peer is None:
            return None
        caller = self._caller
        if caller is None or caller.peer is not peer:
            caller = self._caller = PeerCaller(peer, self.id)
        return caller

    # -- Source (for decrypted messages) ---------------------------------------------------------

    def origin(self, return_route: Route) -> str:
        """Messages out of a channel come from its peer identity."""
        peer = self.channel.peer
        return f"channel {peer.identifier if peer else self.name}"

    def carrier(self) -> Address | None:
        """The connection this channel runs over: its peer route's first hop (for a channel
        through a relay, the connection to the relay, which every relayed channel shares)."""
        return self.peer_route[0] if self.peer_route else None

    def request_lane(self) -> Hashable | None:
        """What the peer's requests count against as their connection (docs/protocols.md,
        "Concurrent requests"): the connection this channel runs over (`carrier`), but for a
        channel a peer opened through a relay this node connected to, the sender behind the
        relay as the relay names it (`Connection.relayed_sender`, the key of the per-source
        channel limits: its host, by the tag of the relay's connection to it), so the peers
        behind one relay do not share one count: four members filled it for every other
        (review 41b, relayed requests 1). A route the relay did not tag counts against the
        connection, as before."""
        source = self.source
        if isinstance(source, Connection) and not self.channel.initiator:
            sender = source.relayed_sender(self.peer_route)
            if sender is not None:
                return sender
        return self.carrier()

    # -- workers -----------------------------------------------------------------------------------

    async def from_peer(self, message: RoutedMessage, source: Source | None) -> None:
        """The `.dec` worker: a packet from the peer. Its events are handled, in order, whatever
        sending what the channel made of it does (docs/protocols.md, "Secure channel"): the
        channel accepted the packet (its replay window moved on), so its messages must not be
        lost with a PONG or an answer that a congested path back dropped (review 27c,
        congested 1). A flush that fails is counted (`ChannelCounters.unsent_packets`), and the
        channel goes on: `Congested` is not that the peer is gone (its keepalive judges that),
        and a connection that closed closes its channels (`ChannelManager.connection_lost`)."""
        channel = self.channel
        before, authenticated = channel.state, channel.authenticated
        events = channel.receive(message.payload, self._clock())
        if (
            channel.authenticated != authenticated  # a transport frame authenticated, or a
            or (  # handshake step verified the peer (message 2 or 3; not a message 1)
                channel.state is not before
                and before is not ChannelState.AWAITING_MESSAGE_1
                and channel.state is not ChannelState.CLOSED
            )
        ) and isinstance(source, Connection):
            source.progressed()  # what keeps the connection from idling (review 50e, idle 1)
        if (
            not self.peer_route
            and before is ChannelState.AWAITING_MESSAGE_2
            and self.channel.state is not before
        ):
            self.peer_route = message.return_route  # the initiator learns the way back
            if source is not None and self.source is None:  # and holds its end there, as
                # `ChannelManager._listen` does a responder's (review 41b, reply paths 1)
                self.source = source
                source.hold(self.dec)
            if self._on_route is not None:
                self._on_route(self)
        if self.channel.has_outgoing:  # message 2 or 3, an ACCEPTED, a PONG: before the events
            await self._flush_counted()
        handling, self._receiving = self._receiving, _handler()
        try:
            await self.handle(events)
        finally:
            self._receiving = handling
        if self.channel.has_outgoing:  # the answers to the messages of this packet
            await self._flush_counted()

    async def from_local(self, message: RoutedMessage, source: Source | None) -> None:
        """The `.enc` worker: a local message to send through the channel.

        Coalescing (docs/protocols.md, "Secure channel"): the first message of a loop
        iteration leaves at once; the ones after it in the same iteration are queued and leave
        together, in one packet, when the iteration ends (or at once past `COALESCE_LIMIT`
        queued bytes, so a sender that never yields is still paced by the connection). Answers
        made while a packet from the peer is handled leave together after it."""
        channel = self.channel
        if channel.state is not ChannelState.OPEN:
            raise RoutingError(f"{self.name} is {channel.state.value}")
        if message.return_route:
            self.allow(message.return_route[0])  # the reply may come back to the sender
        channel.send(message.payload, message.header())  # (no copy of the payload behind
        # its header: the channel reads both into its frames)
        self.messages_out += 1
        if channel.initiator:  # sent with nothing heard since: awaiting news of the peer
            unanswered = self._unanswered
            if unanswered is None or unanswered[0] != channel.authenticated:
                self._unanswered = (channel.authenticated, self._loop.time())
        if self._batch is None:
            # the iteration's end sends what is queued then: an answer made while a packet is
            # handled must not wait for a slow request of the same packet (its handler's flush)
            self._batch = self._loop.call_soon(self._end_batch)
            if self._receiving is None or self._receiving is not _handler():
                await self.flush()
        elif channel.queued_bytes >= COALESCE_LIMIT:
            await self.flush()

    def _end_batch(self) -> None:
        """The loop iteration in which messages were queued is over: send what is left."""
        self._batch = None
        if self.channel.has_outgoing:
            task = self._loop.create_task(self._flush_counted())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush_counted(self) -> None:
        """`flush` where no one is told of a failure: no local sender waits for it (`flush`
        counts and logs what it could not send)."""
        try:  # noqa: SIM105 - a suppress() costs three Python calls on every answer
            await self.flush()
        except TrothError:
            pass

    def probe(self, now: float) -> bool:
        """The channel timer (`ChannelManager.keepalive`) at loop time `now`: when a message
        sent on this channel (one this node opened) has had no authenticated frame back for
        `PROBE_AFTER` s, queue one PING (a live peer answers it at once; any authenticated
        frame clears the wait). Whether a PING was queued (the caller flushes it)."""
        unanswered = self._unanswered
        count = self.channel.authenticated
        if unanswered is None or unanswered[0] != count or now - unanswered[1] < PROBE_AFTER:
            return False
        probed = self._probed
        if probed is not None and probed[0] == count and probed[1] >= unanswered[1]:
            return False  # probed already for this wait
        self._probed = (count, now)
        self.channel.probe(now)
        return True

    def suspect(self, now: float) -> bool:
        """Whether the peer looks gone (docs/protocols.md, "Unanswered channels"): a message was
        sent and then a probe PING, and nothing authenticated came back since for `PROBE_WAIT` s.
        Only authenticated frames clear it and only this node's own sends and PINGs set it:
        no one else can make a live channel suspect, short of dropping its packets."""
        unanswered, probed = self._unanswered, self._probed
        count = self.channel.authenticated
        return (
            unanswered is not None
            and probed is not None
            and unanswered[0] == count == probed[0]
            and probed[1] >= unanswered[1]
            and now - probed[1] >= PROBE_WAIT
        )

    async def present(self, chains: tuple[bytes, ...]) -> None:
        """In-band credential refresh: show the peer (new) credentials on this open channel."""
        self.channel.send_credentials(chains)
        await self.flush()

    async def flush(self) -> None:
        """Send the packets the channel has queued: straight to the local worker of the peer
        route's first hop (a connection) when there is one, which is what `Router.route` does
        for a local sender, with one look-up per flush instead of one per packet. When the
        first hop refuses a packet (`Congested`: its peer does not read; RoutingError: the
        connection is gone) that packet and the ones after it are lost: counted
        (`packets_unsent`, and by the manager), and the error raised to the sender."""
        packets = self.channel.outgoing()
        if not packets:
            return
        route = self.peer_route
        first_hop = self._router.worker(route[0]) if route else None
        for sent, packet in enumerate(packets):
            try:
                if first_hop is None:
                    await self._router.route(RoutedMessage(route, (self.dec,), packet))
                else:
                    await first_hop(RoutedMessage(route[1:], (self.dec,), packet), None)
            except TrothError as exc:  # this packet and the ones after it are lost
                unsent = len(packets) - sent
                self.packets_unsent += unsent
                if self._on_unsent is not None:
                    self._on_unsent(self, unsent, exc)
                raise

    async def handle(self, events: list[Event]) -> None:
        """Hand the channel's events to the manager: Received messages to deliver, the others
        to take effect."""
        # A channel the packet itself closed (its peer's CLOSE, a violation after these
        # messages) still delivers the messages authenticated before that frame: a channel
        # closed locally seals what it holds before its CLOSE, one packet with it (review
        # 47e, close 1). One the node closes while they are handled (a limit passed on an
        # event before them; the end forgotten) delivers none of the rest.
        channel = self.channel  # (its state read, not the `closed` property: one Python
        closed = channel.state is _CLOSED  # call less per message, review 68q, rtt)
        for event in events:
            if isinstance(event, Received):
                if self.forgotten or (channel.state is _CLOSED and not closed):
                    continue
                self.messages_in += 1
                await self._deliver(self, event.payload)
            else:
                self._on_event(self, event)

    async def close(self, reason: ChannelFailure = ChannelFailure.NORMAL) -> None:
        """Close the channel (the peer is told when keys exist). The end is forgotten whatever
        the CLOSE's flush raises: a close cancelled while a peer that does not read holds the
        write, or a first hop's error other than a TrothError (raised after), left it in the
        node's table with its pins and cap share (review 55u, close 1)."""
        event = self.channel.close(reason)
        try:
            await self.flush()
        except TrothError:
            pass
        finally:
            self._on_event(self, event)


_CLOSED: Final = ChannelState.CLOSED
_CALLBACK: Final = object()
"""`_handler()` outside any task: a transport's read callback routing what arrived (no other
code runs until it returns or, waiting, goes on in a task)."""


def _handler() -> object:
    """Who runs now: the current task, or `_CALLBACK` in a plain callback."""
    return asyncio.current_task() or _CALLBACK


def caller_of(source: Source | None) -> Caller | None:
    """Who sent a message that came from `source`: a local caller (no source), the verified
    peer of a channel end, or None (any other source is not a verified caller)."""
    if source is None:
        return LocalCaller()
    return source.caller if isinstance(source, ChannelEnd) else None
