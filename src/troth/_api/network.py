"""A node on the network: running it (`Node.serve`), secure channels to other nodes and calls
to their services, and services of your own whose every request the node's access decision
point has checked before your handler runs (docs/protocols.md, "Services" and "Access")."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from troth._api.arguments import (
    check_attributes,
    check_credential,
    check_flag,
    check_link_reason,
    check_name_text,
    check_peer,
    check_pin,
    check_seconds,
    check_short_text,
    check_text,
)
from troth._api.node import IdentityRef, Link, PeerRef, _ref
from troth._api.results import Credential
from troth.authority import Authority as HostedAuthority
from troth.authority.client import revoke_request
from troth.credentials import Attributes, VerifiedCredential
from troth.encoding import cbor
from troth.enrollment import check_over_copy
from troth.errors import (
    ArgumentError,
    ConfigError,
    MalformedText,
    RoutingError,
    StorageError,
    TrothError,
)
from troth.identity import Identifier
from troth.kinds import check_kind
from troth.kinds import got as _got
from troth.node.access import (
    AnyAuthenticated,
    AttributeCoversArgument,
    ChannelAdmission,
    MembersOnly,
    PeerCaller,
    RequireAttributes,
    Rule,
)
from troth.node.authorities import is_local, sync_from
from troth.node.channel_ends import ChannelEnd
from troth.node.channels import LISTENER
from troth.node.config import KNOWN_SERVICES
from troth.node.runtime import AUTHORITY, NodeRuntime
from troth.node.services import Method, RequestContext, call, service_address
from troth.node.syncdue import clear_marks, orphaned_marks, sync_due_while
from troth.node.to_the_end import to_its_end
from troth.node.traces import unsynced
from troth.routing import format_route, parse_route
from troth.routing.notice import NOTICE_SERVICE

if TYPE_CHECKING:
    from troth._api.node import Node

log = logging.getLogger("troth.node")

__all__ = [
    "Channel",
    "Handler",
    "Request",
    "RunningNode",
    "Service",
    "revoke_remotely",
    "runtimes_here",
    "start_running",
    "stop_running",
    "sync_runtimes_here",
]

_SERVICE_RULES: Final = (AnyAuthenticated, MembersOnly, RequireAttributes, AttributeCoversArgument)
"""The rules a service of your own may take: each refuses a credential that carries caveats
(not `GatedMembers`, the MCP service's: review 48j, delegation 3)."""


@dataclass(frozen=True, slots=True)
class Request:
    """A request your service's handler answers, after the node's access decision allowed it."""

    arguments: Any
    """What the caller sent (CBOR data: None, bool, int, str, bytes, lists, maps)."""
    caller: Identifier | None
    """The verified identity at the other end of the secure channel (None: a caller in this
    process)."""
    credential: VerifiedCredential | None
    """The caller's credential that satisfied the method's rule, verified against the feeds
    the node holds now (None for rules that need no credential)."""
    now: int
    """When the request was decided (Unix seconds)."""

    def __post_init__(self) -> None:
        """One made by hand (to test a handler) of fields of other types is an ArgumentError,
        not an AttributeError from `attribute` (review 54n, api 10; isinstance tests only: the
        node makes one per request)."""
        if self.caller is not None and not isinstance(self.caller, Identifier):
            raise ArgumentError("Request", "caller", "an Identifier or None", _got(self.caller))
        credential = self.credential
        if credential is not None and not isinstance(credential, VerifiedCredential):
            raise ArgumentError(
                "Request", "credential", "a VerifiedCredential or None", _got(credential)
            )
        check_kind("Request", "now", self.now, int, "a whole number of seconds")

    def attribute(self, key: str) -> frozenset[str]:
        """The values of attribute `key` in `credential` (empty when it has none)."""
        return frozenset() if self.credential is None else self.credential.attributes.values_of(key)


Handler = Callable[[Request], Awaitable[Any]]
"""A method of your service: `async def handler(request: Request) -> answer` (raise `Denied`
to refuse with reasons, any other TrothError to fail: the caller gets it as `RemoteError`)."""


_NODE_ADDRESSES: Final = frozenset({LISTENER.value, NOTICE_SERVICE.value})
"""The other `/service/` addresses every node serves: a service of that name took the channel
listener's address (`Node.serve` failed, naming nothing the user wrote) or had its requests
taken for no-route notices (review 61i, access 2)."""


class Service:
    """A service of your own, served at `/service/<name>` by `Node.serve(services=[...])`.
    Each method declares who may call it (`allow`): the node's access decision point applies
    the rule before the handler runs, and a method without one does not exist."""

    name: str
    """The service's name: it is served at `/service/<name>`."""
    oneway: Method | None = None
    """None: a service of this kind answers requests (it takes no one-way messages)."""

    def __init__(self, name: str) -> None:
        """A service named `name` (not one of a node's built-in services nor another address
        every node serves, `channels` and `no-route`; ArgumentError)."""
        check_name_text("Service", "name", name, "service name")
        if name in KNOWN_SERVICES or name in _NODE_ADDRESSES:
            raise ArgumentError(
                "Service", "name", "a name no built-in service of every node has", repr(name)
            )
        service_address(name)  # RoutingError for a name no address can carry
        self.name = name
        self._methods: dict[str, Method] = {}

    @property
    def methods(self) -> Mapping[str, Method]:
        """The service's methods by name (the node's plug-in interface)."""
        return self._methods

    def method(self, name: str, *, allow: Rule) -> Callable[[Handler], Handler]:
        """A decorator that makes `handler` the method `name`, open to the callers `allow`
        admits: `MembersOnly(authority=...)`, `RequireAttributes(Attributes({...}),
        authority=...)`, `AnyAuthenticated()`. Every authority the node enrolls with is
        trusted and can grant any attribute: give `authority` when they are one authority's
        to grant (None: any the node trusts).
        Credentials that carry caveats satisfy no rule yet (fail closed). Any other `allow`
        is an ArgumentError: `GatedMembers` admits caveated credentials, which only a service
        that decides each request with Cedar itself may take (the MCP service; review 48j,
        delegation 3). A rule's attributes may be a mapping and its `authority` an
        identifier's text, as the rest of the API takes them; a rule holding anything else, or
        a `name` that is not a str (or one the service already has), is an ArgumentError
        (review 49a, rules 1), as is a handler that is not callable. What the handler returns
        is awaited when it is awaitable (an async function's coroutine), else it is the answer
        (a plain function runs on the node's event loop: keep it short)."""
        check_text("Service.method", "name", name)
        if name in self._methods:  # a bare ValueError (review 51e, exports 9)
            raise ArgumentError(
                "Service.method",
                "name",
                "a name the service has no method of yet",
                f"{_shown(name)} (service {self.name} already has a method {_shown(name)})",
            )
        if not isinstance(allow, _SERVICE_RULES):
            raise ArgumentError(
                "Service.method",
                "allow",
                "AnyAuthenticated, MembersOnly or RequireAttributes",
                "None" if allow is None else type(allow).__name__,
            )
        rule = _checked(allow)

        def register(handler: Handler) -> Handler:
            # else every request failed on the node (review 54n, api 9)
            if not callable(handler):
                raise ArgumentError(
                    "Service.method", "handler", "a function of a Request", _got(handler)
                )

            async def answer(arguments: Any, context: RequestContext) -> Any:
                caller = context.caller
                request = Request(
                    arguments,
                    caller.identifier if isinstance(caller, PeerCaller) else None,
                    context.decision.credential,
                    context.now,
                )
                answer = handler(request)
                # awaited when awaitable: a callable that returns a coroutine is a handler
                # too (a lambda, a decorator's plain wrapper, a partial of an object whose
                # __call__ is async), and a sync one's answer is the answer (review 56m,
                # handlers 1: review 56c refused all of them when declared)
                return await answer if inspect.isawaitable(answer) else answer

            self._methods[name] = Method(answer, rule)
            return handler

        return register

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        """The service's methods (what `troth node status` shows)."""
        return {"methods": sorted(self._methods)}


def _checked(rule: Rule) -> Rule:
    """`rule` with its attributes an `Attributes` and its authority an `Identifier`: given as
    a mapping, the node's decision point failed every request on it; as text, it refused every
    caller (review 49a, rules 1)."""
    call, expected = "Service.method", "a rule whose authority is an Identifier, its text or None"
    changes: dict[str, Any] = {}
    authority = getattr(rule, "authority", None)
    if authority is not None and not isinstance(authority, Identifier):
        if not isinstance(authority, str):
            raise ArgumentError(call, "allow", expected, f"an authority of type {_type(authority)}")
        try:
            changes["authority"] = Identifier.parse(authority)
        except MalformedText:
            raise ArgumentError(call, "allow", expected, "text that is not one") from None
    if isinstance(rule, RequireAttributes) and not isinstance(rule.attributes, Attributes):
        changes["attributes"] = check_attributes(call, "allow", rule.attributes)
    return dataclasses.replace(rule, **changes) if changes else rule


def _type(value: object) -> str:
    return type(value).__name__


def _shown(name: str) -> str:
    """A method's name as an error shows it: at most 40 characters."""
    return repr(name if len(name) <= 40 else name[:40] + "...")


class Channel:
    """A secure channel to another node (Noise XX; both identities and credentials checked).
    Get one with `async with node.connect(route, expect=...)`: it is for that block (kept past
    it, a call is a RoutingError)."""

    def __init__(self, runtime: NodeRuntime, end: ChannelEnd, route: str) -> None:
        """(Use `node.connect`: anything else is an ArgumentError; review 54n, api 15.)"""
        use = "a running node's channel (use node.connect)"
        self._runtime = check_kind("Channel", "runtime", runtime, NodeRuntime, use)
        self._end = check_kind("Channel", "end", end, ChannelEnd, use)
        self.route = route
        """The route the channel was opened to."""
        self._ended = False
        """Whether its `connect` block ended: every later call is refused, even while another
        block shares the channel underneath (review 56c, api 4)."""
        self._running: RunningNode | None = None
        """The running node it was opened on: closed (or its serve block ended), the channel
        calls nothing as it (review 62l, api 1)."""

    @property
    def peer(self) -> Identifier:
        """The verified identity at the other end."""
        peer = self._end.peer
        if peer is None:  # open() returns only after the handshake verified the peer
            raise RoutingError("the channel has no verified peer")
        return peer.identifier

    async def call(
        self, service: str, method: str, arguments: Any = None, *, timeout: float = 10.0
    ) -> Any:
        """Call `method` of `service` at the other end with `arguments` (CBOR data); its
        answer. Raises `Denied` (the other node's access decision, with its reasons),
        `RemoteError` (the service failed the request, or the request is over
        `limits.MAX_SERVICE_MESSAGE`) or `RoutingError` (no such service, or no answer within
        `timeout` seconds). Arguments CBOR data cannot hold (a float, a set, an object, an
        integer past 64 bits) or the other side would not read (nested deeper than
        `limits.MAX_CBOR_DEPTH`) are a `DecodeError`, raised before anything is sent. A
        service or method that is not a str, or a timeout that is not a number of seconds
        over 0, is an ArgumentError; a call once the channel's `connect` block ended, a
        RoutingError."""
        check_text("Channel.call", "service", service)
        check_text("Channel.call", "method", method)
        timeout = check_seconds("Channel.call", "timeout", timeout)
        if self._ended:
            raise RoutingError(f"the channel to {self.route} is closed: its connect block ended")
        if self._running is not None and self._running._ended:  # (review 62l, api 1)
            raise RoutingError(
                f"the channel to {self.route} is closed: its node was closed or no longer runs"
            )
        address = service_address(service)
        return await call(
            self._runtime.router, (self._end.enc, address), method, arguments, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"Channel({self.route!r}, peer={self._end.peer and self._end.peer.identifier})"


class RunningNode:
    """A node while `Node.serve` runs it: enroll over the network, revoke a link, hold a relay
    name, open channels. Once its `serve` block ends, every use of it is a ConfigError."""

    def __init__(self, node: Node, runtime: NodeRuntime) -> None:
        """(Use `node.serve`: anything else is an ArgumentError; review 54n, api 15.)"""
        from troth._api.node import Node

        use = "a node running (use node.serve)"
        self._node = check_kind("RunningNode", "node", node, Node, use)
        self._runtime = check_kind("RunningNode", "runtime", runtime, NodeRuntime, use)
        self._users: dict[ChannelEnd, int] = {}
        """How many `connect` blocks use each channel: the runtime keeps one channel per
        route, and the last block to end closes it (review 35d, connect 2)."""
        self._here = node._stored.path.resolve()
        """The node's directory: where `runtimes_here` finds it."""
        self._loop = asyncio.get_running_loop()  # (made inside `serve`)
        """The event loop `serve` runs it on: its channels and tasks belong to it."""
        self._ended = False
        """Whether its `serve` block ended: the runtime is stopped, and every use is refused
        (review 56c, api 2: `enroll` failed with a bare RuntimeError, `connect` opened
        channels as the node on a runtime that no longer kept its feeds fresh)."""

    def _closed(self) -> None:
        """The `Node` it runs was closed inside its serve block: its store is shut, so it
        could learn no revocation, and went on answering a revoked caller from what it had in
        memory (review 62h, api 7). From now on its decision point refuses every request, and
        every use of it is a ConfigError, until the serve block ends."""
        self._ended = True
        self._runtime.access.refusing = (
            f"node {self._node.name!r} is closed: it answers no request until served again",
        )

    def _live(self) -> NodeRuntime:
        """The runtime, while `serve` runs it; ConfigError once its block ended."""
        if self._ended:
            raise ConfigError(
                f"node {self._node.name!r} no longer runs here: its serve block ended "
                "(serve it again, and use the RunningNode it gives)"
            )
        return self._runtime

    def _on_loop(self) -> NodeRuntime:
        """`_live`, and only on the event loop `serve` runs it on (ConfigError else): a channel
        opened from another loop was left to that loop, and when it closed, the serve block's
        end raised "Event loop is closed" (review 61j, api 7)."""
        runtime = self._live()
        if asyncio.get_running_loop() is not self._loop:
            raise ConfigError(
                f"node {self._node.name!r} is served on another event loop: use it from "
                "inside its serve block's loop"
            )
        return runtime

    @property
    def identifier(self) -> Identifier:
        """The identity the node speaks as on secure channels (its own)."""
        identifier = self._live().identifier
        if identifier is None:  # set by start(), before serve() yields
            raise ConfigError(f"node {self._node.name!r} has not started")
        return identifier

    @property
    def address(self) -> str:
        """The route other nodes reach this one at (`/tcp/HOST:PORT`); ConfigError when it
        does not listen (give `serve(listen=...)`, or hold a relay name: `relay`)."""
        listening = self._live().listening
        if listening is None:
            raise ConfigError(f"node {self._node.name!r} does not listen (serve(listen=...))")
        return "/tcp/{}:{}".format(*listening)

    async def enroll(
        self,
        ticket: str,
        *,
        identity: IdentityRef | None = None,
        authority_pin: str | None = None,
        over_copy: bool = False,
    ) -> Credential:
        """`Node.enroll` from inside `serve` (the credential is presented on open channels
        at once when `identity` is the node's own)."""
        check_text("RunningNode.enroll", "ticket", ticket)
        check_pin("RunningNode.enroll", "authority_pin", authority_pin)
        check_flag("RunningNode.enroll", "over_copy", over_copy)
        check_over_copy("RunningNode.enroll", over_copy, authority_pin)
        runtime = self._on_loop()
        ref = (
            self._node.name
            if identity is None
            else _ref(identity, self._node._stored, "RunningNode.enroll")
        )
        held = await runtime.enroll(ticket, ref, authority_pin, over_copy=over_copy)
        last = bytes.fromhex(held["chain"][-1]["id"])
        return await runtime.worker.run(self._held, ref, last)

    async def revoke(self, credential: Credential, *, by: IdentityRef, reason: str = "") -> int:
        """`Node.revoke` from inside `serve`: with an authority reached over the network,
        through a secure channel to it (its feed synced through the same channel); with one
        on this machine, as `Node.revoke` does. When it returns, this running node refuses
        the link (review 48c, revnet 2: a node running inside `serve` could not revoke over
        the network)."""
        check_credential("RunningNode.revoke", "credential", credential)
        check_short_text("RunningNode.revoke", "reason", reason, "MAX_REVOCATION_REASON")
        self._on_loop()
        ref = _ref(by, self._node._stored, "RunningNode.revoke", "by")
        found = await self._runtime.worker.run(self._node._stored.identities.find, ref)
        check_link_reason(
            "RunningNode.revoke", reason, by=found.identifier, authority=credential.authority
        )
        return await self._revoke(credential, ref, reason)

    async def _revoke(self, link: Link, ref: str, reason: str) -> int:
        node = self._node
        worker = self._runtime.worker
        address = (await worker.run(node._stored.wallet.trusted)).get(link.authority)
        if address is None or is_local(address):
            return await worker.run(node._revoke_here, link, ref, reason, address)
        with contextlib.ExitStack() as stack:
            # the node's copy of the feed marked due first: a process killed once the
            # authority took the entry leaves the mark (review 48m, revcrash 2)
            marking = sync_due_while(
                node._stored, link.authority, address=address, now=self._runtime.clock.now()
            )
            due = await worker.run(stack.enter_context, marking)
            seq, not_held = await revoke_remotely(self, link, ref, reason, address)
            if not_held is None:
                await worker.run(due.clear)
        return await worker.run(node._revoked_remotely, link, ref, reason, seq, not_held)

    def _held(self, ref: str, last: bytes) -> Credential:
        for credential in self._node.credentials(ref):
            if credential.id == last:
                return credential
        raise ConfigError(f"the credential just enrolled is not held by {ref}")

    async def relay(self, name: str, *, at: str) -> str:
        """Ask the node at route `at` to forward `/relay/<name>` to this node over this node's
        connection (it needs a credential whose `troth.relay` holds `name`): this node is then
        reachable at the returned route without listening. A `name` or `at` that is not a str
        is an ArgumentError."""
        check_text("RunningNode.relay", "name", name)  # review 51e, exports 9
        check_text("RunningNode.relay", "at", at)
        answer = await self._on_loop().create_relay(name, at)
        return answer["route"]

    @contextlib.asynccontextmanager
    async def connect(self, route: str, *, expect: PeerRef | None) -> AsyncIterator[Channel]:
        """`Node.connect` on this running node."""
        check_text("RunningNode.connect", "route", route)
        if expect is not None:
            check_peer("RunningNode.connect", "expect", expect)
        runtime = self._on_loop()
        pinned = None if expect is None else self._node._identifier_of(expect)
        end = await runtime.channel_to(
            parse_route(route),
            also_trust=frozenset() if pinned is None else frozenset({pinned}),
            expect=pinned,
        )
        peer = end.peer
        if pinned is None and peer is not None:
            # The runtime hands out the channel already open to `route`, which another block
            # may have opened pinned to a peer this node's trust alone refuses: unpinned, the
            # peer must be one the node's trust admits now (review 35d, connect 1).
            ChannelAdmission(runtime.policy, runtime.clock.now).admit(peer)
        self._users[end] = self._users.get(end, 0) + 1
        channel = Channel(runtime, end, format_route(parse_route(route)))
        channel._running = self
        try:
            yield channel
        finally:
            channel._ended = True
            users = self._users.pop(end) - 1
            if users:
                self._users[end] = users
            else:
                await end.close()

    def __repr__(self) -> str:
        return f"RunningNode({self._node.name!r})"


async def start_running(
    node: Node, listen: tuple[str, int] | None, services: tuple[Service, ...]
) -> RunningNode:
    """Run `node` (troth.node.runtime) with `services` added to its configured ones, listening
    on `listen`; one maintenance round first (feeds, credentials, rotation announcements). The
    running node, marked on the handle and registered here (`runtimes_here`); failed or
    cancelled, what it started is stopped. (Who may run a handle: troth._api.handle_runtime.)"""
    runtime = NodeRuntime(node._stored, clock=node._clock)
    running: RunningNode | None = None
    try:
        for service in services:
            runtime.host.add(service)  # before start(): its rules join the decision point
        await runtime.start(listen)
        # a node closed while it started is a StorageError here (`node._stored`), and what
        # started is stopped: nothing served as if open (review 62l, api 2)
        running = node._running = RunningNode(node, runtime)
        clock = runtime.clock  # its announcements tell the nodes served here as `Node.rotate`'s
        runtime.announcer.told_here = lambda host: sync_runtimes_here(host, now=clock.now())
        with _RUNNING_LOCK:
            _RUNNING.setdefault(running._here, []).append(running)
        await runtime.maintain()
    except BaseException:
        # to its end, even cancelled again meanwhile (review 63g, api 2: the handle was let
        # go, and what started ran on, when a second cancellation ended this stop midway)
        await to_its_end(_stop(node, runtime, running))
        raise
    return running


async def stop_running(node: Node, running: RunningNode) -> None:
    """Stop what `start_running` started: every later use of `running` is refused."""
    await _stop(node, running._runtime, running)


async def _stop(node: Node, runtime: NodeRuntime, running: RunningNode | None) -> None:
    if running is not None:
        if node._running is running:
            node._running = None
        running._ended = True  # every later use refused (review 56c, api 2)
        with _RUNNING_LOCK:
            runtimes = _RUNNING.get(running._here, [])
            runtimes.remove(running)
            if not runtimes:
                _RUNNING.pop(running._here, None)
    await runtime.stop()


_RUNNING: dict[Path, list[RunningNode]] = {}
"""The nodes `serve` runs in this process, by node directory, whichever handle runs them."""
_RUNNING_LOCK: Final = threading.Lock()


def sync_runtimes_here(host: HostedAuthority, *, now: int) -> None:
    """Every node `serve` runs in this process that trusts `host` (an authority on this
    machine, open) syncs its copy of its feed from it and holds it, now that it took a
    revocation: the daemons running here are told (`tell_local_nodes`), and a node served in
    this process admitted what was revoked until its next maintenance round (review 49a,
    revocation 1). The node hosting `host` re-reads its store: it does not trust itself, and
    its broker renewed a lease, and its channels answered, the member revoked until its next
    poll of the store (HOSTED_FEED_POLL; review 63u, revocation 1). One whose sync fails is
    logged and learns it at its next round: the revocation stands."""
    with _RUNNING_LOCK:  # (not one whose handle was closed: review 62r, api 1)
        running = [r for runtimes in _RUNNING.values() for r in runtimes if not r._ended]
    authority = host.identifier
    for each in running:
        try:
            trust = each._runtime.trust
            if trust.hosted is not None and trust.hosted.identifier == authority:
                trust.refresh_hosted(now)
                continue
            stored = each._node._stored  # (a closed handle: StorageError, logged)
            if authority not in stored.wallet.trusted():
                continue
            orphaned = orphaned_marks(stored, authority)  # read before the sync, as its own
            sync_from(stored, host, now=now)
            if orphaned:  # settled: they go, else it refused `host`'s members until its own
                clear_marks(stored, authority, orphaned)  # poll synced (review 69p, flake 1)
            each._runtime.trust.learn_held()
        except TrothError as exc:
            log.warning("node %r was not told of the revocation: %s", each._node.name, exc)


def runtimes_here(node: Node) -> list[NodeRuntime]:
    """The runtimes of `node` (its directory) that `serve` runs in this process, through any
    handle: a revocation made through one handle must reach them all (review 49a, handles 2).
    Not one whose handle was closed inside its serve block: it refuses every request, and
    reading its closed store made the revocation of another, open handle a StorageError once
    taken and recorded, leaving the runtimes after it untold (review 62r, api 1)."""
    with _RUNNING_LOCK:
        here = _RUNNING.get(node._stored.path.resolve(), ())
        return [r._runtime for r in here if not r._ended]


async def revoke_remotely(
    running: RunningNode, link: Link, ref: str, reason: str, address: str
) -> tuple[int, StorageError | None]:
    """`Node.revoke` with an authority reached over the network (a secure channel to it): the
    feed entry's seq, once the node holds the authority's feed up to it (synced through the
    same channel, each page verified before it is stored), else with the error saying it does
    not (`unsynced`: the revocation stands; review 47k, revsync 1: a failed sync was logged,
    and the node accepted the link until its next feed refresh)."""
    runtime = running._runtime
    now = runtime.clock.now()
    request = await runtime.worker.run(
        revoke_request,
        runtime.node.identities,
        ref,
        link.authority,
        credential_hash=link.id,
        chain=link.chain,
        reason=reason,
        now=now,
    )
    authority = link.authority
    end = await runtime.channel_to(
        parse_route(address), also_trust=frozenset({authority}), expect=authority
    )
    seq = cbor.expect_int(
        await call(runtime.router, (end.enc, AUTHORITY), "revoke", request), "seq"
    )
    try:
        feed = await runtime.sync_feed(authority, end)
    except TrothError as exc:
        return seq, unsynced(seq, exc)
    if feed.count <= seq:
        return seq, unsynced(seq, StorageError(f"its feed ends at {feed.count} entries"))
    return seq, None
