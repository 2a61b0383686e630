"""The relay service (`/service/relay`) and the relay addresses (`/relay/<name>`): a member
without a listening port asks a node to forward `/relay/<name>` to it over its own connection
(docs/protocols.md, "Relays").

`create(name)` needs a credential whose `troth.relay` attribute holds `name` or `*` (the access
rule, decided before the handler runs, and again by the decision point as it runs: review 68f,
relays 1), from `authority` alone when given: the node's
composition gives the authority the node hosts, so a hub relays for its own members only, not
for those of every authority it enrolls with (review 38a, relay 1: a co-trusted authority's
`troth.relay=*` claimed the hub's names); a node hosting none relays for the members of every
authority it trusts (their shares of the names: troth.node.shares). A name belongs to the identity
that created it: when its owner's channel closes, the name stays reserved for that owner for a
grace period (`RELAY_GRACE`, 5 minutes by default), so that another holder of `troth.relay=*`
cannot take it over while the owner reconnects. An owner that created its name again over
another channel keeps the earlier ones it is still open on (`Relay.others`, at most
`limits.MAX_CHANNELS_PER_MEMBER`): when the channel it forwards over closes, it forwards over
the latest of them that still shows its owner and, with a decision point, may still create it
(review 49n, relays 1), and is held only once none does. Each maintenance round decides
`create` again for the owner of every relay whose channel is open, and a refused one is held
the same way (`_recheck`), and its owner's connection and the node's other connections forget
each other as reply paths, so neither a sender nor the owner reaches the other past the name
any more (`_cut_off`; review 65p, relays 1), when that connection is the owner's own: one
behind another node, over a connection this node opened to it, shares it with every other
party there, and is cut off by its name only (review 65s, relays 1; the hops past a
connection this node accepted are the owner's own say: `Relay.behind`, review 66f, relays 1,
unless another member's name here forwards straight over it: that member is its own party,
review 66q, relays 1);
so are the owner's own connections the name forwarded over before, still open
(`Relay.earlier`; review 65s, relays 2; one pushed out of it is cut as it goes: review 66f,
relays 2); one another name still up forwards over is cut once none does (review 66f, relays
4). The names and their owners are kept in
`<node dir>/relays.json` (`RelayBook`), so a restarted relay node holds every name for its
owner for the grace period too. One member (the names of identities it delegated to
included) holds at most `limits.MAX_RELAYS_PER_OWNER` names, a node at most
`limits.MAX_RELAYS` (past it, a member whose authority holds less than its share still
creates one: troth.node.shares).

**Relay not found** (docs/protocols.md): the service is the router's transport for `relay`
addresses. A message to a relay that is up goes on over its owner's connection; a message to
any other name — unknown, held for an owner who is gone, or whose owner's connection just
closed — is dropped and answered with one route error, `relay not found`
(troth.channel.route_error), sent back along the route it came by; a message for a name that is
up that grew past a limit here is dropped with no answer (review 63d, relays 1). The answer is
the same in every one of those cases, and never larger than the message it answers, so a prober
learns only what trying the name already told it (a relay that is up answers a message 1 with
a message 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from troth import limits
from troth.channel import RouteProblem, route_error
from troth.encoding import cbor
from troth.errors import (
    Congested,
    DecodeError,
    Denied,
    RemoteError,
    RoutingError,
    TrothError,
    Unreachable,
)
from troth.identity import Identifier
from troth.node.access import (
    AccessRequest,
    AttributeCoversArgument,
    Decision,
    PeerCaller,
    member_accounts,
)
from troth.node.books import IdentifierBook
from troth.node.channel_ends import ChannelEnd
from troth.node.channels import ChannelManager
from troth.node.services.base import LOG_LINES_PER_MINUTE, Method, RequestContext, to_the_end
from troth.node.shares import Shares, authorities_of
from troth.node.worker import StoreWorker
from troth.routing import Address, Route, RoutedMessage, Router
from troth.transport.connection import Connection
from troth.transport.ratelog import RateLimitedLog

__all__ = ["RELAY_ATTRIBUTE", "RELAY_GRACE", "Relay", "RelayBook", "RelayService"]

log = logging.getLogger("troth.node.relay")
RELAY_ATTRIBUTE: Final = "troth.relay"
RELAY_GRACE: Final = 300
"""Seconds a relay name stays reserved for its owner after the owner's channel closed (or
after the relay node started, for the names it kept)."""
NOT_FOUND: Final = route_error(RouteProblem.RELAY_NOT_FOUND)
_FOR_GOOD: Final = ""  # (no relay name is empty) what cuts a connection whatever any relay's
# state (`RelayService._cut_off`): one whose marks grew past MAX_RELAYS_PER_OWNER
_Want = str | tuple[str, Identifier]
"""What keeps a connection wanting a cut (`RelayService._uncut`): the name of a relay refused
(while that relay is not up), `_FOR_GOOD`, or a mark (name, owner): that relay freed or its
name taken by another owner since (review 66n, relays 1; review 67m, relays 1), or the
connection pushed out of its `Relay.earlier` (review 66f, relays 2), wanting the cut until
that owner creates that name again over the connection, its own (allowed again: review 67m,
relays 2)."""


@dataclass(slots=True)
class Relay:
    """One relay name: its owner, the connection messages are forwarded to (None for a name
    kept across a restart, until its owner comes back) and the hops past it to the owner's
    node (`beyond`: an owner that reached this node through other relays), the owner's
    channel, and when that channel was lost (None while it is open)."""

    owner: Identifier
    connection: Address | None
    channel: str
    lost_at: int | None = None
    accounts: frozenset[bytes] = frozenset()  # whose quota it counts in (member_accounts)
    authorities: frozenset[bytes] = frozenset()  # whose share it counts in (authorities_of)
    refused: bool = False  # held since `lost_at` because its owner may no longer create it,
    # its channel still open (`RelayService._recheck`: forwards again once it may)
    beyond: Route = ()  # the hops past `connection` to the owner's node: an owner that came
    # through other relays (review 45e, relay 1)
    others: tuple[str, ...] = ()  # the owner's other open channels it was created over, the
    # latest last: where it forwards when `channel` closes (review 49n, relays 1)
    earlier: Route = ()  # the owner's own connections it forwarded over before `connection`,
    # still open (the latest MAX_CHANNELS_PER_MEMBER): its senders' reply paths may name them,
    # so a refusal cuts them too (review 65s, relays 2); one pushed out is cut as it goes
    # (review 66f, relays 2)
    behind: bool = False  # the owner is behind the node at the other end of `connection`, one
    # this node opened (every other party there shares it): cut by its name only. Hops past a
    # connection this node accepted are the owner's own say: cut by it (review 66f, relays 1),
    # unless another member's name forwards straight over it (`_own_connection`; review 66q)
    shown: PeerCaller | None = None  # the owner as its channel last showed it: a name held
    # for a channel closed is decided again by it (`RelayService._recheck`; review 67m, relays 3)
    # while its owner has no channel open (review 67s, relays 1)


class RelayBook(IdentifierBook):
    """The relay names a node holds and their owners, in `<node dir>/relays.json`:
    {"version": 1, "relays": {name: owner identifier}} (troth.node.books)."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            field="relays",
            what="relay book",
            max_entries=2 * limits.MAX_RELAYS,  # past MAX_RELAYS: shares (troth.node.shares)
            max_bytes=limits.MAX_RELAY_FILE_BYTES,
            key=lambda name: Address("relay", name).value,
        )


