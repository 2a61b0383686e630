"""Secure channels on a node: the asyncio glue between the sans-IO SecureChannel and the
router (docs/protocols.md, "Secure channel" and "Limits"). Each channel end has two workers:

    /worker/chan-<id>.dec   packets from the peer: decrypt, then route the inner message with
                            this channel as its Source (it reaches only what the peer may)
    /worker/chan-<id>.enc   local messages to send through the channel: encrypt, forward

The listener (`/service/channels`) answers handshakes and creates responder ends. A channel
end reports what its channel did as events (troth.channel.events); the manager reacts to them
in one place: it delivers Received (`_deliver`) and, in `_on_event`, grants access on
Established, counts Dropped, gives up a handshake on NotRouted (a relay on the way said
"relay not found") and forgets the end on Closed.

Dead channels (docs/protocols.md, "Keepalive"): one timer drives every channel's keepalive
(PING when idle, closed after `keepalive_timeout` without an authenticated frame), and a
transport connection that closes closes the channels that run over it (`connection_lost`).

Hostile load (all limits in `ChannelLimits`): half-open handshakes are bounded per source (the
TCP peer's address, or for a relayed handshake the relay connection and the relay's connection
to the sender) and globally, where a newcomer evicts the oldest handshake of the sources
holding the most (of all, when none holds more than its own would); handshakes expire by
timer; channels per peer identity are bounded, and per member (its delegates' included,
counted as the reassembly budgets are: review 43a, channels 1); the
reassemblies of one member's channels (its delegates' included: a peer with no chain, its own)
share one budget, all members' budgets draw on the node's
(past its total, within the share of one of the peer's authorities: troth.node.shares), and
they expire by timer. `ChannelLimits.from_environment` reads `TROTH_CHANNELS_*`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Final

from troth.channel import (
    Accepted,
    ChannelIdentity,
    ChannelSettings,
    ChannelState,
    ChannelTrust,
    Closed,
    Dropped,
    Established,
    Event,
    NotRouted,
    Received,
    SecureChannel,
    VerifiedPeer,
)
from troth.errors import (
    ChannelError,
    ChannelFailure,
    Congested,
    DecodeError,
    RoutingError,
    TrothError,
)
from troth.identity import Identifier
from troth.node.access import Caller, LocalCaller, PeerCaller, member_accounts
from troth.node.channel_limits import (
    CHANNELS_ENVIRONMENT_PREFIX,
    ChannelCounters,
    ChannelLimits,
    ChannelsPerPeer,
    PeerReassembly,
)
from troth.node.services.base import (
    BUSY,
    NO_ROUTE,
    error_response,
    forget_calls,
    request_id_of,
)
from troth.node.shares import Shares, authorities_of
from troth.routing import (
    Address,
    AllowSet,
    AllowSetSource,
    Route,
    RoutedMessage,
    Router,
    Source,
    format_route,
)
from troth.transport.connection import Connection
from troth.transport.ratelog import RateLimitedLog

__all__ = [
    "CHANNELS_ENVIRONMENT_PREFIX",
    "LISTENER",
    "ChannelCounters",
    "ChannelEnd",
    "ChannelLimits",
    "ChannelManager",
    "caller_of",
]

log = logging.getLogger("troth.node.channels")
_CONGESTED_ANSWER: Final = "busy: the way on is congested, send it again later"
LISTENER = Address("service", "channels")
COALESCE_LIMIT: Final = 64 * 1024
"""Bytes of messages a channel end queues within one loop iteration before it sends them at
once (below it, what one iteration queues leaves as one packet when the iteration ends)."""
_MESSAGE_1 = b"\x00\x21\x01"  # a packet of one 33-byte handshake frame: "-> e", no payload

Services = Callable[[], frozenset[Address]]
"""The node addresses a channel's decrypted messages may be routed to (its services)."""


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
        self.direct = False
        """Whether the peer is the other end of the connection this channel runs over, as
        this node knows it (not from the peer route, whose hops past the first are the peer's
        to choose): a channel it opened to a one-hop route (`/tcp/hub:4000`), or one a peer
        opened over a connection that peer made to this node. Only then does the channel's
        silence say the connection is dead (`ChannelManager.silent_hooks`)."""
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
        before = self.channel.state
        events = self.channel.receive(message.payload, self._clock())
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
        channel.send(message.encode())
        self.messages_out += 1
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
        with contextlib.suppress(TrothError):
            await self.flush()

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
        for event in events:
            if isinstance(event, Received):
                if self.channel.closed:  # closed by an event before it (a limit passed)
                    continue
                self.messages_in += 1
                await self._deliver(self, event.payload)
            else:
                self._on_event(self, event)

    async def close(self, reason: ChannelFailure = ChannelFailure.NORMAL) -> None:
        """Close the channel (the peer is told when keys exist)."""
        event = self.channel.close(reason)
        with contextlib.suppress(TrothError):
            await self.flush()
        self._on_event(self, event)


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


