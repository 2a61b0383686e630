"""A running node (asyncio): its router, TCP transport, secure-channel listener, services
(echo, relay, and the authority when it hosts one), revocation feeds (synced page by page),
rotation announcements and continuous checks.

The node acts as its default identity (named like the node). It trusts the authorities it
enrolled with (and the one it hosts): their members are admitted to its services over secure
channels; the authority service alone also admits any authenticated identity, so that
newcomers can enroll with a ticket. Everything else is denied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Final

from troth.authority import Authority, Ticket
from troth.authority.client import (
    enroll_request,
    refresh_request,
    rotated_request,
    ticket_authority,
)
from troth.channel import (
    AllowIdentifiers,
    AnyAuthenticatedIdentity,
    AnyOf,
    ChannelIdentity,
    ChannelSettings,
    ChannelState,
    ChannelTrust,
    RequireAttributes,
    VerifiedPeer,
)
from troth.clock import Clock, SystemClock
from troth.credentials import Attributes, ChainVerifier, TrustPolicy, VerifiedFeed
from troth.credentials.wallet import Announcement, next_page
from troth.encoding import cbor
from troth.errors import NotFound, RemoteError, RoutingError, TrothError
from troth.identity import Identifier
from troth.node.channels import LISTENER, ChannelEnd, ChannelManager
from troth.node.node import Node
from troth.node.services import RequestContext, Service, call
from troth.routing import Address, Route, RoutedMessage, Router, Source, format_route, parse_route
from troth.transport import Listener, TcpTransport
from troth.vault import KeyPurpose
from troth.vault.ephemeral import VaultDhKey

__all__ = ["NodeRuntime", "split_service_route"]

log = logging.getLogger("troth.node")
ECHO: Final = Address("service", "echo")
SINK: Final = Address("service", "sink")
RELAY: Final = Address("service", "relay")
AUTHORITY: Final = Address("service", "authority")
RELAY_ATTRIBUTE: Final = "troth.relay"
MAINTENANCE_SECONDS: Final = 30
FEED_STALENESS: Final = 300
REFRESH_MARGIN: Final = 600  # refresh a member credential when it has 10 minutes left
FEED_REUSE: Final = 5  # seconds a signed feed page is served again before it is re-signed
FEED_PAGES_CACHED: Final = 64  # signed pages kept for reuse (by their first entry)


def _grants_relay(values: frozenset[str], name: str) -> bool:
    """Whether `troth.relay` attribute values allow creating relay `name`."""
    return name in values or "*" in values


def split_service_route(text: str) -> tuple[Route, Address]:
    """`/tcp/h:p[/relay/x]/service/echo` -> (route to the node, the service address)."""
    route = parse_route(text)
    if route[-1].kind != "service" or len(route) < 2:
        raise RoutingError(f"{text!r} must end with /service/NAME after the route to a node")
    return route[:-1], route[-1]


@dataclass
class _Cached:
    identity: ChannelIdentity
    until: int


class NodeRuntime:
    def __init__(
        self,
        node: Node,
        *,
        clock: Clock | None = None,
        settings: ChannelSettings | None = None,
        handshake_timeout: float = 10.0,
    ) -> None:
        self.node = node
        self.clock = clock or SystemClock()
        self.name = node.name
        self.router = Router()
        self.tcp = TcpTransport(self.router)
        self.feeds: dict[Identifier, VerifiedFeed] = {}
        self.channels = ChannelManager(
            self.router,
            me=self._me,
            trust=self._trust,
            access=self._access,
            settings=settings or ChannelSettings(),
            handshake_timeout=handshake_timeout,
            clock=self.clock.now,
        )
        self.listening: tuple[str, int] | None = None
        self.relays: dict[str, tuple[Address, Identifier]] = {}
        self._open: dict[str, ChannelEnd] = {}
        self._me_cache: _Cached | None = None
        self._verifier: ChainVerifier | None = None
        self._anchors: frozenset[Identifier] = frozenset()
        self._authority: Authority | None = None  # the authority this node hosts
        self._tasks: set[asyncio.Task[None]] = set()
        # signed pages of the hosted feed: since -> (the feed's length, signed at, page)
        self._pages: dict[int, tuple[int, int, bytes]] = {}
        self.sunk_messages = 0
        self.sunk_bytes = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, listen: tuple[str, int] | None = None) -> None:
        identities = self.node.identities
        try:
            identities.find(self.name)
        except NotFound:
            identities.create(now=self.clock.now(), name=self.name)
        with contextlib.suppress(NotFound):
            self._authority = self.node.authority()
        self._refresh_anchors()
        self._load_feeds()
        Service(self.router, "echo", {"echo": self._echo, "discard": self._discard}).start()
        Service(self.router, "relay", {"create": self._create_relay}).start()
        self.router.register(SINK, self._sink)
        if self._hosted is not None:
            Service(self.router, "authority", self._authority_methods()).start()
        self.channels.start()
        if listen is not None:
            listener = Listener(addresses=frozenset({LISTENER}), kinds=frozenset({"relay"}))
            self.listening = await self.tcp.listen(listen[0], listen[1], listener)
        self._spawn(self._maintain())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.channels.close_all()
        await self.tcp.close()

    @property
    def _hosted(self) -> Identifier | None:
        return None if self._authority is None else self._authority.identifier

    def _hosting(self) -> Authority:
        if self._authority is None:
            raise NotFound(f"node {self.name!r} hosts no authority")
        return self._authority

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_SECONDS)
            # each step on its own: a failing refresh must never stop the re-checks of peers
            for step in (
                self.refresh_feeds,
                self.refresh_credentials,
                self.announce_rotations,
                self.channels.check_peers,
            ):
                try:
                    await step()
                except Exception:  # logged, retried next round
                    log.exception("maintenance: %s failed", step.__name__)

    # -- trust -----------------------------------------------------------------------------------

    def _refresh_anchors(self) -> None:
        anchors = set(self.node.wallet.trusted())
        if self._hosted is not None:
            anchors.add(self._hosted)
        if frozenset(anchors) != self._anchors:
            self._anchors = frozenset(anchors)
            self._verifier = (
                ChainVerifier(
                    TrustPolicy(self._anchors, max_feed_staleness=FEED_STALENESS),
                    known=self.node.identities.observe,  # issuer histories: store-or-extend
                )
                if anchors
                else None
            )

    def _load_feeds(self) -> None:
        """The feeds this node holds (from its store, not verified again), whether fresh or not:
        verifications check freshness; the maintenance syncs them."""
        self._hosted_feed()
        for authority in self.node.wallet.trusted():
            feed = self.node.wallet.held_feed(authority)
            if feed is not None and authority != self._hosted:
                self.feeds[authority] = feed

    def _feed_page(self, since: int) -> bytes:
        """A signed page of the hosted authority's feed from entry `since`, reused while the
        feed has not grown and it is under FEED_REUSE s old (so requests for pages cannot make
        the node sign without end)."""
        now = self.clock.now()
        authority = self._hosting()
        length = authority.store.revocation_tip()[0]
        cached = self._pages.get(since)
        if cached is not None and cached[0] == length and now - cached[1] < FEED_REUSE:
            return cached[2]
        page = authority.feed(now=now, since=since)
        if len(self._pages) >= FEED_PAGES_CACHED:
            self._pages.clear()
        self._pages[since] = (length, now, page)
        return page

    def _hosted_feed(self) -> None:
        """The hosted authority's feed, read from its own store (only what was appended since
        the last read)."""
        if self._authority is not None:
            hosted = self._authority.identifier
            self.feeds[hosted] = self._authority.held_feed(
                now=self.clock.now(), previous=self.feeds.get(hosted)
            )

    async def sync_feed(self, authority: Identifier, end: ChannelEnd) -> VerifiedFeed:
        """Fetch `authority`'s feed through channel `end` page by page (`feed [since]`), from
        where this node's copy ends, storing each page as it is verified."""
        wallet = self.node.wallet
        since = wallet.feed_since(authority)
        while True:
            page = await call(self.router, (end.enc, AUTHORITY), "feed", [since])
            feed = wallet.update_feed(
                cbor.expect_bytes(page, "page"), authority=authority, now=self.clock.now()
            )
            self.feeds[authority] = feed
            next_since = next_page(feed, since)
            if next_since is None:
                return feed
            since = next_since

    async def refresh_feeds(self) -> None:
        """The hosted authority's feed is read from its store; others are synced over secure
        channels."""
        self._hosted_feed()
        for authority, address in self.node.wallet.trusted().items():
            if authority == self._hosted:
                continue
            try:
                await self.sync_feed(authority, await self.channel_to(parse_route(address)))
            except TrothError as exc:
                log.warning("feed of %s: %s", authority, exc)

    async def refresh_credentials(self, *, margin: int = REFRESH_MARGIN) -> int:
        """Refresh member credentials that expire within `margin` seconds (from each trusted
        authority, over a secure channel), and present the fresh ones on open channels (in-band
        refresh). Returns how many were refreshed."""
        now = self.clock.now()
        held = self.node.wallet.held(self.name)
        refreshed = 0
        for authority, address in self.node.wallet.trusted().items():
            mine = [h for h in held if Identifier(h.authority) == authority]
            if not mine or max(h.expires_at for h in mine) - now > margin:
                continue
            request = refresh_request(self.node.identities, self.name, authority, now=now)
            if authority == self._hosted:
                chain = self._hosting().refresh(request, now=now).encode()
            else:
                end = await self.channel_to(parse_route(address))
                chain = cbor.expect_bytes(
                    await call(self.router, (end.enc, AUTHORITY), "refresh", request), "chain"
                )
            self.node.wallet.hold(self.name, chain, now=now)
            refreshed += 1
        if refreshed:
            self._me_cache = None
            credentials = self._me().credentials
            for end in list(self.channels.ends.values()):
                if end.channel.state is ChannelState.OPEN:
                    with contextlib.suppress(TrothError):
                        await end.present(credentials)
        return refreshed

    def _me(self) -> ChannelIdentity:
        now = self.clock.now()
        cached = self._me_cache
        if cached is not None and now < cached.until:
            return cached.identity
        identities, wallet = self.node.identities, self.node.wallet
        handle, key = identities.purpose_key(self.name, KeyPurpose.SECURE_CHANNEL, now=now)
        live = [h for h in wallet.held(self.name) if h.expires_at > now]
        chains = tuple(h.chain for h in live[:8])
        expiry = min([key.expires_at, *(h.expires_at for h in live)])
        identity = ChannelIdentity(
            identities.export(self.name),
            VaultDhKey(self.node.vault, handle),
            key.attestation,
            chains,
        )
        self._me_cache = _Cached(identity, min(now + 60, expiry))
        return identity

    def _trust(self, *, also: frozenset[Identifier] = frozenset()) -> ChannelTrust:
        policies: list[Any] = [
            AllowIdentifiers(self._anchors | also),
            RequireAttributes(Attributes()),
        ]
        if self._hosted is not None:
            policies.append(AnyAuthenticatedIdentity())  # newcomers may reach the authority only
        return ChannelTrust(
            policy=AnyOf(tuple(policies)),
            verifier=self._verifier,
            feeds=lambda: self.feeds,
            known=self.node.identities.check_known,
            observe=self.node.identities.observe,
        )

    def _access(self, peer: VerifiedPeer) -> frozenset[Address]:
        """Default deny: members (and trusted authorities) reach the services; any other
        authenticated identity reaches only the authority service (to enroll)."""
        member = bool(peer.credentials) or peer.identifier in self._anchors
        services = {ECHO, SINK, RELAY, AUTHORITY} if member else {AUTHORITY}
        return frozenset(a for a in services if self.router.has(a))

    # -- channels ------------------------------------------------------------------------------

    async def channel_to(
        self, route: Route, *, also_trust: frozenset[Identifier] = frozenset()
    ) -> ChannelEnd:
        """An open channel to the node at `route` (reused while it stays open)."""
        key = format_route(route)
        end = self._open.get(key)
        if end is not None and end.enc in self.channels.ends:
            return end
        trust = self._trust(also=also_trust) if also_trust else None
        end = await self.channels.open(route, trust=trust)
        self._open[key] = end
        return end

    async def send_message(self, to: str, text: str) -> Any:
        route, service = split_service_route(to)
        end = await self.channel_to(route)
        return await call(self.router, (end.enc, service), "echo", text)

    # -- relays ----------------------------------------------------------------------------------

    async def create_relay(self, name: str, at: str) -> dict[str, str]:
        """Ask the relay node at `at` to forward `/relay/<name>` to this node over our
        connection, so this node is reachable without a listening port."""
        end = await self.channel_to(parse_route(at))
        await call(self.router, (end.enc, RELAY), "create", name)
        connection = self.tcp.connection(end.peer_route[0])
        if connection is None:
            raise RoutingError("the relay's connection is gone")
        connection.allowed.permit(LISTENER)  # relayed handshakes reach our channel listener
        return {"relay": name, "at": at, "route": f"{at}/relay/{name}"}

    async def _create_relay(self, name: Any, context: RequestContext) -> str:
        source = context.source
        if not isinstance(source, ChannelEnd) or source.peer is None:
            raise RemoteError("relays are created over secure channels")
        if not isinstance(name, str):
            raise RemoteError("relay name must be text")
        address = Address("relay", name)
        granted = any(
            not c.caveats and _grants_relay(c.attributes.values_of(RELAY_ATTRIBUTE), name)
            for c in source.peer.credentials  # caveats are not evaluated yet (gates): skip them
        )
        if not granted:
            raise RemoteError(f"creating relay {name!r} needs the {RELAY_ATTRIBUTE} attribute")
        owner = source.peer.identifier
        existing = self.relays.get(name)
        if existing is not None and existing[1] != owner:
            raise RemoteError(f"relay {name!r} belongs to another identity")
        connection = source.peer_route[0]
        owner_channel = source.enc
        self.router.unregister(address)

        async def forward(message: RoutedMessage, _source: Source | None) -> None:
            if owner_channel not in self.channels.ends:  # the relay lives as long as its channel
                self.router.unregister(address)
                self.relays.pop(name, None)
                raise RoutingError(f"relay {name!r} is gone")
            await self.router.route(
                RoutedMessage((connection, *message.onward), message.return_route, message.payload)
            )

        self.router.register(address, forward)
        self.relays[name] = (connection, owner)
        return f"/relay/{name}"

    # -- services --------------------------------------------------------------------------------

    async def _echo(self, arguments: Any, context: RequestContext) -> Any:
        return arguments

    async def _discard(self, arguments: Any, context: RequestContext) -> int:
        """Take a message, answer only its size (for throughput measurements)."""
        return len(arguments) if isinstance(arguments, bytes | str) else 0

    async def _sink(self, message: RoutedMessage, source: Source | None) -> None:
        """One-way messages are counted and dropped (throughput measurements)."""
        self.sunk_messages += 1
        self.sunk_bytes += len(message.payload)

    async def send_oneway(self, route: Route, service: Address, payload: bytes) -> None:
        """Send one message through the channel at `route`, expecting no answer."""
        end = await self.channel_to(route)
        await self.router.route(RoutedMessage((end.enc, service), (), payload))

    async def announce_rotations(self, ref: str | None = None) -> list[dict[str, Any]]:
        """Announce rotated histories (`ref`'s, else every local identity's) to the authorities
        they hold credentials from that have not seen them yet: the hosted one directly, others
        over secure channels. Failures stay pending for the next maintenance round."""
        identities, wallet = self.node.identities, self.node.wallet
        refs = (
            [ref]
            if ref is not None
            else [r.name or str(Identifier(r.identifier)) for r in identities.list_local()]
        )
        results: list[dict[str, Any]] = []
        for name in refs:
            changes, authorities = wallet.unannounced(name)
            for authority in authorities:
                try:
                    seq = await self._announce(name, authority)
                    done = wallet.mark_announced(name, authority, changes, seq)
                except TrothError as exc:
                    done = Announcement(name, authority, changes, error=str(exc))
                results.append(done.to_json())
        return results

    async def _announce(self, ref: str, authority: Identifier) -> int | None:
        now = self.clock.now()
        request = rotated_request(self.node.identities, ref, authority, now=now)
        if authority == self._hosted:
            return self._hosting().rotated(request, now=now)
        address = self.node.wallet.trusted().get(authority)
        if address is None:
            raise NotFound(f"no route to authority {authority}")
        end = await self.channel_to(parse_route(address))
        seq = await call(self.router, (end.enc, AUTHORITY), "rotated", request)
        return None if seq is None else cbor.expect_int(seq, "seq")

    def _authority_methods(self) -> dict[str, Any]:
        async def enroll(request: Any, context: RequestContext) -> bytes:
            chain = self._hosting().enroll(
                cbor.expect_bytes(request, "request"), now=self.clock.now()
            )
            return chain.encode()

        async def refresh(request: Any, context: RequestContext) -> bytes:
            chain = self._hosting().refresh(
                cbor.expect_bytes(request, "request"), now=self.clock.now()
            )
            return chain.encode()

        async def revoke(request: Any, context: RequestContext) -> int:
            return self._hosting().revoke_link(
                cbor.expect_bytes(request, "request"), now=self.clock.now()
            )

        async def rotated(request: Any, context: RequestContext) -> int | None:
            return self._hosting().rotated(
                cbor.expect_bytes(request, "request"), now=self.clock.now()
            )

        async def feed(arguments: Any, context: RequestContext) -> bytes:
            (since,) = cbor.expect_array(arguments, "feed arguments [since]", 1)
            return self._feed_page(cbor.expect_int(since, "since"))

        return {
            "enroll": enroll,
            "refresh": refresh,
            "revoke": revoke,
            "rotated": rotated,
            "feed": feed,
        }

    # -- enrollment across nodes -----------------------------------------------------------------

    async def enroll(self, ticket_text: str, identity: str) -> dict[str, Any]:
        """Enroll local `identity` (default: this node's) with the authority named in a ticket,
        over a secure channel to the ticket's address."""
        ticket = Ticket.parse(ticket_text)
        now = self.clock.now()
        authority = ticket_authority(ticket, now=now)
        route = parse_route(ticket.address)
        request = enroll_request(self.node.identities, identity, ticket, now=now)
        end = await self.channel_to(route, also_trust=frozenset({authority}))
        if end.peer is None or end.peer.identifier != authority:
            raise RemoteError("the ticket's address is not its authority")
        chain = await call(self.router, (end.enc, AUTHORITY), "enroll", request)
        held = self.node.wallet.hold(identity, cbor.expect_bytes(chain, "chain"), now=now)
        self.node.wallet.trust(authority, ticket.address, now=now)
        await self.sync_feed(authority, end)
        self._me_cache = None
        self._refresh_anchors()
        if identity == self.name:
            await end.present(self._me().credentials)  # the open channel now carries them
        return held.to_json()

    # -- status ----------------------------------------------------------------------------------

    def channel_rows(self) -> list[dict[str, Any]]:
        rows = []
        for end in self.channels.ends.values():
            peer = end.peer
            rows.append(
                {
                    "id": end.enc.value.removesuffix(".enc"),
                    "state": end.channel.state.value,
                    "peer": str(peer.identifier) if peer else None,
                    "route": format_route(end.peer_route),
                    "messages_in": end.messages_in,
                    "messages_out": end.messages_out,
                }
            )
        return rows

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "identifier": str(Identifier(self.node.identities.find(self.name).identifier)),
            "listening": None if self.listening is None else "{}:{}".format(*self.listening),
            "channels": len(self.channels.ends),
            "relays": sorted(self.relays),
            "authority": None if self._hosted is None else str(self._hosted),
            "sunk": {"messages": self.sunk_messages, "bytes": self.sunk_bytes},
            "trusted": [str(a) for a in sorted(self._anchors, key=lambda a: a.digest)],
        }

    # -- control (what the CLI asks a running node to do) ----------------------------------------

    async def control(self, op: str, arguments: dict[str, Any]) -> Any:
        if op == "status":
            return self.status()
        if op == "channel.create":
            end = await self.channel_to(parse_route(arguments["to"]))
            return {
                "id": end.enc.value.removesuffix(".enc"),
                "peer": str(end.peer.identifier) if end.peer else None,
            }
        if op == "channel.list":
            return self.channel_rows()
        if op == "message.send":
            return await self.send_message(arguments["to"], arguments["text"])
        if op == "relay.create":
            return await self.create_relay(arguments["name"], arguments["at"])
        if op == "enroll":
            return await self.enroll(arguments["ticket"], arguments.get("identity") or self.name)
        if op == "announce":
            return await self.announce_rotations(arguments.get("identity"))
        raise RoutingError(f"unknown control operation {op!r}")