class RelayService:
    """Forwards `/relay/<name>` to the connection of the member that created it; answers
    `relay not found` for every other name."""

    name = "relay"
    kind = "relay"  # the router's transport for relay addresses
    oneway: Method | None = None

    def __init__(
        self,
        router: Router,
        channels: ChannelManager,
        *,
        me: str,
        clock: Callable[[], int],
        grace: int = RELAY_GRACE,
        book: RelayBook | None = None,
        kept: Mapping[str, Identifier] | None = None,
        worker: StoreWorker | None = None,
        trusted: Callable[[], int] = lambda: 1,
        decide: Callable[[AccessRequest], Decision] | None = None,
        authority: Identifier | None = None,
        feed_hooks: list[Callable[[Any], None]] | None = None,
        sources: Callable[[], Iterable[Connection]] | None = None,
    ) -> None:
        self.router = router
        self.channels = channels
        self.me = me
        self.clock = clock
        self.grace = grace
        self.book = book
        self.worker = worker
        self.trusted = trusted
        """How many authorities the node trusts now (their shares of the names)."""
        self.decide = decide
        """The node's decision point: each maintenance round asks it again whether every
        relay's owner may still create its name (None: not asked)."""
        self.sources = sources
        """The node's connections (their reply paths): a relay refused is forgotten there
        (`_cut_off`)."""
        now = clock()
        self.relays: dict[str, Relay] = {
            name: Relay(owner, None, "", lost_at=now) for name, owner in (kept or {}).items()
        }
        self._uncut: dict[Address, set[_Want]] = {}
        """Connections a cut left for another name up over them, with the names of the relays
        that cut them (`_cut_off`; review 66f, relays 4)."""
        self._saving: set[asyncio.Task[Any]] = set()  # writes of relays.json under way
        self._lines = RateLimitedLog(log, LOG_LINES_PER_MINUTE)  # the re-check's: owners choose
        # how often their names change (what their channels show; review 24b, relays 1)
        self.not_found = 0
        """Messages answered `relay not found`."""
        self.methods: Mapping[str, Method] = {
            # only `authority`'s grant counts (None: any trusted one's)
            "create": Method(
                self.create, AttributeCoversArgument(RELAY_ATTRIBUTE, authority=authority)
            )
        }
        channels.closed_hooks.append(self._channel_closed)
        router.add_transport(self)
        # a feed installed (a revocation held) decides the owners again at once, not at the
        # next maintenance round (review 63u, relay 3): `feed_hooks` is NodeTrust's
        self._feed_hooks = feed_hooks
        self._feed_counts: dict[Identifier, tuple[int, bytes]] = {}  # each authority's feed
        # last decided by: its count and head
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):  # made outside a running loop: no hook
            self._loop = asyncio.get_running_loop()
        if feed_hooks is not None and self._loop is not None:
            feed_hooks.append(self._feed_installed)

    def _feed_installed(self, feed: Any) -> None:
        """NodeTrust hook (any thread): a feed was installed; the re-check runs on the loop."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._feed_grew, feed.authority, feed.count, feed.head)

    def _feed_grew(self, authority: Identifier, count: int, head: bytes) -> None:
        """Decide the owners again when `authority`'s feed has entries it had not: the same
        feed installed again (each round's sync, each link's, each `feed.sync`) revokes nothing
        new, and re-deciding every relay on the loop for it was CPU for nothing (review 63u2,
        relay 1; the broker's hook counts the same way). Another feed of the same count (its
        host's store restored, then grown again) is decided again (review 63w2, relay 1), and
        so is one of fewer entries (restored further back: review 64d, feed 1; NodeTrust
        installs no shorter feed otherwise)."""
        if self._feed_counts.get(authority) == (count, head):
            return
        self._feed_counts[authority] = (count, head)
        self._recheck(self.clock())

    async def close(self) -> None:
        """Stop hearing of feeds (the node stops)."""
        if self._feed_hooks is not None:
            with contextlib.suppress(ValueError):
                self._feed_hooks.remove(self._feed_installed)

    async def create(self, arguments: Any, context: RequestContext) -> str:
        """Forward `/relay/<name>` to the caller's connection; its route."""
        caller = context.caller
        if not isinstance(caller, PeerCaller):
            raise RemoteError("relays are created over secure channels")
        try:
            name = Address("relay", cbor.expect_text(arguments, "relay name")).value
        except (DecodeError, RoutingError) as exc:
            raise RemoteError(str(exc)) from None
        end = self.channels.find(caller.channel)
        if end is None or not end.peer_route:
            raise RoutingError("the caller's channel is gone")
        decide = self.decide
        if decide is not None:  # decided again here, as a round would: the host decided as the
            # request arrived, and a feed installed before this task ran refused the caller and
            # cut it off already (review 68f, relays 1)
            decision = decide(AccessRequest(caller, self.name, "create", name, self.clock()))
            if not decision.allowed:
                raise Denied(decision.reasons)
        existing = self.relays.get(name)
        if existing is not None and existing.owner != caller.identifier and self._held(existing):
            raise Denied(
                (
                    f"{self.me} refused {caller}: relay {name!r} belongs to another identity "
                    f"({existing.owner}), reserved for it {self._until(existing)}",
                )
            )
        new_owner = existing is None or existing.owner != caller.identifier
        accounts, authorities = member_accounts(caller.peer), authorities_of(caller)
        if new_owner:
            self._check_quota(caller.identifier, accounts, authorities, context.now)
        elif existing is not None and existing.connection is None:  # kept across a restart,
            # whose member was not known: counted now, as a new name (review 27b, relays 2)
            self._check_quota(caller.identifier, accounts, authorities, context.now, name)
        # the way to the owner's node: its channel's route back, but the channel's own end
        # (not only the first hop: an owner behind another relay; review 45e, relay 1)
        first, *beyond = end.peer_route[:-1] or end.peer_route
        others: tuple[str, ...] = ()
        if existing is not None and not new_owner:  # its owner's channels still open
            channels = (*existing.others, existing.channel)
            others = tuple(
                c for c in channels if c != caller.channel and self.channels.find(c) is not None
            )[-limits.MAX_CHANNELS_PER_MEMBER :]
        earlier, dropped = (
            ((), ()) if existing is None or new_owner else self._earlier(existing, first)
        )
        if existing is not None and new_owner:  # its refused owner's cuts stay (67m, relays 1)
            self._let_go({name: existing.owner})
        self.relays[name] = Relay(
            caller.identifier,
            first,
            caller.channel,
            None,
            accounts,
            authorities,
            beyond=tuple(beyond),
            others=others,
            earlier=earlier,
            behind=_behind(end, first, beyond),
            shown=caller,
        )
        if self._uncut:  # its owner allowed again over its connection (67m, relays 2)
            straight = _straight_over(self.relays.values())
            for connection in _own_connection(self.relays[name], straight):
                self._uncut.get(connection, set()).discard((name, caller.identifier))
        self._cut_off(dict.fromkeys(dropped, ((name, caller.identifier),)))
        if new_owner:  # kept even if this request is cancelled meanwhile (its channel closed)
            await to_the_end(self._save(), self._saving)
        return f"/relay/{name}"

    def _earlier(self, relay: Relay, now: Address) -> tuple[Route, Route]:
        """`relay.earlier` once it forwards over `now`: its connection until then too when that
        was its owner's own (not `behind` another node), those closed since dropped; and those
        pushed out of the latest MAX_CHANNELS_PER_MEMBER, for the caller to cut off once the
        relay forwards over `now` (`_cut_off`: a refusal would not cut them any more; review
        66f, relays 2)."""
        own = _own_connection(relay, _straight_over(self.relays.values()))
        kept = tuple(
            dict.fromkeys(c for c in (*relay.earlier, *own) if c != now and self.router.has(c))
        )
        window = max(0, len(kept) - limits.MAX_CHANNELS_PER_MEMBER)
        return kept[window:], kept[:window]

    def _check_quota(
        self,
        owner: Identifier,
        accounts: frozenset[bytes],
        authorities: frozenset[bytes],
        now: int,
        kept: str | None = None,
    ) -> None:
        """RemoteError past the member's MAX_RELAYS_PER_OWNER names, or past the node's share
        for its authorities. `kept`: a name kept across a restart that its owner creates
        again (not counted among the member's; it holds its place among the node's)."""
        held = sum(
            1
            for name, relay in self.relays.items()
            if name != kept and (relay.owner == owner or not accounts.isdisjoint(relay.accounts))
        )
        if held >= limits.MAX_RELAYS_PER_OWNER:
            raise RemoteError(
                f"{owner} holds {held} relay names here (its member's delegates' included), "
                "the most one member may hold"
            )
        if (
            kept is None
            and not self._room(authorities)
            and not (self._free_expired(now) and self._room(authorities))
        ):
            raise RemoteError(
                f"this node holds {len(self.relays)} relay names, its most (its share of them "
                "for each of the member's authorities)"
            )

    def _room(self, authorities: frozenset[bytes]) -> bool:
        held = (relay.authorities for relay in self.relays.values())
        return Shares.counted(self.trusted, held).room(authorities, limits.MAX_RELAYS)

    def _held(self, relay: Relay) -> bool:
        return relay.lost_at is None or self.clock() < relay.lost_at + self.grace

    def _until(self, relay: Relay) -> str:
        if relay.lost_at is None:
            return "while its channel is open"
        return f"until {relay.lost_at + self.grace} (its channel closed at {relay.lost_at})"

    # -- the router's transport for /relay/<name> --------------------------------------------

    async def send(self, address: Address, message: RoutedMessage) -> None:
        """Forward a message (already past `/relay/<name>`) to the relay's owner; else answer
        `relay not found` and drop it (RoutingError)."""
        relay = self.relays.get(address.value)
        if relay is not None and relay.lost_at is None and relay.connection is not None:
            onward = RoutedMessage(
                (relay.connection, *relay.beyond, *message.onward),
                message.return_route,
                message.payload,
            )
            try:
                await self.router.route(onward)
                return
            except Congested:  # the owner does not read: this frame dropped, the relay up
                raise
            except Unreachable:  # the owner's connection just closed: not found either
                pass
            except RoutingError:  # likewise when it is gone; else it is up, and this message
                if self.router.has(relay.connection):  # grew past a limit here (the return
                    raise  # route's hop, the owner's hops in place of the name): dropped,
                    # no `relay not found` (review 63d, relays 1)
        self.not_found += 1
        # the same answer for every name not up; never more bytes than the message it answers
        if message.return_route and len(message.payload) >= len(NOT_FOUND):
            answer = RoutedMessage(message.return_route, (), NOT_FOUND)
            with contextlib.suppress(TrothError):
                await self.router.route(answer)
        raise RoutingError(f"{address}: relay not found")

    # -- owners coming and going -----------------------------------------------------------------

    def _channel_closed(self, end: ChannelEnd) -> None:
        for name, relay in self.relays.items():
            if end.id in relay.others:
                relay.others = tuple(c for c in relay.others if c != end.id)
            if relay.channel == end.id:
                relay.refused = False  # held since it was refused, or from now on
                relay.shown = end.caller or relay.shown  # (a refresh since the last round)
                if not self._fall_back(name, relay) and relay.lost_at is None:
                    relay.lost_at = self.clock()
        if self._uncut:  # a name gone down: the connections it kept from a cut (relays 4)
            self._cut_off({})

    def _fall_back(self, name: str, relay: Relay) -> bool:
        """Forward `name` over the latest other open channel its owner created it over that
        still shows the owner (and may still create it); whether there was one. The channels
        tried are dropped from `relay.others`."""
        while relay.others:
            *rest, last = relay.others
            relay.others = tuple(rest)
            end = self.channels.find(last)
            caller = end.caller if end is not None else None
            if end is None or caller is None or caller.identifier != relay.owner:
                continue
            if not end.peer_route:
                continue
            decide = self.decide
            request = AccessRequest(caller, self.name, "create", name, self.clock())
            if decide is not None and not decide(request).allowed:
                continue
            first, *beyond = end.peer_route[:-1] or end.peer_route
            relay.earlier, dropped = self._earlier(relay, first)
            relay.channel, relay.connection, relay.beyond = last, first, tuple(beyond)
            relay.behind, relay.lost_at = _behind(end, first, beyond), None
            relay.shown = caller
            self._cut_off(dict.fromkeys(dropped, ((name, relay.owner),)))
            return True
        return False

    def _free_expired(self, now: int) -> bool:
        freed = [
            name
            for name, relay in self.relays.items()
            if relay.lost_at is not None and now >= relay.lost_at + self.grace
        ]
        self._let_go({name: self.relays.pop(name).owner for name in freed})
        return bool(freed)

    def _let_go(self, owners: Mapping[str, Identifier]) -> None:
        """The relays of `owners`' names no longer stand there (freed, or created by another
        owner): a connection one of them wanted cut wants it by a mark (`_Want`) from now on.
        Before, the name up again under another owner let a connection go (review 67m, relays
        1)."""
        for wanting in self._uncut.values() if owners else ():
            gone = wanting.intersection(owners)
            if gone:
                wanting.difference_update(gone)
                _mark(wanting, ((name, owners[name]) for name in gone if isinstance(name, str)))

    async def _save(self) -> None:
        book, worker = self.book, self.worker
        if book is None or worker is None:
            return
        owners = {name: relay.owner for name, relay in self.relays.items()}
        try:
            await worker.run(book.save, owners)
        except OSError as exc:  # relaying goes on; the names are not kept across a restart
            log.error("cannot keep the relay names in %s: %s", book.path, exc)

    async def maintain(self, now: int) -> None:
        """Stop forwarding the names whose owner may no longer create them; free the names
        whose owner did not come back within the grace period."""
        self._recheck(now)
        if self._free_expired(now):
            await self._save()

    def _recheck(self, now: int) -> None:
        """Decide `create NAME` again for the owner of every relay whose channel is open, as
        the channel shows it now (review 23b, relays 1: an owner whose credential was revoked,
        showing no chain any more, keeps its channel as a stranger where strangers may
        enroll). One refused forwards nothing and is held for its owner for the grace period,
        as when its channel closes; allowed again within it (a stale feed that came back), it
        forwards again; the owner may also create it again once it may. One held for a channel
        closed is decided as its owner's latest open channel shows it, else as that channel
        last showed it (`Relay.shown`; review 67s, relays 1), and one refused is cut off as
        well, once (review 67m, relays 3: an owner closing its channel before its revocation
        reached the node, its connection kept open, was never cut)."""
        decide = self.decide
        if decide is None:
            return
        refused: dict[Address, set[str]] = {}  # the connections of the relays refused now
        straight: dict[Address, list[Relay]] | None = None  # the names straight over each
        # connection, gathered at the first refusal (`_own_connection`)
        latest: dict[Identifier, PeerCaller] | None = None  # each identity's latest open
        # channel's caller, gathered at the first name held for a closed channel
        for name, relay in self.relays.items():
            closed = relay.lost_at is not None and not relay.refused  # held for its owner
            if closed:
                if latest is None:
                    latest = self._latest_callers()
                caller = latest.get(relay.owner, relay.shown)  # as it shows itself now
            else:
                end = self.channels.find(relay.channel)
                caller = end.caller if end is not None else None
                relay.shown = caller or relay.shown
            if caller is None:
                continue
            decision = decide(AccessRequest(caller, self.name, "create", name, now))
            if decision.allowed and relay.refused:
                relay.lost_at, relay.refused = None, False
                self._lines.log(logging.INFO, "relay %s forwards again", name)
            elif not decision.allowed and not relay.refused:
                relay.lost_at, relay.refused = now if relay.lost_at is None else relay.lost_at, True
                reasons = "; ".join(decision.reasons)
                self._lines.log(logging.WARNING, "relay %s no longer forwards: %s", name, reasons)
                if straight is None:
                    straight = _straight_over(self.relays.values())
                own = _own_connection(relay, straight)
                # (one behind another node shares it with every other party there: its name
                # only; review 65s, relays 1; review 66f, relays 1: unless it only says so;
                # review 66q, relays 1: behind another member's name here)
                for connection in (*own, *relay.earlier):  # and those it forwarded over
                    refused.setdefault(connection, set()).add(name)  # before (65s, relays 2)
        self._cut_off(refused)

    def _latest_callers(self) -> dict[Identifier, PeerCaller]:
        """Each identity with a channel open, as its latest one shows it: a name held for a
        closed channel is decided by it, by `Relay.shown` only when its owner has none (review
        67s, relays 1: an owner back with a renewed credential was cut as its closed channel
        had shown its expired one)."""
        latest: dict[Identifier, PeerCaller] = {}
        for end in self.channels.ends.values():  # (in the order they were opened)
            caller = end.caller
            if caller is not None and end.peer_route:
                latest[caller.identifier] = caller
        return latest

    def _cut_off(self, connections: Mapping[Address, Iterable[_Want]]) -> None:
        """Relays refused forward nothing, past their names too: every connection of the node
        forgets their owners' `connections` as reply paths (review 65p, relays 1: a sender's
        message 2 came back over one, so the sender's connection allowed it, and the sender
        reached the refused owner there, new handshakes and all), but those a relay still up
        forwards over (another name of the owner's node: its senders' channels stay); and
        those connections forget every other as a reply path, so an owner refused reaches its
        senders through the node no more either (nor makes their connections allow its own
        again by what it sends them). Only owners' own connections are given (`_recheck`): an
        owner behind another node (`Relay.beyond`) shares its first hop with every other party
        there, whose reply paths the cut took too (review 65s, relays 1). Each connection goes
        through the smaller of what it remembers and what it forgets (`AllowSet.forget_each`):
        a cut cost every connection times every connection cut (review 66f, relays 3).

        `connections`: each with the names of the relays refused that cut it (or the marks of
        an earlier connection pushed out of its relay's: `_Want`). One another name still up
        forwards over is kept (`_uncut`) and cut once none does, while one of those relays is
        not up (review 66f, relays 4: nothing cut it once that name went down), or a mark
        stays; one closed meanwhile is forgotten. A relay freed since, or whose name another
        owner took, leaves its mark (`_let_go`), whoever holds its name next; an entry holds at
        most the names the node holds and MAX_RELAYS_PER_OWNER marks, past which they are one
        `_FOR_GOOD` (review 66n, relays 1: every name refused over it and freed since was kept,
        and gone through at each channel closed, until the connection closed)."""
        sources, uncut = self.sources, self._uncut
        if sources is None:
            return
        for connection, names in connections.items():
            _mark(uncut.setdefault(connection, set()), names)
        if not uncut:
            return
        relays = self.relays
        up = {r.connection for r in relays.values() if r.lost_at is None}
        cut: set[Address] = set()
        for connection, names in list(uncut.items()):
            wanting = {n for n in names if _down(relays, n)}
            if not wanting or not self.router.has(connection):
                del uncut[connection]
            elif connection not in up:
                del uncut[connection]
                cut.add(connection)
            else:
                uncut[connection] = wanting
        every = list(sources()) if cut else []
        addresses = {source.address for source in every}
        for source in every:
            source.allowed.forget_each(cut)
            if source.address in cut:  # the owner's own: the way back to its senders too
                source.allowed.forget_each(addresses)  # (the reply paths of what it was
                # forwarded)

    def status(self) -> dict[str, Any]:
        """Each relay name: its owner, and whether it forwards or is held for its owner."""
        return {
            name: {
                "owner": str(relay.owner),
                "state": "up" if relay.lost_at is None else "held " + self._until(relay),
            }
            for name, relay in sorted(self.relays.items())
        }


def _down(relays: Mapping[str, Relay], want: _Want) -> bool:
    """Whether `want` still wants its connection cut: a name that forwards nothing (held:
    refused, or its channel closed), or a mark (`_Want`; `_FOR_GOOD` is no name)."""
    relay = relays.get(want) if isinstance(want, str) else None
    return relay is None or relay.lost_at is not None


def _mark(wanting: set[_Want], more: Iterable[_Want]) -> None:
    """Add `more` to what a connection's cut waits for; past MAX_RELAYS_PER_OWNER marks, they
    are one `_FOR_GOOD` (an owner's delegates, each refused over it, do not grow it)."""
    wanting.update(more)
    marks = [want for want in wanting if not isinstance(want, str)]
    if len(marks) > limits.MAX_RELAYS_PER_OWNER:
        wanting.difference_update(marks)
        wanting.add(_FOR_GOOD)


def _straight_over(relays: Iterable[Relay]) -> dict[Address, list[Relay]]:
    """The names forwarding straight over each connection (no hop past it): its own party's.
    A refused one vouches for nobody (review 66y, relays 1: an operator's second member,
    refused before, kept its first, refused now naming a hop of its own, from its cut)."""
    straight: dict[Address, list[Relay]] = {}
    for relay in relays:
        if relay.connection is not None and not relay.beyond and not relay.refused:
            straight.setdefault(relay.connection, []).append(relay)
    return straight


def _own_connection(relay: Relay, straight: Mapping[Address, list[Relay]]) -> Route:
    """`relay.connection` if it is its owner's own, to be cut at its refusal; () if the owner is
    beyond the node at its other end, to be cut by its name only (every other party there shares
    it): `Relay.behind` (a connection this node opened), or hops past a connection another
    member's name here, not refused, forwards over with no hop past it (`straight`; its
    delegates' are its own: `member_accounts`). Review 66q, relays 1: that member is the
    connection's own party, a hub whose members reach this node through it, and one of them
    refused on purpose cut the hub's connection, every other party's reply paths there with it.
    The hops an owner names are its own say (review 66f, relays 1); the credential that granted
    another member a name here is not."""
    connection = relay.connection
    if connection is None or relay.behind:
        return ()
    if relay.beyond and any(
        other.owner != relay.owner and other.accounts.isdisjoint(relay.accounts)
        for other in straight.get(connection, ())
    ):
        return ()
    return (connection,)


def _behind(end: ChannelEnd, first: Address, beyond: Sequence[Address]) -> bool:
    """Whether the owner of a relay created over `end` (its way back: `first`, then `beyond`)
    is behind another node, at the other end of a connection this node opened: hops past a
    connection this node accepted are whatever the owner's message 1 named (review 66f, relays
    1), and an owner naming a hop of its own is no other node's party."""
    source = end.source
    return (
        bool(beyond)
        and isinstance(source, Connection)
        and source.address == first
        and source.outgoing
    )
