"""A running node (asyncio, docs/architecture.md "Node"): a router with a transport (TCP, or
the in-memory one in tests), secure channels, the services its configuration names (plug-ins:
troth.node.services), its trust (troth.node.trust) and the one access decision point every
request passes (troth.node.access).

    transport -> router -> secure channel (verified peer)
      -> decide(caller, service, method, arguments, now) -> Decision
      -> service method (RequestContext carries the verified caller)

The node acts as its default identity (named like the node). It trusts the authorities it
enrolled with and the one it hosts. It keeps links to the nodes it needs (troth.node.links: its
relays' nodes, its authorities' nodes) and gets them back on its own when their channels die
(keepalive, or a closed connection): reconnecting with backoff, then making its relays again
and syncing the feed. Storage work runs off the event loop on one storage thread (node.worker),
but for the handshake's identity-store callbacks (the sans-IO channel calls them in line).
Enrolling and keeping its authorities' feeds and its credentials fresh are
troth.node.membership's; syncing one feed over a channel, troth.node.feedsync's.

The runtime is put together from its parts: troth.node.shown_identity (the identity it shows
and the trust it admits peers with), .channel_opening (channels opened and reused, connections
closed), .upkeep (the maintenance round, re-reading trust). This module holds its
construction, lifecycle, relays, links, enrollment and rotation, and status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Final

from troth.channel import ChannelSettings, ChannelState
from troth.channel.packets import LENGTH, TRANSPORT_FRAME
from troth.clock import Clock, SystemClock
from troth.credentials import VerifiedFeed
from troth.errors import (
    ChannelError,
    ChannelFailure,
    Denied,
    IdentityError,
    IdentityFailure,
    NotFound,
    RemoteError,
    RoutingError,
    StorageError,
    TrothError,
)
from troth.identity import Identifier
from troth.limits import UPKEEP_STOP_SECONDS
from troth.node import feedsync, membership
from troth.node.access import (
    CHANNELS,
    UNSERVED,
    AccessRequest,
    AnyAuthenticated,
    Decision,
    GatedMembers,
    GatedPolicy,
    MembersOnly,
    Rule,
    RulesPolicy,
)
from troth.node.announcements import Announcer
from troth.node.authorities import is_local
from troth.node.channel_ends import ChannelEnd, caller_of
from troth.node.channel_opening import ChannelOpening, Transport
from troth.node.channels import LISTENER, ChannelLimits, ChannelManager
from troth.node.composition import compose
from troth.node.duewatch import DueWatch
from troth.node.links import Backoff, Link, LinkRow, Links
from troth.node.membership import AUTHORITY, REFRESH_MARGIN
from troth.node.node import Node
from troth.node.own_relays import OwnRelays, kept_relays, resume_relays
from troth.node.pins import PinnedService, pinned_traces, split_service_route
from troth.node.services import NodeService, ServiceHost, call, service_address
from troth.node.services.authority import AuthorityService
from troth.node.services.node_policies import NodePolicies
from troth.node.services.policy import PolicyService
from troth.node.services.relay import RELAY_GRACE, Relay, RelayBook, RelayService
from troth.node.services.trace import NodeTraces
from troth.node.to_the_end import StopBudget, to_its_end
from troth.node.trust import NodeTrust
from troth.node.upkeep import HOSTED_FEED_POLL, MAINTENANCE_SECONDS, Upkeep
from troth.node.worker import StoreWorker
from troth.routing import Address, Route, RoutedMessage, Router, format_route, parse_route
from troth.storage import HoldTime
from troth.storage.rollback import restored_rows
from troth.transport import Listener, TcpTransport
from troth.transport.ratelog import RateLimitedLog

__all__ = [
    "AUTHORITY",
    "ECHO",
    "HOSTED_FEED_POLL",
    "MAINTENANCE_SECONDS",
    "REFRESH_MARGIN",
    "RELAY",
    "SINK",
    "NodeRuntime",
    "split_service_route",
]

log = logging.getLogger("troth.node")
ECHO: Final = service_address("echo")
SINK: Final = service_address("sink")
RELAY: Final = service_address("relay")


class NodeRuntime(ChannelOpening, Upkeep):
    """A node running: transport, channels, services, trust and the access decision point."""

    def __init__(
        self,
        node: Node,
        *,
        clock: Clock | None = None,
        settings: ChannelSettings | None = None,
        limits: ChannelLimits | None = None,
        transport: Callable[[Router], Transport] | None = None,
        relay_grace: int = RELAY_GRACE,
        backoff: Backoff | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        """`limits` default to `ChannelLimits` with the `TROTH_CHANNELS_*` environment variables
        applied, `backoff` to `Backoff` with `TROTH_RECONNECT_*` (docs/protocols.md, "Load
        limits")."""
        limits = limits or ChannelLimits.from_environment()
        self.node = node
        self.clock = clock or SystemClock()
        self.name = node.name
        self.router = Router()
        self.tcp: Transport = (transport or TcpTransport)(self.router)
        if isinstance(self.tcp, TcpTransport):  # only authenticated progress keeps a
            self.tcp.authenticated_idle = True  # connection (review 50e, idle 1), and of
            self.tcp.relayed_progress = (LENGTH.size, TRANSPORT_FRAME)  # relayed frames a
            # channel's transport frame (its first frame's type byte), not a handshake (50k)
            # an idle timeout below twice the keepalive interval: ConfigError, else the sweep
            # closed the connection under every quiet channel (review 57c, transport 1)
            limits.check_idle(self.tcp.settings, settings)
        self.worker = StoreWorker()
        self.trust = NodeTrust(node, hosted=None)
        self.policy = RulesPolicy(self.name, {}, self.trust.standing)
        self.policies = NodePolicies(node, lambda authority: self.trust.feeds.get(authority))
        """The node's policy bundles: what Cedar decides service requests and MCP calls with."""
        self.access = GatedPolicy(
            self.policy, self.policies.point, self.policies.declares, governs=self._cedar_governs
        )

        def trusted() -> int:  # the authorities sharing node-wide pools (troth.node.shares)
            return len(self.trust.anchors)

        self.host = ServiceHost(
            self.router, self.access, clock=self.clock.now, callers=caller_of, trusted=trusted
        )
        self.channels = ChannelManager(
            self.router,
            me=self._me,
            trust=self._channel_trust,
            services=self.host.addresses,
            unserved=self.host.unserved,
            settings=settings or ChannelSettings(),
            clock=self.clock.now,
            limits=limits,
            trusted=trusted,
            pins=node.identities,  # what `NodeTrust` asks `outgrown` of (review 55q, pins)
        )
        self.relay_grace = relay_grace
        self.links = Links(
            self._restore,
            backoff=backoff or Backoff.from_environment(),
            random=random,
            judges=self._credits,
        )
        self.tcp.lost.append(self.channels.connection_lost)  # its channels die with it
        self.channels.silent_hooks.append(self._drop_connection)
        self._dropping: set[Address] = set()  # connections `_drop_connection` is closing
        self._kept: dict[Address, float] = {}  # connections kept for pinned channels, since
        self._drop_lines = RateLimitedLog(log, self.channels.limits.log_lines_per_minute)
        self.channels.closed_hooks.append(self.links.closed)
        self.channels.closed_hooks.append(self._peer_closed)
        self.listening: tuple[str, int] | None = None
        self.identifier: Identifier | None = None
        self._open: dict[str, ChannelEnd] = {}
        self._opening: dict[str, asyncio.Lock] = {}  # one channel opened per route at a time
        self._kept_relays: dict[str, Identifier] = {}
        self._own_relays = OwnRelays(node.path / "own-relays.json")  # review 44d, relays 1
        self._kept_own: dict[str, Identifier] = {}
        self._me_cache = None
        self._me_lock = threading.Lock()
        self._renewing = None
        self._rotations = 0  # times `_rotated` closed every channel
        self._rotated_before = False  # `_rotated` ran in this process
        self.resumption = membership.Resumption()  # interrupted enrollments (review 39a)
        self._tasks: set[asyncio.Task[None]] = set()
        self._rounds = asyncio.Lock()  # one maintenance round at a time (review 63g, upkeep 2)
        self.credited = frozenset()  # read with the trust (`Upkeep._reload_trust`)
        self._catch_up_waiting = False  # a catch-up waits for its turn (review 63t, lifecycle 2)
        self._trace_route: PinnedService | None = None
        self.traces = NodeTraces(node, clock=self.clock, send=self._trace_call, run=self.worker.run)
        """Where this node's records go (its log, or the trace service node.json names)."""
        self.announcer = Announcer(
            node,
            self.trust,
            own=self.name,
            worker=self.worker,
            clock=self.clock,
            router=self.router,
            channel_to=self.channel_to,
            rotated=self._rotated,
            channel_as=self.channel_as,
            tell_hosted=self._tell_hosted,
        )

    # -- the decision point ------------------------------------------------------------------------

    def decide(self, request: AccessRequest) -> Decision:
        """The node's access decision for `request` (every service request passes here)."""
        return self.access.decide(request)

    @property
    def feeds(self) -> dict[Identifier, VerifiedFeed]:
        """The revocation feeds this node holds now, by authority."""
        return self.trust.feeds

    @property
    def relays(self) -> dict[str, Relay]:
        """The relay names this node forwards (or holds for their owners)."""
        relay = self.host.services.get("relay")
        return relay.relays if isinstance(relay, RelayService) else {}

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, listen: tuple[str, int] | None = None) -> None:
        """Compose the configured services, serve channels, listen on `listen` (host, port)."""
        await self.worker.run(self._prepare)
        self.traces.started(asyncio.get_running_loop())
        for service in self._compose():
            starting = getattr(service, "start", None)  # services with a lifecycle (broker)
            if starting is not None:
                try:
                    await starting()
                except BaseException:  # failed or cancelled midway: closed now, as `stop`
                    # closes those added (review 63g, upkeep 1: its thread and recovery ran on),
                    # to its end if cancelled (again) meanwhile (review 63o, lifecycle 1),
                    # within a stop's bound (review 63v, stop 5: one never ending held it)
                    closing = _close_service(service)
                    budget = StopBudget(self.name, 1)
                    await to_its_end(budget.stage(f"service {service.name}", closing))
                    raise
            self.host.add(service)
        self._set_rules()
        self._sync_links()
        self.channels.start()
        resume_relays(self.links, self._kept_own)
        if listen is not None:
            listener = Listener(addresses=frozenset({LISTENER}), kinds=frozenset({"relay"}))
            self.listening = await self.tcp.listen(listen[0], listen[1], listener)
        self._spawn(self._maintain())
        self._spawn(DueWatch(self, self.node.due_tries).run())  # review 50b, revdue 1; 51h
        if self.trust.hosted is not None:
            self._spawn(self._watch_hosted())
        policy = self.host.services.get("policy")
        if isinstance(policy, PolicyService):
            self._spawn(self._pull_policies(policy))

    def _set_rules(self) -> None:
        """The built-in rules of every service served (and of channel admission)."""
        rules: dict[tuple[str, str], Rule] = {}
        for service in self.host.services.values():
            rules.update({(service.name, m): method.rule for m, method in service.methods.items()})
            if service.oneway is not None:
                rules[(service.name, "message")] = service.oneway.rule
        anyone = any(isinstance(rule, AnyAuthenticated) for rule in rules.values())
        gated = any(isinstance(rule, GatedMembers) for rule in rules.values())
        # newcomers enroll (AnyAuthenticated); a caveated delegate reaches a gated service (an
        # MCP server on a node hosting none), every request still decided by its method's rule
        # (review 44a, gated channels 1: MembersOnly refused it the channel)
        channels: Rule = GatedMembers() if gated else MembersOnly()
        rules[CHANNELS] = AnyAuthenticated() if anyone else channels
        rules[UNSERVED] = MembersOnly()  # whom `no-route` is told (review 64b, access 1)
        self.policy.rules = rules

    def add_service(self, service: NodeService) -> None:
        """Serve `service` from now on (open channels may reach it too): every channel its
        handshake established (`ChannelManager._on_established` granted it the services then)
        and not closed, a channel this node opened that awaits its ACCEPTED included (review
        65d, access 1: one granted `OPEN` channels only, and that channel's peer was answered
        `no-route` for the new service for the channel's life, where a made-up name answers a
        stranger a denial)."""
        self.host.add(service)
        self._set_rules()
        addresses = self.host.addresses()
        for end in self.channels.ends.values():
            if end.peer is not None and end.channel.state is not ChannelState.CLOSED:
                end.allowed.grant(addresses)

    async def _pull_policies(self, policy: PolicyService) -> None:
        """Pull newer policy bundles once at start (then every maintenance round), and pass
        on those held to their authorities' nodes (`PolicyService.started`)."""
        try:
            await policy.started()
        except TrothError as exc:
            log.warning("policy bundles at start: %s", exc)

    def _prepare(self) -> None:
        """Storage work of `start` (on the storage thread)."""
        identities, now = self.node.identities, self.clock.now()
        # a node.db restored from before a rotation: found at start (`troth node status`),
        # its identities held, this node's own then failing the start (review 57i, restore 1)
        identities.check_restored(now)
        try:
            self.identifier = Identifier(identities.find(self.name).identifier)
        except NotFound:
            self.identifier = identities.create(now=now, name=self.name).identifier
        # review 57r, start 1: `troth node status`, which names the recovery, needs a running
        # node, and the start failed later, on the own identity's first signature
        try:
            held: int | str | None = identities.restore_held(self.name)
        except StorageError as damaged:  # a hold all the same (review 72b, holds 4: the start
            # failed with it, naming no release)
            held = f"a time node.db holds damaged ({damaged})"
        if held is not None:
            raise IdentityError(
                IdentityFailure.ROLLBACK,
                f"node {self.name!r}'s own identity held since {held}: node.db was restored "
                "from a copy taken before a rotation. If it was not rotated after the copy: "
                f"troth identity release-restored {self.name} --node {self.name}, and start "
                "again; if it was, it is lost on this node "
                '(docs/vault.md, "A node.db restored from before a rotation")',
            )
        self.trust.hosted = self.node.hosted_authority()
        self._reload_trust(now)
        if "relay" in self.node.config.services:
            self._kept_relays = self._relay_book().load()
        self._kept_own = self._own_relays.load()
        self._me()

    def _relay_book(self) -> RelayBook:
        return RelayBook(self.node.path / "relays.json")

    def _compose(self) -> list[NodeService]:
        """The services node.json names, in its order (troth.node.composition)."""
        return compose(self, relays=self._relay_book(), kept_relays=self._kept_relays)

    async def stop(self) -> None:
        """Stop the upkeep tasks, then the services (their threads finish what they run: the
        broker audits into the trace log), the trace client (it delivers what it holds first);
        close every channel and connection, stop the storage thread: each on its own, the
        first failure raised once all ran; all within NODE_STOP_SECONDS, a stage past its share
        abandoned with an ERROR naming it (troth.node.to_the_end.StopBudget; review 63v, stop
        1: a service's close that never returned held the stop, and `serve`, for ever)."""
        budget = StopBudget(self.name, 7)
        # the tasks first, ended: a round under way maintained the services closed meanwhile,
        # during the trace client's flush (review 62s, upkeep 2)
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await budget.stage("the upkeep tasks", self._upkeep_ended(tasks))
        # the services closed together, each named if abandoned (one hanging holds no other)
        services = list(self.host.services.values())
        await budget.together(
            "the services", [(f"service {s.name}", _close_service(s)) for s in services]
        )
        # each stage on its own, the first failure raised once all ran (review 63o, lifecycle
        # 5: the trace client's close failing left the links, channels, TCP listener and
        # storage thread running, and the serve block let the handle go)
        failure: Exception | None = None
        for name, stage in (
            ("the trace client", self.traces.close),
            ("the links", self.links.stop),
            ("the channels", self.channels.close_all),
            ("the TCP listener", self.tcp.close),
        ):
            try:
                await budget.stage(name, stage())
            except Exception as exc:
                if failure is not None:
                    log.exception("stopping node %s: another failure, after the first", self.name)
                failure = failure or exc
        self.host.remove_all()
        try:  # past its share: the calls not taken up are dropped, the one under way left
            await budget.stage("the storage thread", self.worker.drain())
        finally:  # (review 63v, stop 2: a stuck HSM call held the stop for ever)
            self.worker.abandon()
            self.trust.detach()  # the node outlives the runtime (review 64n, api 6)
        if failure is not None:
            raise failure

    async def _upkeep_ended(self, tasks: list[asyncio.Task[None]]) -> None:
        """The upkeep tasks, cancelled, ended (within UPKEEP_STOP_SECONDS; past it the stop goes
        on, a task that took its cancellation for a failure left cancelled)."""
        if tasks:
            await asyncio.wait(tasks, timeout=UPKEEP_STOP_SECONDS)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- feeds and credentials -------------------------------------------------------------------

    async def sync_feed(self, authority: Identifier, end: ChannelEnd) -> VerifiedFeed:
        """Fetch and hold `authority`'s feed through channel `end`, within a bound
        (troth.node.feedsync)."""
        return await feedsync.sync_feed(self, authority, end)

    async def refresh_feeds(self) -> None:
        """Sync the feeds of the authorities this node trusts (troth.node.membership)."""
        await membership.refresh_feeds(self)

    async def sync_trusted_feed(self, authority: Identifier) -> int | None:
        """Sync the feed of `authority` now: its entry count, None when the node does not
        trust it (troth.node.membership)."""
        return await membership.sync_trusted_feed(self, authority)

    async def resume_enrollments(self) -> int:
        """Send again the enrollments a crash interrupted; how many completed
        (troth.node.membership; review 38c, enroll 2)."""
        return await membership.resume_enrollments(self)

    async def refresh_credentials(self, *, margin: int = REFRESH_MARGIN) -> int:
        """Refresh the node's credentials due within `margin` seconds, present them on open
        channels; how many (troth.node.membership)."""
        return await membership.refresh_credentials(self, margin=margin)

    async def send_message(self, to: str, text: str, *, expect: Identifier | None = None) -> Any:
        """Send `text` to the echo method of the service at `to`; its answer."""
        route, service = split_service_route(to)
        end = await self.channel_to(route, expect=expect)
        return await call(self.router, (end.enc, service), "echo", text)

    async def _trace_call(self, method: str, arguments: Any) -> Any:
        """Call `method` of the trace service node.json names (`traces`), pinned to the
        identity expected there (troth.node.pins)."""
        if self._trace_route is None:
            self._trace_route = pinned_traces(self.node, self.channel_to, self.router, self.worker)
        return await self._trace_route.call(method, arguments)

    async def send_oneway(self, route: Route, service: Address, payload: bytes) -> None:
        """Send one message through the channel at `route`, expecting no answer."""
        end = await self.channel_to(route)
        await self.router.route(RoutedMessage((end.enc, service), (), payload))

    # -- relays ----------------------------------------------------------------------------------

    async def create_relay(self, name: str, at: str) -> dict[str, str]:
        """Ask the relay node at `at` to forward `/relay/<name>` to this node over our
        connection, so this node is reachable without a listening port. The node keeps the
        relay: when its channel to `at` dies, it reconnects and creates the relay again. A new
        link is made only once the relay is created, pinned to the identity that answered it (a
        link made before, left by a failed attempt, was pinned by the next channel anyone
        opened there: review 26a, links 1)."""
        route = parse_route(at)
        key = format_route(route)
        kept_relays(self.links, adding=f"{key}/relay/{name}")  # the book has room for it
        end = await self.channel_to(route, expect=self.links.pin(key))
        await self._create_relay_over(end, name)
        link = self.links.link(key)
        link.relays.add(name)
        self.links.opened(key, end)
        # kept before the answer, so an acknowledged name is created again after a restart
        await self.worker.run(self._own_relays.save, kept_relays(self.links))
        return {"relay": name, "at": at, "route": f"{at}/relay/{name}"}

    async def _create_relay_over(self, end: ChannelEnd, name: str) -> None:
        await call(self.router, (end.enc, RELAY), "create", name)
        connection = self.tcp.connection(end.peer_route[0])
        if connection is None:
            raise RoutingError("the relay's connection is gone")
        connection.allowed.permit(LISTENER)  # relayed handshakes reach our channel listener

    # -- links (troth.node.links) ----------------------------------------------------------------

    def _sync_links(self) -> None:
        """A link for every remote authority this node trusts (its feed is synced there); a
        link whose authority is no longer reached there (its route moved: re-enrolled with a
        ticket naming its new address) keeps only its relays, pinned as before, and one left
        needing nothing is forgotten (review 65x, links 2: it reconnected to the old address
        for good)."""
        for route, link in list(self.links.links.items()):
            authority = link.authority
            if authority is not None and self._routed_at(authority) != route:
                link.peer, link.authority = link.peer or authority, None
        for gone in self.links.forget_unneeded():
            log.info("link %s: nothing needed there any more: forgotten", gone)
        for authority in self.trust.routes:
            key = self._routed_at(authority)
            if key is None:
                continue  # (not a route: the feed refresh says so every round)
            link = self.links.link(key)
            link.authority = authority
            end = self._open.get(key)
            if link.end is None and end is not None and end.enc in self.channels.ends:
                self.links.opened(key, end)  # the channel enrollment opened

    def _routed_at(self, authority: Identifier) -> str | None:
        """The route of the link to `authority` (None: not a remote route this node trusts)."""
        address = self.trust.routes.get(authority)
        hosted = self.trust.hosted
        if address is None or is_local(address):
            return None
        if hosted is not None and authority == hosted.identifier:
            return None
        try:
            return format_route(parse_route(address))
        except RoutingError:
            return None

    async def _restore(self, link: Link) -> None:
        """Reopen a link's channel (pinned to the identity expected there), create its
        relays again, sync its authority's feed; then refresh credentials and announce pending
        rotations (their failures stay for the maintenance round)."""
        try:
            end = await self.channel_to(parse_route(link.route), expect=link.pin)
        except ChannelError as exc:
            if exc.by_peer and exc.reason is ChannelFailure.CREDENTIAL_INVALID:
                # the peer refused a credential this node shows (its authority rotated: the
                # handshake showed the newer history): what the node shows is renewed now, so
                # the next attempt shows no superseded chain, not after the maintenance round
                # (review 57e, relink 1)
                await self._renew_identity()
            raise
        refused: list[str] = []
        for name in sorted(link.relays):  # one refused stops none of the others (review 23b,
            try:  # relays 2: a name taken once its grace ran out stopped every later one)
                await self._create_relay_over(end, name)
            except (Denied, RemoteError) as exc:  # not Busy: the next attempt asks again
                refused.append(f"relay {name}: {exc}")
        if link.authority is not None:
            await self.sync_feed(link.authority, end)
            self._spawn(self._catch_up())
        if refused:  # the attempt failed: said in the link's row, tried again after the backoff
            raise RemoteError("; ".join(refused))

    async def _catch_up(self) -> None:
        """After a link reconnected: credentials refreshed, rotations announced; in its turn
        with the maintenance rounds (review 63o, lifecycle 4: beside one, each credential due
        was asked of its authority twice at once). None when one waits for its turn already:
        it reads what is due when it runs (review 63t, lifecycle 2: a link dropped and
        reconnected during a round queued one per reconnect, the next round behind them)."""
        if self._catch_up_waiting:
            return
        self._catch_up_waiting = True
        try:
            await self._rounds.acquire()
        finally:
            self._catch_up_waiting = False  # taken (or cancelled): the next reconnect asks again
        try:
            await self._catching_up()
        finally:
            self._rounds.release()

    async def _catching_up(self) -> None:
        for step in (self.refresh_credentials, self.announce_rotations):
            try:
                await step()
            except TrothError as exc:
                log.warning("after a reconnect: %s failed: %s", step.__name__, exc)
            except Exception:  # any other: logged, the next step all the same (review 62m,
                # lifecycle 4: the task ended, the announcements left for the next round)
                log.exception("after a reconnect: %s failed", step.__name__)

    def link_rows(self) -> list[LinkRow]:
        """One row per link: route, state, what the node needs there, attempts, next try."""
        return self.links.rows()

    # -- enrollment and rotation announcements ---------------------------------------------------

    async def enroll(
        self, ticket_text: str, identity: str, key: str | None = None, *, over_copy: bool = False
    ) -> Any:
        """Enroll local `identity` with the authority a ticket names, here or over a pinned
        channel; `key`: the authority's pin confirmed out of band, `over_copy`: the operator's
        word over a conflicting stored copy (troth.node.membership)."""
        return await membership.enroll(self, ticket_text, identity, key, over_copy=over_copy)

    async def _took_credential(self, end: ChannelEnd | None) -> None:
        """A credential was stored: trust, links and identity renewed; `end` shows it now."""
        await self.worker.run(self._reload_trust, self.clock.now())
        self._sync_links()
        if (me := await self._renew_identity()) and end is not None:
            await end.present(me.credentials)

    async def announce_rotations(self, ref: str | None = None) -> list[dict[str, Any]]:
        """Announce rotated histories (`ref`'s, else every local identity's) to the authorities
        they hold credentials from that have not seen them yet (troth.node.announcements).
        Failures stay pending for the next maintenance round."""
        return await self.announcer.announce(ref)

    def _tell_hosted(self) -> None:
        """Ask the nodes running here to sync the hosted authority's feed, in the background,
        once this node announced a rotation to it (`AuthorityService.tell_local_nodes`;
        review 68u, notify 1). Not served here: their marks and next rounds reach them."""
        service = self.host.services.get("authority")
        if isinstance(service, AuthorityService):
            service.tell_local_nodes()

    async def _rotated(self, told: bool) -> None:
        """This node's identity rotated: present the new history from now on, and close the
        channels that carry the old one (every peer holding the feed refuses it now); those
        opened as another local identity (`channel_as`) show that identity's history, which
        this rotation leaves as it was (review 34c, rotated 1). Those showing the current
        history are closed too (their peers and links then sync the feeds naming it) only
        the first time in the process, and when an authority was `told` (one of the round's
        announcements of the node's own history succeeded): it runs after every round in
        which announcements of the node's own rotation are pending, and while one stays so (an
        authority unreachable, or refusing the history as a fork for good) it closed every
        channel of the node each round, and each link's again once it was back (its catch-up
        announces: review 65a, rotated 1). Judged by the authorities left pending since the
        last `_rotated`, a rotation announced in full after one announced in full told nobody,
        and a link reconnected since (showing the new history) never synced the feed naming
        it (review 65j, rotated 1)."""
        me = await self._renew_identity()
        told, self._rotated_before = told or not self._rotated_before, True
        self._rotations += 1
        shows = membership.showing(me.history)
        for end in list(self.channels.ends.values()):  # a task each, as refresh_credentials does
            if shows(end) and (told or end.channel.me.history != me.history):
                self._spawn(end.close())

    # -- status ----------------------------------------------------------------------------------

    def channel_rows(self) -> list[dict[str, Any]]:
        """One row per channel: id, state, peer, route, messages in and out."""
        rows = []
        for end in self.channels.ends.values():
            peer = end.peer
            rows.append(
                {
                    "id": end.id,
                    "state": end.channel.state.value,
                    "peer": str(peer.identifier) if peer else None,
                    "route": format_route(end.peer_route),
                    "messages_in": end.messages_in,
                    "messages_out": end.messages_out,
                }
            )
        return rows

    def status(self) -> dict[str, Any]:
        """What `troth node status` shows of a running node."""
        hosted = self.trust.hosted
        sink = self.host.services.get("sink")
        tcp_counters = getattr(self.tcp, "counters", None)
        return {
            "name": self.name,
            "identifier": None if self.identifier is None else str(self.identifier),
            "listening": None if self.listening is None else "{}:{}".format(*self.listening),
            "channels": len(self.channels.ends),
            "relays": sorted(self.relays),
            "links": [row.to_json() for row in self.link_rows()],
            # announcements refused as forks (review 65a, forked 2)
            "refused_as_fork": self.announcer.refused_as_fork(),
            "authority": None if hosted is None else str(hosted.identifier),
            # since when its hosted authority is held, or None (review 65z, hold 2: a hold
            # with no restore found, or a restore released, read alike); "damaged": held, its
            # time damaged in node.db (review 72b, holds 3: status failed with StorageError)
            "authority_held": None if hosted is None else _held_json(hosted.restore_hold()),
            "sunk": sink.status() if sink is not None else {"messages": 0, "bytes": 0},
            "trusted": [str(a) for a in sorted(self.trust.anchors, key=lambda a: a.digest)],
            "services": {name: s.status() for name, s in self.host.services.items()},
            "traces": self.traces.status(),
            # node.db found restored from a copy, by scope (docs/storage.md, "Rollback guard")
            "restored": [row.to_json() for row in restored_rows(self.node.db)],
            "counters": {
                "tcp": {} if tcp_counters is None else dataclasses.asdict(tcp_counters),
                "channels": dataclasses.asdict(self.channels.counters),
                "requests_refused": self.host.refused,
            },
        }


async def _close_service(service: NodeService) -> None:
    """Close `service` if it has a lifecycle (the broker: its thread, sweeps and upstream; a
    caller's own service's `close`, a coroutine or not). A failure is logged: the stop goes on
    to the other services, the trace client, the channels and the storage thread (review 63g,
    upkeep 3: one failing close left them all running)."""
    close = getattr(service, "close", None)
    if close is None:
        return
    try:
        closing = close()
        if inspect.isawaitable(closing):
            await closing
    except Exception:
        log.exception("closing service %s failed", service.name)


def _held_json(held: int | HoldTime | None) -> int | str | None:
    """A hold's time as `status` says it: a whole number, "damaged" (`HoldTime.DAMAGED`: held,
    its time unknown) or None (not held)."""
    return held.value if isinstance(held, HoldTime) else held