@dataclass
class ChannelManager:
    """The node's secure channels: opens them, answers handshakes, enforces the limits."""

    router: Router
    me: Callable[[], ChannelIdentity]
    trust: Callable[[], ChannelTrust]
    services: Services
    settings: ChannelSettings = field(default_factory=ChannelSettings)
    clock: Callable[[], int] = lambda: int(time.time())
    limits: ChannelLimits = field(default_factory=ChannelLimits.from_environment)
    """Default: `ChannelLimits` with the `TROTH_CHANNELS_*` environment variables applied."""
    trusted: Callable[[], int] = lambda: 1
    """How many authorities the node trusts now (their shares of the reassembly bytes)."""
    ends: dict[Address, ChannelEnd] = field(default_factory=dict)
    """Every channel end, by its `.enc` address."""
    counters: ChannelCounters = field(default_factory=ChannelCounters)
    closed_hooks: list[Callable[[ChannelEnd], None]] = field(default_factory=list)
    """Called with each channel end the manager forgets (closed, failed or expired)."""
    silent_hooks: list[Callable[[Address], None]] = field(default_factory=list)
    """Called with the connection under a channel whose peer, at the other end of that
    connection, went silent past the keepalive timeout: the connection is dead too."""
    _half_open: dict[ChannelEnd, ChannelTrust] = field(default_factory=dict)  # responder
    # handshakes (oldest first) and the trust each gets once open
    _users: dict[Identifier, set[ChannelEnd]] = field(default_factory=dict)  # the open ends
    # by peer identity (the per-peer channel limit)
    _budgets: dict[frozenset[bytes], tuple[PeerReassembly, set[ChannelEnd]]] = field(
        default_factory=dict
    )  # the reassembly budgets by member (`member_accounts`: a member's delegates share its
    # budget, review 41b, delegates 1), and the ends drawing on each
    _budget_of: dict[ChannelEnd, frozenset[bytes]] = field(default_factory=dict)
    _per_source: collections.Counter[str] = field(default_factory=collections.Counter)
    # responder ends (handshaking or open) per source
    _over: dict[Address, set[ChannelEnd]] = field(default_factory=dict)  # the ends by the
    # connection they run over, their peer route's first hop (`connection_lost`)
    _sweeper: asyncio.TimerHandle | None = None
    _log: RateLimitedLog | None = None
    _flushing: set[asyncio.Task[None]] = field(default_factory=set)  # keepalive, close sends
    _reassembly: Shares = field(init=False)  # the node's bytes, every peer's budget draws on

    def __post_init__(self) -> None:
        if self.limits.reassembly_timeout is not None:
            timeout = self.limits.reassembly_timeout
            self.settings = dataclasses.replace(self.settings, reassembly_timeout=timeout)
        self.settings = self.limits.keepalive(self.settings)
        self._log = RateLimitedLog(log, self.limits.log_lines_per_minute)
        self._reassembly = Shares(self.trusted)

    def start(self) -> None:
        """Serve the channel listener (`/service/channels`)."""
        self.router.register(LISTENER, self._listen)

    async def open(
        self,
        route: Route,
        *,
        trust: ChannelTrust | None = None,
        me: ChannelIdentity | None = None,
    ) -> ChannelEnd:
        """Open a channel to the listener at the end of `route`; wait for the handshake.
        `trust` replaces the manager's for this channel only; `me` the identity it shows."""
        channel = SecureChannel.initiate(
            me=me or self.me(), trust=trust or self.trust(), settings=self.settings
        )
        end = self._add(channel, ())
        end.direct = len(route) == 1  # the listener at the end of our own connection
        (first,) = channel.outgoing()
        timeout = self.limits.handshake_timeout
        try:
            await self.router.route(RoutedMessage((*route, LISTENER), (end.dec,), first))
            await asyncio.wait_for(asyncio.shield(end.established), timeout)
        except TimeoutError:
            await end.close(ChannelFailure.TIMEOUT)
            where = format_route(route)
            raise ChannelError(
                ChannelFailure.TIMEOUT, f"no handshake from {where} within {timeout} s"
            ) from None
        except BaseException:
            await end.close(ChannelFailure.HANDSHAKE_FAILED)
            raise
        return end

    async def _listen(self, message: RoutedMessage, source: Source | None) -> None:
        payload = message.payload
        if len(payload) != len(_MESSAGE_1) + 32 or bytes(payload[:3]) != _MESSAGE_1:
            raise RoutingError("not a secure channel message 1")  # no state for garbage
        source_key = source.origin(message.return_route) if source is not None else "local"
        self._make_room(source_key)
        trust = self.trust()
        limited = ChannelsPerPeer(
            trust.policy,
            self._channels_opened_by,
            self.limits.max_channels_per_peer,
            member_count=self._channels_opened_by_member,
            member_limit=self.limits.max_channels_per_member,
        )
        channel = SecureChannel(
            initiator=False,
            me=self.me(),
            trust=dataclasses.replace(trust, policy=limited),
            settings=self.settings,
        )
        end = self._add(channel, message.return_route, source, source_key)
        end.direct = isinstance(source, Connection) and not source.outgoing  # it connected
        self._half_open[end] = trust
        self._per_source[source_key] += 1
        self.counters.handshakes_started += 1
        if source is not None:
            # the rest of this handshake, and the channel, come this way: held on the source
            # while the end lives, not among its reply paths, which the channels others open
            # over the same connection (a relay's, to a relayed node) pushed it out of
            # (docs/protocols.md, "Routing"; review 41b, reply paths 1)
            source.hold(end.dec)
        end.handshake_timer = asyncio.get_running_loop().call_later(
            self.limits.handshake_timeout, self._expire, end
        )
        await end.from_peer(message, source)
        if end.channel.state is ChannelState.AWAITING_MESSAGE_1:  # message 1 was unusable
            self._forget(end)

    def _make_room(self, source_key: str) -> None:
        """Room for one more half-open handshake from a source (RoutingError when none)."""
        if self._per_source[source_key] >= self.limits.max_channels_per_source:
            self.counters.refused_channels_per_source += 1
            self._note("refused a handshake: %s holds its channels' limit", source_key)
            raise RoutingError("too many channels from this source")
        held = sum(1 for end in self._half_open if end.source_key == source_key)
        if held >= self.limits.max_half_open_per_source:
            self.counters.refused_half_open_per_source += 1
            self._note("refused a handshake: %s has %d in progress", source_key, held)
            raise RoutingError("too many handshakes in progress from this source")
        if len(self._half_open) < self.limits.max_half_open:
            return
        # The oldest handshake of the sources holding the most goes (this source's own when
        # it is one of them): with every source at one, the oldest of all. A genuine handshake
        # finishes within a round trip, so keeping newcomers out takes max_half_open messages
        # 1 per round trip; refusing the newcomer when no source held more than its own would
        # let sources holding one each (256 networks: one IPv6 /56) lock every newcomer out
        # for one message 1 each per handshake timeout (review 34e, handshakes 2).
        held_by = collections.Counter(e.source_key for e in self._half_open)
        most = max(held_by.values())
        if held == most:  # this source is among the largest: its own oldest goes first
            victim = next(end for end in self._half_open if end.source_key == source_key)
        else:
            victim = next(end for end in self._half_open if held_by[end.source_key] == most)
        self.counters.evicted_half_open += 1
        self._on_closed(victim, victim.channel.close(ChannelFailure.TIMEOUT, "evicted"))

    def _channels_opened_by(self, identifier: Identifier) -> int:
        users = self._users.get(identifier)
        if users is None:
            return 0
        return sum(1 for end in users if not end.channel.initiator)

    def _channels_opened_by_member(self, peer: VerifiedPeer) -> int:
        """Open channels the peers of `peer`'s member opened to this node: its delegates' too
        (`member_accounts`, as the reassembly budgets are kept; review 43a, channels 1)."""
        entry = self._budgets.get(member_accounts(peer))
        if entry is None:
            return 0
        return sum(1 for end in entry[1] if not end.channel.initiator)

    def _expire(self, end: ChannelEnd) -> None:
        if end.channel.handshaking and end.enc in self.ends:
            self.counters.handshakes_timed_out += 1
            self._note("%s: handshake timed out", end.name)
            self._on_closed(end, end.channel.close(ChannelFailure.TIMEOUT))

    def _add(
        self,
        channel: SecureChannel,
        peer_route: Route,
        source: Source | None = None,
        source_key: str = "local",
    ) -> ChannelEnd:
        end = ChannelEnd(
            channel,
            peer_route,
            router=self.router,
            clock=self.clock,
            deliver=self._deliver,
            on_event=self._on_event,
            max_reply_paths=self.limits.max_reply_paths,
            source=source,
            source_key=source_key,
            on_unsent=self._unsent,
            on_route=self._track,
        )
        self.router.register(end.dec, end.from_peer)
        self.router.register(end.enc, end.from_local)
        self.ends[end.enc] = end
        self._track(end)
        if self._sweeper is None:
            self._sweep()
        return end

    def _track(self, end: ChannelEnd) -> None:
        """Index `end` by the connection it runs over, once its peer route is known."""
        if end.peer_route and end.enc in self.ends:  # (not one forgotten already)
            self._over.setdefault(end.peer_route[0], set()).add(end)

    # -- events ----------------------------------------------------------------------------------

    def _on_event(self, end: ChannelEnd, event: Event) -> None:
        """The one place a channel's events (but Received: `_deliver`) take effect."""
        if isinstance(event, Established):
            self._on_established(end, event.peer)
        elif isinstance(event, Accepted):  # the initiator is admitted: open() may return
            if end.peer is not None and not end.established.done():
                end.established.set_result(end.peer)
        elif isinstance(event, Dropped):
            self.counters.dropped_frames += 1
            self._note("%s: dropped a frame: %s %s", end.name, event.reason.value, event.detail)
        elif isinstance(event, Closed):
            self._on_closed(end, event)
        elif isinstance(event, NotRouted) and not end.established.done():
            problem = event.problem.text
            end.established.set_exception(
                RoutingError(f"{problem}: the relay node on the way answered that it is not up")
            )

    def find(self, channel_id: str) -> ChannelEnd | None:
        """The live channel end with id `channel_id` (`chan-...`), if any."""
        return self.ends.get(Address("worker", f"{channel_id}.enc"))

    def _on_established(self, end: ChannelEnd, peer: VerifiedPeer) -> None:
        # the routes to the services (each request is then decided by the node)
        end.allowed.grant(self.services())
        trust = self._half_open.pop(end, None)
        if trust is not None:  # a responder's handshake completed: the per-peer limit is done
            end.channel.trust = trust
            # counted again here: the handshake's policy checked it as message 3 was read, but
            # the end sent its ACCEPTED before this event was handled, and a send that waits
            # (its peer does not read) let the same identity's other messages 3 pass the same
            # check meanwhile (docs/protocols.md, "Limits"; review 41b, channels 1)
            if self._channels_opened_by(peer.identifier) >= self.limits.max_channels_per_peer:
                detail = f"{peer.identifier} holds its most channels to this node"
                self._on_closed(end, end.channel.close(ChannelFailure.PEER_NOT_ALLOWED, detail))
                return
            # and its member's, its delegates' included: a member mints them for free, each
            # under its own per-peer limit (review 43a, channels 1)
            if self._channels_opened_by_member(peer) >= self.limits.max_channels_per_member:
                detail = f"the member of {peer.identifier} holds its most channels to this node"
                self._on_closed(end, end.channel.close(ChannelFailure.PEER_NOT_ALLOWED, detail))
                return
        authorities = authorities_of(PeerCaller(peer, end.id))
        # the budget of the member at the root of the peer's chains, its delegates' too (a
        # member mints them for free; a peer with no chain: its own), chosen as the channel
        # opens (review 41b, delegates 1)
        account = self._budget_of.get(end)
        if account is None:
            account = self._budget_of[end] = member_accounts(peer)
        entry = self._budgets.get(account)
        if entry is None:
            budget = PeerReassembly(
                self.limits.max_reassembly_per_peer,
                self._reassembly,
                self.limits.max_reassembly_total,
                authorities,
            )
            entry = self._budgets[account] = (budget, set())
        budget, holders = entry
        budget.count_against(authorities)  # a refresh (Established again) may change them
        users = self._users.setdefault(peer.identifier, set())
        if end not in users:
            users.add(end)
            holders.add(end)
            closed = end.channel.share_reassembly_budget(budget)
            if closed is not None:  # fragments sent with message 3 passed the peer's budget
                self._on_closed(end, closed)
                return
        if not end.channel.initiator and not end.established.done():
            end.established.set_result(peer)

    def _on_closed(self, end: ChannelEnd, event: Closed) -> None:
        if not end.established.done():
            end.established.set_exception(
                ChannelError(event.reason, event.detail, by_peer=event.by_peer)
            )
        self._forget(end)

    def _forget(self, end: ChannelEnd) -> None:
        if end.handshake_timer is not None:  # it held the end for the rest of its 10 s
            end.handshake_timer.cancel()  # (review 34e, handshakes 1)
            end.handshake_timer = None
        self.router.unregister(end.dec)
        self.router.unregister(end.enc)
        forget_calls(self.router, end.enc, f"{end.name} closed")
        for task in list(end.requests):  # their answers have no way back: stop them (but
            if task is not asyncio.current_task():  # one that closed it: it ends on its own)
                task.cancel()
        if self.ends.pop(end.enc, None) is not None and not end.channel.initiator:
            held = self._per_source[end.source_key] - 1
            if held > 0:
                self._per_source[end.source_key] = held
            else:
                del self._per_source[end.source_key]
        self._half_open.pop(end, None)
        over = self._over.get(end.peer_route[0]) if end.peer_route else None
        if over is not None:
            over.discard(end)
            if not over:
                del self._over[end.peer_route[0]]
        if end.source is not None:
            end.source.forget(end.dec)
        peer = end.peer
        users = self._users.get(peer.identifier) if peer is not None else None
        if users is not None and peer is not None:
            users.discard(end)
            if not users:
                del self._users[peer.identifier]
        account = self._budget_of.pop(end, None)
        entry = self._budgets.get(account) if account is not None else None
        if entry is not None and account is not None:
            entry[1].discard(end)
            if not entry[1]:
                del self._budgets[account]
        for hook in self.closed_hooks:
            hook(end)

    async def _deliver(self, end: ChannelEnd, payload: bytes | memoryview) -> None:
        """Route a decrypted message; a request that could not be routed is answered, not
        silently dropped (what is dropped is logged within the channels' lines a minute: the
        peer chooses how many; review 23b, logs 1): `no-route` when nothing it may reach
        serves its address, `busy` when its next hop dropped it (`Congested`: the way on is up
        but not reading; docs/protocols.md, "Services": the request did not run, its caller
        sends it again later; review 27c, congested 2)."""
        try:
            limit = end.channel.settings.max_message
            inner = RoutedMessage.arrived(payload, end.enc, max_size=limit)
        except (DecodeError, RoutingError) as exc:
            self._note("%s: dropped a malformed inner message: %s", end.name, exc)
            return
        try:
            await self.router.route(inner, end)
        except Congested as exc:
            self._note("%s: congested: %s", end.name, exc)
            # a fixed text: the connection (a hop's network address, behind a relay the
            # relayed node's) is for this node's log only (review 30, busy 1)
            await self._refuse(inner, BUSY, _CONGESTED_ANSWER)
        except RoutingError as exc:
            self._note("%s: no route: %s", end.name, exc)
            await self._refuse(inner, NO_ROUTE, str(exc))
        except TrothError as exc:
            self._note("%s: dropped an inner message: %s", end.name, exc)

    async def _refuse(self, inner: RoutedMessage, kind: str, why: str) -> None:
        """Answer `inner` with an error of `kind` when it is a service request (its caller
        need not wait for its timeout); anything else is dropped."""
        request = request_id_of(inner.payload) if len(inner.return_route) > 1 else None
        if request is not None:
            error = error_response(kind, why, request=request)
            answer = RoutedMessage(inner.return_route, (), error)
            with contextlib.suppress(TrothError):
                await self.router.route(answer)

    def _unsent(self, end: ChannelEnd, packets: int, exc: TrothError) -> None:
        """`end`'s first hop did not take `packets` packets: counted, and logged within the
        channels' lines a minute (a peer that does not read chooses how many)."""
        self.counters.unsent_packets += packets
        self._note("%s: %d packets not sent: %s", end.name, packets, exc)

    def _note(self, message: str, *args: object) -> None:
        if self._log is not None:
            self._log.log(logging.INFO, message, *args)

    def _closing(self, end: ChannelEnd, level: int, message: str, *args: object) -> None:
        """Log that `end` closed: a line each for the channels this node opened (its links);
        within the channels' lines a minute for those peers opened, as many as they choose
        (review 23b, logs 2)."""
        if end.channel.initiator:
            log.log(level, message, end.name, *args)
        elif self._log is not None:
            self._log.log(level, message, end.name, *args)

    # -- timers ----------------------------------------------------------------------------------

    def _sweep(self) -> None:
        self.expire_reassemblies()
        loop = asyncio.get_running_loop()
        self.keepalive(loop.time())
        period = min(self.limits.reassembly_sweep, self.settings.keepalive_interval / 4)
        self._sweeper = loop.call_later(period, self._sweep)

    def keepalive(self, now: float) -> None:
        """Run every channel's keepalive at monotonic time `now` (the sweep does, four times a
        keepalive interval): PINGs are sent, channels silent past the timeout closed."""
        for end in list(self.ends.values()):
            events = end.channel.keepalive(now)
            if events or end.channel.has_outgoing:
                task = asyncio.get_running_loop().create_task(self._keepalive_sent(end, events))
                self._flushing.add(task)
                task.add_done_callback(self._flushing.discard)

    async def _keepalive_sent(self, end: ChannelEnd, events: list[Event]) -> None:
        with contextlib.suppress(TrothError):
            await end.flush()
        for event in events:
            if isinstance(event, Closed):
                peer = end.peer.identifier if end.peer else "?"
                self._closing(end, logging.WARNING, "%s with %s closed: %s", peer, event.detail)
        await end.handle(events)
        # the peer is the connection's other end: its silence means the connection is dead.
        # Not judged by the peer route's length (review 23b, channels 1): past its first hop it
        # is the peer's to choose, and a relayed peer that sent message 1 with no return route
        # of its own looked like the relay node, so its silence closed our connection there.
        if events and end.direct and end.peer_route:
            for hook in self.silent_hooks:
                hook(end.peer_route[0])

    def connection_lost(self, connection: Address) -> None:
        """Transport connection `connection` closed: close every channel that runs over it
        (its first hop), at once rather than at its keepalive timeout. Only those are looked
        at (indexed by first hop: a scan of every channel per connection closed cost 2 ms
        with 10,000 channels, and closing a connection costs nothing; review 34e,
        connections 1)."""
        for end in list(self._over.get(connection, ())):
            if end.peer_route and end.peer_route[0] == connection:
                if end.channel.state is ChannelState.OPEN:
                    peer = end.peer.identifier if end.peer else "?"
                    self._closing(
                        end, logging.INFO, "%s with %s closed: its connection closed", peer
                    )
                event = end.channel.close(ChannelFailure.PEER_CLOSED, "its connection closed")
                self._on_closed(end, event)

    def expire_reassemblies(self) -> int:
        """Give up incomplete messages past the reassembly timeout on every channel (a timer
        calls this every `limits.reassembly_sweep` seconds); the bytes released."""
        now = self.clock()
        released = 0
        for end in list(self.ends.values()):
            due = end.channel.next_expiry()
            if due is not None and due <= now:
                released += end.channel.expire(now)
        self.counters.reassembly_expired_bytes += released
        return released

    async def check_peers(self) -> None:
        """Continuous evaluation: re-check every open channel's peer (revocation, expiry). A
        channel refused is closed here; its CLOSE frame goes in a task of its own, so a peer
        that does not read (its write waits up to the transport's write timeout) holds back
        neither the next re-check nor the rest of the maintenance round."""
        now = self.clock()
        for end in list(self.ends.values()):
            events = end.channel.check_peer(now)
            if events:
                await end.handle(events)
                task = asyncio.get_running_loop().create_task(self._close_sent(end))
                self._flushing.add(task)
                task.add_done_callback(self._flushing.discard)

    async def _close_sent(self, end: ChannelEnd) -> None:
        with contextlib.suppress(TrothError):
            await end.flush()

    async def close_all(self) -> None:
        """Close every channel and stop the timers."""
        for end in list(self.ends.values()):
            await end.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for task in list(self._flushing):
            task.cancel()
