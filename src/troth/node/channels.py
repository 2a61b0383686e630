"""Secure channels on a node: the asyncio glue between the sans-IO SecureChannel and the
router (docs/protocols.md, "Secure channel" and "Limits"). Each channel end (`ChannelEnd`,
troth.node.channel_ends) has two workers:

    /worker/chan-<id>.dec   packets from the peer: decrypt, then route the inner message with
                            this channel as its Source (it reaches only what the peer may)
    /worker/chan-<id>.enc   local messages to send through the channel: encrypt, forward

The listener (`/service/channels`) answers handshakes and creates responder ends. A channel
end reports what its channel did as events (troth.channel.events); the manager reacts to them
in one place: it delivers Received (`_deliver`) and, in `_on_event`, grants access on
Established, counts Dropped, gives up a handshake on NotRouted (a relay on the way said
"relay not found") and forgets the end on Closed. No-route notices (troth.node.no_route) are
sent for what the router drops for a dead `/worker/...` hop and taken out of `_deliver`.

Dead channels (docs/protocols.md, "Keepalive"): one timer drives every channel's keepalive
(PING when idle, closed after `keepalive_timeout` without an authenticated frame), and a
transport connection that closes closes the channels that run over it (`connection_lost`).

Hostile load (all limits in `ChannelLimits`): half-open handshakes are bounded per source (the
TCP peer's address, or for a relayed handshake the relay connection and the relay's connection
to the sender) and globally, where a newcomer evicts, of the network holding the most (its
own when it is one of them), the oldest handshake of the sources holding the most (the
network's oldest when none holds more than its own would); handshakes expire by
timer; channels per peer identity are bounded, and per member (its delegates' included,
counted as the reassembly budgets are: review 43a, channels 1); the reassemblies of one
member's channels (its delegates' included: a peer with no chain, its own) share one budget
(one with chains from several members, each's: troth.node.member_reassembly), all draw on the
node's (past its total, within the share of one of the peer's authorities: troth.node.shares), and
they expire by timer; the open channels peers opened are capped for the node, strangers'
within three quarters of the cap, members' within their authorities' shares of it past that
(troth.node.channel_cap; review 54k, channels 1; review 54r, channels 1).
`ChannelLimits.from_environment` reads `TROTH_CHANNELS_*`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
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
    GivenUp,
    NotRouted,
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
from troth.node.access import PeerCaller, member_accounts
from troth.node.channel_cap import OpenChannels, Opener
from troth.node.channel_ends import ChannelEnd, caller_of
from troth.node.channel_limits import (
    CHANNELS_ENVIRONMENT_PREFIX,
    ChannelCounters,
    ChannelLimits,
    ChannelsPerPeer,
    PeerReassembly,
)
from troth.node.channel_pins import ChannelPins, Pins
from troth.node.channel_sources import (
    STRANGERS_ONLY,
    behind_other_end,
    counts_against,
    forwarded_room,
    from_other_end,
    own_link,
    source_network_of,
)
from troth.node.half_open import half_open_victim
from troth.node.member_channels import UNSHOWN, MemberChannels, shows_fewer
from troth.node.member_reassembly import MemberBytes
from troth.node.no_route import NoRouteNotices
from troth.node.opening_rates import OpeningRates
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
    Route,
    RoutedMessage,
    Router,
    Source,
    format_route,
)
from troth.routing.notice import NOTICE_SERVICE
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
_MESSAGE_1 = b"\x00\x21\x01"  # a packet of one 33-byte handshake frame: "-> e", no payload

Services = Callable[[], frozenset[Address]]
"""The node addresses a channel's decrypted messages may be routed to (its services)."""


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
    pins: Pins | None = None
    """Told the histories each open channel depends on (troth.node.channel_pins)."""
    unserved: Callable[[RoutedMessage, ChannelEnd], Awaitable[bool]] | None = None
    """Answers a request to a `/service/...` address the node does not serve as the decision
    point says (`ServiceHost.unserved`: False, a member, is answered `no-route` here)."""
    _half_open: dict[ChannelEnd, ChannelTrust] = field(default_factory=dict)  # responder
    # handshakes (oldest first) and the trust each gets once open
    _networks: dict[ChannelEnd, str] = field(default_factory=dict)  # the network of each
    # half-open end's source (`source_network_of`: review 53g, handshakes 1)
    _users: dict[Identifier, set[ChannelEnd]] = field(default_factory=dict)  # the open ends
    # by peer identity (the per-peer channel limit)
    _budgets: dict[frozenset[bytes], tuple[PeerReassembly, set[ChannelEnd]]] = field(
        default_factory=dict
    )  # the reassembly budgets by member (`member_accounts`: a member's delegates share its
    # budget, review 41b, delegates 1), and the ends drawing on each
    _budget_of: dict[ChannelEnd, frozenset[bytes]] = field(default_factory=dict)
    _members: MemberChannels = field(default_factory=MemberChannels)  # responder ends by
    # each member they count against (the per-member limit; review 58i, channels 1)
    _member_bytes: MemberBytes = field(default_factory=MemberBytes)  # each member's reassembly
    # bytes, every budget of a set with it included (review 58l, reassembly 1)
    _per_source: collections.Counter[str] = field(default_factory=collections.Counter)
    # responder ends (handshaking or open) per source
    _over: dict[Address, set[ChannelEnd]] = field(default_factory=dict)  # the ends by the
    # connection they run over, their peer route's first hop (`connection_lost`)
    _opening_over: dict[Address, set[ChannelEnd]] = field(default_factory=dict)  # the ends
    # `open` waits for, by the first hop of the route they are opened on (no peer route yet:
    # `connection_lost` fails them when that connection closes; review 48h, sources 2)
    _sweeper: asyncio.TimerHandle | None = None
    _log: RateLimitedLog | None = None
    _flushing: set[asyncio.Task[None]] = field(default_factory=set)  # keepalive, close sends
    _reassembly: Shares = field(init=False)  # the node's bytes, every peer's budget draws on
    _notices: NoRouteNotices = field(init=False)  # troth.node.no_route
    _open: OpenChannels[ChannelEnd] = field(init=False)  # the node's cap on the channels
    # peers opened (troth.node.channel_cap; review 54k, channels 1)
    _pinned: ChannelPins = field(init=False)  # each open channel's pins (troth.node.channel_pins)
    _openings: OpeningRates = field(init=False)  # messages 1 taken up per network

    def __post_init__(self) -> None:
        if self.limits.reassembly_timeout is not None:
            timeout = self.limits.reassembly_timeout
            self.settings = dataclasses.replace(self.settings, reassembly_timeout=timeout)
        self.settings = self.limits.keepalive(self.settings)
        self._log = RateLimitedLog(log, self.limits.log_lines_per_minute)
        self._reassembly = Shares(self.trusted)
        self._notices = NoRouteNotices(self)
        self._open = OpenChannels(self.limits.max_open_channels, lambda: self.trusted())
        self._pinned = ChannelPins(self.pins)
        self._openings = OpeningRates(
            rate=self.limits.handshake_rate, burst=self.limits.handshake_burst
        )

    def start(self) -> None:
        """Serve the channel listener (`/service/channels`), and send no-route notices for
        what the router drops for a dead `/worker/...` hop (troth.node.no_route)."""
        self.router.register(LISTENER, self._listen)
        self.router.unroutable = self._notices.unroutable

    def ends_over(self, connection: Address) -> tuple[ChannelEnd, ...]:
        """The channel ends whose peer route's first hop is `connection`."""
        return tuple(self._over.get(connection, ()))

    def close_end(self, end: ChannelEnd, reason: ChannelFailure, detail: str) -> None:
        """Close `end` here and forget it (its CLOSE frame is not sent)."""
        self._on_closed(end, end.channel.close(reason, detail))

    async def open(
        self,
        route: Route,
        *,
        trust: ChannelTrust | None = None,
        me: ChannelIdentity | None = None,
    ) -> ChannelEnd:
        """Open a channel to the listener at the end of `route`; wait for the handshake.
        `trust` replaces the manager's for this channel only; `me` the identity it shows.
        The handshake timeout counts from the identity taken, its routing included: it bounds
        how long after that the channel key does its DH (limits.MAX_HANDSHAKE_TIMEOUT; review
        70k, wave1a 2: only the wait after a slow routing counted)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        channel = SecureChannel.initiate(
            me=me or self.me(), trust=trust or self.trust(), settings=self.settings
        )
        end = self._add(channel, ())
        end.direct = len(route) == 1  # the listener at the end of our own connection (when
        # the node there answers: `_track`)
        (first,) = channel.outgoing()
        timeout = self.limits.handshake_timeout
        opening = self._opening_over.setdefault(route[0], set())
        opening.add(end)
        try:
            await self.router.route(RoutedMessage((*route, LISTENER), (end.dec,), first))
            left = started + timeout - loop.time()  # (0 or less: at once, unless established)
            await asyncio.wait_for(asyncio.shield(end.established), left)
        except TimeoutError:
            await end.close(ChannelFailure.TIMEOUT)
            where = format_route(route)
            raise ChannelError(
                ChannelFailure.TIMEOUT, f"no handshake from {where} within {timeout} s"
            ) from None
        except BaseException:
            await end.close(ChannelFailure.HANDSHAKE_FAILED)
            raise
        finally:
            opening.discard(end)
            if not opening and self._opening_over.get(route[0]) is opening:
                del self._opening_over[route[0]]
        return end

    async def _listen(self, message: RoutedMessage, source: Source | None) -> None:
        payload = message.payload
        if len(payload) != len(_MESSAGE_1) + 32 or bytes(payload[:3]) != _MESSAGE_1:
            raise RoutingError("not a secure channel message 1")  # no state for garbage
        source_key = source.origin(message.return_route) if source is not None else "local"
        own = own_link(source, message.return_route)
        if own and isinstance(source, Connection):  # the node at its other end: one source,
            # not one per reply address of its channels (review 54o, channels 3)
            source_key = str(source.address)
        network = source_network_of(source_key)
        forwarded = behind_other_end(source, message.return_route, source_key)
        self._make_room(source_key, network, rated=source is not None, forwarded=forwarded)
        trust = self.trust()
        limited = ChannelsPerPeer(
            trust.policy,
            self._channels_opened_by,
            self.limits.max_channels_per_peer,
            member_count=self._channels_opened_by_member,
            member_limit=self.limits.max_channels_per_member,
            room=lambda peer: self._room(peer, source_key, own, network, forwarded),
        )
        channel = SecureChannel(
            initiator=False,
            me=self.me(),
            trust=dataclasses.replace(trust, policy=limited),
            settings=self.settings,
        )
        end = self._add(channel, message.return_route, source, source_key)
        end.direct = (  # it connected, and sent this itself (not a member it forwards for:
            isinstance(source, Connection)  # review 72i, ends 1)
            and not source.outgoing
            and from_other_end(message.return_route)
        )
        end.forwarded = forwarded
        self._half_open[end] = trust
        self._networks[end] = network
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

    def _make_room(
        self, source_key: str, network: str, *, rated: bool = True, forwarded: bool = False
    ) -> None:
        """Room for one more half-open handshake from a source (RoutingError when none); one
        of its network's handshake budget spent (`rated`: not for the node's own), once the
        source's own limits let it in (review 57c, handshakes 1: what they refuse costs the
        node nothing, and spent no budget, so one source's flood leaves its neighbours' own).
        `forwarded`: from a party behind the node at the other end of a connection, which may
        hold only `forwarded_room` of the source's limit (review 72p, ends2 1) and of its
        handshakes in progress (review 72r, room 1: the members held them all, refusing the
        node's own message 1). Past the node's half-open total, `half_open_victim` gives way
        (never the node's own for such a party's: review 72x, halfopen 1)."""
        limit = self.limits.max_channels_per_source
        if self._per_source[source_key] >= (forwarded_room(limit) if forwarded else limit):
            self.counters.refused_channels_per_source += 1
            self._note("refused a handshake: %s holds its channels' limit", source_key)
            raise RoutingError("too many channels from this source")
        held = sum(1 for end in self._half_open if end.source_key == source_key)
        most = self.limits.max_half_open_per_source  # (the same room kept: review 72r, room 1)
        if held >= (forwarded_room(most) if forwarded else most):
            self.counters.refused_half_open_per_source += 1
            self._note("refused a handshake: %s has %d in progress", source_key, held)
            raise RoutingError("too many handshakes in progress from this source")
        if rated and not self._openings.take(source_key, network, forwarded=forwarded):
            self.counters.refused_handshake_rate += 1
            self._note("refused a handshake: %s past its handshake rate", network)
            raise RoutingError("too many handshakes from this network")
        if len(self._half_open) < self.limits.max_half_open:
            return
        victim = half_open_victim(self._networks, source_key, network, forwarded=forwarded)
        if victim is None:  # only the node's own would give way (review 72x, halfopen 1):
            self.counters.refused_half_open_per_source += 1  # its opening given back (review
            if rated:  # 73k, kept 3: refused, it spent the budget of the node's neighbours)
                self._openings.give_back(source_key, network)
            raise RoutingError("too many handshakes in progress from this source")
        self.counters.evicted_half_open += 1
        self._on_closed(victim, victim.channel.close(ChannelFailure.TIMEOUT, "evicted"))

    def holds_channels_of(self, identifier: Identifier) -> bool:
        """Whether an open channel's peer is `identifier` (the closed hooks see the end that
        closed already forgotten)."""
        return identifier in self._users

    def _channels_opened_by(self, identifier: Identifier) -> int:
        users = self._users.get(identifier)
        if users is None:
            return 0
        return sum(1 for end in users if not end.channel.initiator)

    def _channels_opened_by_member(self, peer: VerifiedPeer) -> int:
        """Open channels the peers of `peer`'s members opened to this node: their delegates' too
        (`member_accounts`; review 43a, channels 1), the most of one of them (a peer with
        chains from several counts against each: review 58i, channels 1)."""
        return self._members.most(member_accounts(peer))

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
        """Index `end` by the connection it runs over, once its peer route is known; a channel
        this node opened to a one-hop route is `direct` only when the peer that answered is the
        node at the other end of that hop (`from_other_end`): a relay name's hop reaches a
        member behind another node too (review 72i, ends 1)."""
        if end.peer_route and end.enc in self.ends:  # (not one forgotten already)
            self._over.setdefault(end.peer_route[0], set()).add(end)
            if end.channel.initiator:
                end.direct = end.direct and from_other_end(end.peer_route)

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
        elif isinstance(event, GivenUp):
            self.counters.reassembly_given_up += event.messages
            self._note("%s: gave up %d incomplete messages", end.name, event.messages)
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
        if end.forgotten:  # a refresh after a message whose delivery waited while the end was
            return  # closed: counted again, it was counted for good (review 58s, channels 1)
        # the routes to the services (each request is then decided by the node)
        end.allowed.grant(self.services())
        trust = self._half_open.pop(end, None)
        network = self._networks.pop(end, None)  # as message 1 found it (review 54y)
        if trust is not None:  # a responder's handshake completed: the per-peer limit is done
            end.channel.trust = trust
            if network is not None:  # its opening spent nothing that a flood could use
                self._openings.give_back(end.source_key, network)
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
            if not self._take_place(end, peer, network):  # the node's cap (54k, channels 1)
                return
        self._pinned.hold(end, peer)  # released as it is forgotten (review 55q, pins)
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
                members=account,
                tally=self._member_bytes,
            )
            entry = self._budgets[account] = (budget, set())
        budget, holders = entry
        budget.count_against(authorities)  # a refresh (Established again) may change them
        users = self._users.setdefault(peer.identifier, set())
        if end not in users:
            users.add(end)
            holders.add(end)
            if not end.channel.initiator:
                self._members.add(end, account)
            closed = end.channel.share_reassembly_budget(budget)
            if closed is not None:  # fragments sent with message 3 passed the peer's budget
                self._on_closed(end, closed)
                return
        if not end.channel.initiator and not end.established.done():
            end.established.set_result(peer)

    def _room(self, peer: VerifiedPeer, key: str, own: bool, net: str, behind: bool) -> bool:
        """Whether `peer`, opening a channel from source `key` of network `net` (`own`: at the
        other end of a connection this node made; `behind`: `ChannelEnd.forwarded`), finds room
        under the node's cap on open channels (its handshake's policy asks at message 3; the
        place is taken, checked again, as the channel is taken in: `_take_place`)."""
        counted = counts_against(peer, key, own)
        stranger, room = counted == STRANGERS_ONLY, self._open.admits
        if room(stranger=stranger, source=key, network=net, authorities=counted, behind=behind):
            return True  # the place is picked as the channel is taken in (54o, channels 2)
        self.counters.refused_open += 1
        self._note("refused a channel from %s: the node holds its most channels", key)
        return False

    def _take_place(self, end: ChannelEnd, peer: VerifiedPeer, network: str | None) -> bool:
        """A place for responder `end`, just opened by `peer` from `network` (its source's,
        as its message 1 found it: not parsed again, review 54y; None: worked out here), under
        the node's cap on open channels (`troth.node.channel_cap`): a stranger's channel may
        give way for it (closed, its CLOSE sent in a task of its own), or it is closed (`peer
        not allowed`)."""
        if network is None:
            network = source_network_of(end.source_key)
        counted = counts_against(peer, end.source_key, own_link(end.source, end.peer_route))
        # parties behind a node give way first within their source, never for them its own
        # (review 73g, notices3 2; review 73k, kept 1: a source of their own was a second one)
        where = Opener(
            stranger=counted == STRANGERS_ONLY,
            source=end.source_key,
            network=network,
            authorities=counted,
            behind=end.forwarded,
        )
        place = self._open.place(**where)
        if not place.admitted:
            self.counters.refused_open += 1
            detail = "this node holds its most channels"
            self._on_closed(end, end.channel.close(ChannelFailure.PEER_NOT_ALLOWED, detail))
            return False
        victim = place.victim
        if victim is not None:
            self.counters.evicted_open += 1
            who = victim.peer.identifier if victim.peer else "?"
            self._closing(victim, logging.INFO, "%s with %s closed: evicted at the cap", who)
            event = victim.channel.close(ChannelFailure.TIMEOUT, "evicted for a new channel")
            task = asyncio.get_running_loop().create_task(self._close_sent(victim))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
            self._on_closed(victim, event)
        self._open.add(end, **where)
        return True

    def _on_closed(self, end: ChannelEnd, event: Closed) -> None:
        if not end.established.done():
            end.established.set_exception(
                ChannelError(event.reason, event.detail, by_peer=event.by_peer)
            )
        self._forget(end)

    def _forget(self, end: ChannelEnd) -> None:
        end.forgotten = True  # the messages of a packet it is handling go with it
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
        self._networks.pop(end, None)
        self._open.discard(end)
        self._pinned.release(end)
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
        self._members.discard(end)
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
        serves its address (a `/service/...` one: to a caller the decision point admits to
        members-only methods, else the denial they give, `unserved`; review 64b, access 1),
        `busy` when its next hop dropped it (`Congested`: the way on is up
        but not reading; docs/protocols.md, "Services": the request did not run, its caller
        sends it again later; review 27c, congested 2)."""
        try:
            limit = end.channel.settings.max_message
            inner = RoutedMessage.arrived(payload, end.enc, max_size=limit)
        except (DecodeError, RoutingError) as exc:
            self._note("%s: dropped a malformed inner message: %s", end.name, exc)
            return
        if inner.onward[:1] == (NOTICE_SERVICE,):  # a no-route notice (troth.node.no_route)
            self._notices.received(end, inner)
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
            hop, hide = inner.onward[0], self.unserved
            if (  # a stranger's is answered a denial (review 64b, access 1)
                hop.kind == "service"
                and hide is not None
                and not self._serves(hop)
                and await hide(inner, end)
            ):
                return
            await self._refuse(inner, NO_ROUTE, str(exc))
        except TrothError as exc:
            self._note("%s: dropped an inner message: %s", end.name, exc)

    def _serves(self, address: Address) -> bool:
        """Whether `address` is a service this node serves to its channels."""
        return address in self.services() and self.router.has(address)

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

    def note(self, message: str, *args: object) -> None:
        """Log within the channels' lines a minute (what peers choose how many of)."""
        self._note(message, *args)

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
        keepalive interval): PINGs are sent, channels silent past the timeout closed, and a
        channel this node opened whose message went unanswered is probed (`ChannelEnd.probe`,
        docs/protocols.md "Unanswered channels")."""
        for end in list(self.ends.values()):
            events = end.channel.keepalive(now)
            end.probe(now)  # a message of ours unanswered: is the peer still there?
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
        (its first hop), at once rather than at its keepalive timeout, and fail every
        handshake `open` waits for that was opened on it (`/tcp/host:port`: the transport
        says that address too for its outgoing connection). Only those are looked at
        (indexed by first hop: a scan of every channel per connection closed cost 2 ms with
        10,000 channels, and closing a connection costs nothing; review 34e, connections 1)."""
        self._notices.forget(connection)
        for end in list(self._over.get(connection, ())):
            if end.peer_route and end.peer_route[0] == connection:
                if end.channel.state is ChannelState.OPEN:
                    peer = end.peer.identifier if end.peer else "?"
                    self._closing(
                        end, logging.INFO, "%s with %s closed: its connection closed", peer
                    )
                event = end.channel.close(ChannelFailure.PEER_CLOSED, "its connection closed")
                self._on_closed(end, event)
        # the handshakes opened on it, their message 1 sent over it, whose answer cannot come
        # now: failed at once (a node at its connection limits closes a newcomer's connection
        # as it accepts it: review 48h, sources 2, where the handshake waited its 10 s)
        for end in list(self._opening_over.get(connection, ())):
            if end.channel.handshaking:
                why = "its connection closed before the handshake was answered"
                self._on_closed(end, end.channel.close(ChannelFailure.PEER_CLOSED, why))

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
            if not events and shows_fewer(self._budget_of.get(end), end.peer):  # (58s, channels 2)
                events = [end.channel.close(ChannelFailure.PEER_NOT_ALLOWED, UNSHOWN)]
            if events:
                await end.handle(events)
                task = asyncio.get_running_loop().create_task(self._close_sent(end))
                self._flushing.add(task)
                task.add_done_callback(self._flushing.discard)

    async def _close_sent(self, end: ChannelEnd) -> None:
        with contextlib.suppress(TrothError):
            await end.flush()

    async def close_all(self) -> None:
        """Close every channel, each on its own, and stop the timers whatever failed; the first
        failure raised after (review 63t, lifecycle 1: one first hop raising left every later
        channel open and the timers running on a stopped node)."""
        failure: Exception | None = None
        try:
            for end in list(self.ends.values()):
                try:
                    await end.close()
                except Exception as exc:  # its end is forgotten all the same (review 55u)
                    failure = failure or exc
        finally:
            if self._sweeper is not None:
                self._sweeper.cancel()
                self._sweeper = None
            for task in list(self._flushing):
                task.cancel()
        if failure is not None:
            raise failure
