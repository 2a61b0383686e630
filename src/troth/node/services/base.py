"""Node services as plug-ins, and their one request/response protocol (docs/protocols.md,
"Services").

    request  = ["troth.service.request", 2, id, method, arguments]
    response = ["troth.service.response", 2, id, true, result]
             | ["troth.service.response", 2, id, false, {"error": kind, "message": text,
                                                         "reasons": [text, ...]}]

`kind` is "denied" (the access decision refused: `reasons` say who refused whom and why; the
caller raises `Denied`), "no-route" (nothing serves that address: `RoutingError`), "busy" (the
node runs as many requests as it may, or the request's next hop dropped it, `Congested`: it did
not run; `Busy`, send it again later) or "failed" (the service refused or failed the request:
`RemoteError`; a `Busy` its handler raised too, for the request ran: review 28a, busy 1).

A caller's requests through one channel (or to one local service) share one reply worker
(`Calls`, at an unguessable `/worker/calls-...` address that only that channel's peer may
reach) and are told apart by the request `id` (an unsigned integer, unique among the requests
in flight there); the service answers along the request's return route with the same id. An
answer for an id not in flight (unknown, finished, timed out) is dropped. At most
`limits.MAX_CALLS_IN_FLIGHT` requests are in flight per channel: more callers wait. Requests and
responses are at most `limits.MAX_SERVICE_MESSAGE` bytes: both sides decode with that limit,
and a service whose answer would be larger answers an error instead.

A service (`NodeService`) is a name (its address is `/service/<name>`), methods (name ->
handler + access rule), optionally a one-way handler (messages without an answer), a
maintenance hook and a status. `ServiceHost` serves them on a router: every request passes the
node's `AccessPolicy` before its handler runs, and the handler gets the verified caller in its
`RequestContext`.

What runs concurrently (docs/protocols.md, "Concurrent requests"): a connection routes what
arrives on it in order, and the host decides each request there, in arrival order. A request
from a peer to a method that is not `inline` then runs in a task of its own (started in
arrival order, answered whenever it ends), so a handler that waits holds back no other request
of its connection; at most `RequestLimits` of them run at once (per member, per connection, in
all: one more is answered "busy" at once), and a channel that closes cancels its requests
still running. Everything else stays in order, within the connection's routing: inline
methods, one-way messages (their handlers are awaited there, one after the other), and below
the host the channel's frames, reassembly and the relay's forwarding.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import random
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

from troth import limits
from troth.encoding import cbor
from troth.errors import (
    Busy,
    DecodeError,
    Denied,
    RemoteError,
    RoutingError,
    TrothError,
    Unreachable,
    cut_text,
)
from troth.node.access import (
    AccessPolicy,
    AccessRequest,
    Caller,
    Decision,
    PeerCaller,
    Rule,
    member_accounts,
)
from troth.node.services.admission import Admission, Lane, RequestLimits
from troth.node.shares import authorities_of
from troth.routing import Address, Route, RoutedMessage, Router, Source, new_worker_address
from troth.transport.ratelog import RateLimitedLog

__all__ = [
    "BUSY",
    "DENIED",
    "FAILED",
    "NO_ROUTE",
    "Calls",
    "Handler",
    "Method",
    "NodeService",
    "RequestContext",
    "RequestSource",
    "ServiceHost",
    "call",
    "calls_through",
    "decode_request",
    "decode_response",
    "encode_request",
    "error_response",
    "forget_calls",
    "request_id_of",
    "result_of",
    "service_address",
    "to_the_end",
]

log = logging.getLogger("troth.node.services")
T = TypeVar("T")
REQUEST: Final = "troth.service.request"
RESPONSE: Final = "troth.service.response"
VERSION: Final = 2
DENIED: Final = "denied"
NO_ROUTE: Final = "no-route"
FAILED: Final = "failed"
BUSY: Final = "busy"
_ERROR_KINDS: Final = frozenset({DENIED, NO_ROUTE, FAILED, BUSY})
MAX_REQUEST_ID: Final = (1 << 64) - 1
"""Request ids are unsigned 64-bit integers."""
LOG_LINES_PER_MINUTE: Final = 10
"""Lines a minute about what peers send that is dropped (an unreadable request, an answer
to no request in flight): the peer chooses how many, and a node's log is a file on its disk
(docs/protocols.md, "Load limits"; review 23b, logs 1)."""
_DROPPED_ANSWERS: Final = RateLimitedLog(log, LOG_LINES_PER_MINUTE)
MAX_NAME_SHOWN: Final = 64
"""Characters of an unknown method's name an answer shows (the caller chose the name, up to
the whole request: review 44a, malformed 1)."""
MAX_ERROR_TEXT: Final = 4096
"""Characters an error answer keeps of its message and of each reason when the whole answer
would be over `limits.MAX_SERVICE_MESSAGE` (text a caller sent may be quoted in them: review
44a, malformed 1-2); with MAX_ERROR_REASONS, a cut answer is under 300 KB."""
MAX_ERROR_REASONS: Final = 16
"""Reasons an error answer keeps when the whole answer would be over the limit."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a handler knows of a request: the verified caller, where the answer goes, the
    decision that let it through, and the time it was decided at."""

    caller: Caller
    return_route: Route
    decision: Decision
    now: int


Handler = Callable[[Any, RequestContext], Awaitable[Any]]
"""A method: `async (arguments, context) -> result` (a TrothError is answered as an error)."""


@dataclass(frozen=True, slots=True)
class Method:
    """A service method: its handler and the access rule the decision point applies.

    `inline`: the handler ends without waiting (nor uses what needs a task of its own:
    `asyncio.timeout`, anyio, a lock), so it runs where the request arrived, in the
    connection's routing (inside a transport's read callback: docs/protocols.md, "TCP
    transport"), and is answered there, in order. Any other handler of a peer's request runs
    in a task of its own, concurrently with the requests after it (`ServiceHost`)."""

    handler: Handler
    rule: Rule
    inline: bool = False


class NodeService(Protocol):
    """A node service plug-in."""

    @property
    def name(self) -> str:
        """The service's name; its address is `/service/<name>`."""
        ...

    @property
    def methods(self) -> Mapping[str, Method]:
        """Request/response methods by name."""
        ...

    @property
    def oneway(self) -> Method | None:
        """The handler of one-way messages (arguments: the raw payload), if the service takes
        them instead of requests."""
        ...

    async def maintain(self, now: int) -> None:
        """Periodic upkeep (the node's maintenance loop calls it)."""
        ...

    def status(self) -> dict[str, Any]:
        """What `node status` shows of this service."""
        ...


def service_address(name: str) -> Address:
    """The address of service `name`."""
    return Address("service", name)


# -- the protocol ------------------------------------------------------------------------------


def encode_request(request_id: int, method: str, arguments: Any) -> bytes:
    """A request (RemoteError when it is over the service message limit; DecodeError when
    `arguments` are not encodable)."""
    request = cbor.encode([REQUEST, VERSION, request_id, method, arguments])
    if len(request) > limits.MAX_SERVICE_MESSAGE:
        raise RemoteError(f"a request over the {limits.MAX_SERVICE_MESSAGE}-byte service limit")
    return request


def _envelope(payload: bytes | bytearray | memoryview, type_tag: str, what: str) -> list[Any]:
    """[type tag, version, id, x, y] decoded within the service limit (DecodeError if not)."""
    value = cbor.expect_array(cbor.decode(payload, max_bytes=limits.MAX_SERVICE_MESSAGE), what, 5)
    cbor.expect_header(value, type_tag, VERSION, what)
    if type(value[2]) is not int or not 0 <= value[2] <= MAX_REQUEST_ID:
        raise DecodeError(f"{what}: the request id is not an unsigned 64-bit integer")
    return value


def decode_request(payload: bytes | bytearray | memoryview) -> tuple[int, str, Any]:
    """(request id, method, arguments) of a request (DecodeError when malformed)."""
    value = _envelope(payload, REQUEST, "request")
    return value[2], cbor.expect_text(value[3], "method"), value[4]


def request_id_of(payload: bytes | bytearray | memoryview) -> int | None:
    """The id of a well-formed request, else None (a message that is not one is not answered)."""
    try:
        return decode_request(payload)[0]
    except DecodeError:
        return None


def decode_response(payload: bytes | bytearray | memoryview) -> tuple[int, list[Any]]:
    """(request id, the whole response) of a response (DecodeError when its envelope is
    malformed; `result_of` reads the rest)."""
    value = _envelope(payload, RESPONSE, "response")
    return value[2], value


def result_of(response: list[Any]) -> Any:
    """A decoded response's result, or the error it carries raised: `Denied` (with the
    reasons), `RoutingError` (no route) or `RemoteError` (failed, or a malformed response)."""
    try:
        if response[3] is True:
            return response[4]
        if response[3] is not False:
            raise DecodeError("ok is not a boolean")
        kind, message, reasons = _error_fields(response[4])
    except DecodeError as exc:
        raise RemoteError(f"malformed response: {exc}") from None
    if kind == DENIED:
        raise Denied(reasons)
    if kind == NO_ROUTE:
        raise RoutingError(message)
    if kind == BUSY:
        raise Busy(message)
    raise RemoteError(message)


def _error_fields(error: Any) -> tuple[str, str, tuple[str, ...]]:
    if not isinstance(error, dict) or set(error) != {"error", "message", "reasons"}:
        raise DecodeError("an error answer is a map of error, message, reasons")
    kind = cbor.expect_text(error["error"], "error")
    if kind not in _ERROR_KINDS:
        raise DecodeError(f"unknown error kind {kind!r}")
    reasons = tuple(
        cbor.expect_text(r, "reason") for r in cbor.expect_array(error["reasons"], "reasons")
    )
    return kind, cbor.expect_text(error["message"], "message"), reasons


def error_response(
    kind: str, message: str, reasons: tuple[str, ...] = (), *, request: int
) -> bytes:
    """An error answer of `kind` (DENIED, NO_ROUTE, BUSY or FAILED) to request id `request`,
    within `limits.MAX_SERVICE_MESSAGE`: one that would be over it keeps MAX_ERROR_REASONS
    reasons and MAX_ERROR_TEXT characters of each text (a caller decodes answers within the
    limit: a larger one would be dropped, and its caller told nothing but `Unreachable`;
    review 44a, malformed 1)."""
    error = {"error": kind, "message": message, "reasons": list(reasons)}
    answer = cbor.encode([RESPONSE, VERSION, request, False, error])
    if len(answer) <= limits.MAX_SERVICE_MESSAGE:
        return answer
    kept = [cut_text(reason, MAX_ERROR_TEXT) for reason in reasons[:MAX_ERROR_REASONS]]
    if len(reasons) > MAX_ERROR_REASONS:
        kept.append(f"(and {len(reasons) - MAX_ERROR_REASONS} more reasons)")
    error = {"error": kind, "message": cut_text(message, MAX_ERROR_TEXT), "reasons": kept}
    return cbor.encode([RESPONSE, VERSION, request, False, error])


def _failure(exc: TrothError, request: int) -> bytes:
    if isinstance(exc, Denied):
        return error_response(DENIED, str(exc), exc.reasons, request=request)
    if isinstance(exc, Busy):
        return error_response(BUSY, str(exc), request=request)
    if isinstance(exc, RemoteError):  # already a remote's answer: not prefixed again
        return error_response(FAILED, str(exc), request=request)
    return error_response(FAILED, f"{type(exc).__name__}: {exc}", request=request)


# -- the host ----------------------------------------------------------------------------------


def _run(method: Method, arguments: Any, context: RequestContext) -> Awaitable[Any]:
    """Call `method`'s handler: as it is when inline or in a task already, else (a transport's
    read callback routes the request) in a task of its own."""
    if method.inline or asyncio.current_task() is not None:
        return method.handler(arguments, context)
    return asyncio.ensure_future(method.handler(arguments, context))


@runtime_checkable
class RequestSource(Protocol):
    """A source whose requests the host runs concurrently knows the connection it runs over
    and keeps their tasks, to cancel them when it closes (a channel end,
    troth.node.channel_ends)."""

    requests: set[asyncio.Task[None]]

    def request_lane(self) -> Hashable | None:
        """What this source's requests count against as their connection: the connection its
        messages arrive over, or the sender behind a relay this node connected to (None: none
        known)."""
        ...


class ServiceHost:
    """Serves node services on a router; the one place requests are decided and dispatched.
    `callers` maps a message's Source to its verified caller (None: refused); `limits` bound
    the requests running at once (module docstring), shared between the `trusted` authorities
    (how many the node trusts now) past the node's limit (troth.node.shares)."""

    def __init__(
        self,
        router: Router,
        policy: AccessPolicy,
        *,
        clock: Callable[[], int],
        callers: Callable[[Source | None], Caller | None],
        limits: RequestLimits | None = None,
        trusted: Callable[[], int] = lambda: 1,
    ) -> None:
        self.router = router
        self.policy = policy
        self.clock = clock
        self.callers = callers
        self.services: dict[str, NodeService] = {}
        self.admission = Admission(limits, trusted)
        """The requests running concurrently, counted (`busy` past its limits)."""
        self.refused = 0
        """Requests and one-way messages the decision point refused."""
        self.malformed = 0
        """Requests dropped unanswered: no request id could be read from them."""
        self.busy = 0
        """Requests answered "busy" (a limit of requests running was reached)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._log = RateLimitedLog(log, LOG_LINES_PER_MINUTE)

    @property
    def running(self) -> int:
        """Requests running concurrently now."""
        return len(self._tasks)

    def add(self, service: NodeService) -> None:
        """Serve `service` at `/service/<name>`."""
        self.services[service.name] = service
        address = service_address(service.name)
        if service.oneway is not None:
            oneway = service.oneway

            async def message(message: RoutedMessage, source: Source | None) -> None:
                # one-way messages keep their order: handled in the routing, one after another
                caller = self._caller(service.name, "message", source)
                context = self._decide(service.name, "message", None, caller, message.return_route)
                await _run(oneway, message.payload, context)

            self.router.register(address, message)
        else:
            self.router.register(address, functools.partial(self._request, service))

    def addresses(self) -> frozenset[Address]:
        """The addresses of the services served."""
        return frozenset(service_address(name) for name in self.services)

    def remove_all(self) -> None:
        """Stop serving every service; cancel the requests still running."""
        for name in self.services:
            self.router.unregister(service_address(name))
        self.services.clear()
        for task in list(self._tasks):
            task.cancel()

    def _caller(self, service: str, method: str, source: Source | None) -> Caller:
        caller = self.callers(source)
        if caller is None:
            self.refused += 1
            raise Denied((f"{service}.{method} refused: the source is not a verified caller",))
        return caller

    def _decide(
        self, service: str, method: str, arguments: Any, caller: Caller, back: Route
    ) -> RequestContext:
        now = self.clock()
        decision = self.policy.decide(AccessRequest(caller, service, method, arguments, now))
        if not decision.allowed:
            self.refused += 1
            raise Denied(decision.reasons)
        return RequestContext(caller, back, decision, now)

    async def _request(
        self, service: NodeService, message: RoutedMessage, source: Source | None
    ) -> None:
        """A request, in its connection's routing: decided here; run here when it is inline or
        local (the caller's own task waits for it), else started in a task of its own."""
        try:
            value = _envelope(message.payload, REQUEST, "request")
        except DecodeError as exc:  # no id to answer to
            self.malformed += 1
            self._log.log(logging.INFO, "%s: dropped a malformed request: %s", service.name, exc)
            return
        request, arguments, back = value[2], value[4], message.return_route
        try:
            name = cbor.expect_text(value[3], "method")
            method = service.methods.get(name)
            if method is None:
                shown = cut_text(name, MAX_NAME_SHOWN)  # review 44a, malformed 1
                raise RemoteError(f"service {service.name} has no method {shown!r}")
            caller = self._caller(service.name, name, source)
            if source is None or method.inline:
                context = self._decide(service.name, name, arguments, caller, back)
                payload = await self._respond(service.name, method, request, arguments, context)
            else:
                carried = source if isinstance(source, RequestSource) else None
                lane = _lane(caller, source, carried, back)
                why = self.admission.refusal(lane)
                if why is not None:  # answered at once: nothing waits in a queue
                    self.busy += 1
                    raise Busy(f"busy: {why}, send it again later")
                context = self._decide(service.name, name, arguments, caller, back)
                kept = carried.requests if carried is not None else None
                self._start(service.name, method, request, arguments, context, kept, lane)
                return
        except TrothError as exc:
            payload = _failure(exc, request)
        except Exception:  # a bug: answer, log, and keep the connection that carried it
            log.exception("%s: a request failed", service.name)
            payload = error_response(FAILED, "internal error", request=request)
        await self._answer(back, payload)

    def _start(
        self,
        service: str,
        method: Method,
        request: int,
        arguments: Any,
        context: RequestContext,
        kept: set[asyncio.Task[None]] | None,
        lane: Lane,
    ) -> None:
        """Run a request in a task of its own, counted in `lane` until it ends; `kept` (its
        channel end's) keeps the task, to cancel it when the channel closes."""

        async def run() -> None:
            payload = await self._respond(service, method, request, arguments, context)
            await self._answer(context.return_route, payload)

        task = asyncio.get_running_loop().create_task(run())
        self.admission.take(lane)
        self._tasks.add(task)
        if kept is not None:
            kept.add(task)

        def ended(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            if kept is not None:
                kept.discard(task)
            self.admission.release(lane)
            if not task.cancelled() and task.exception() is not None:
                log.error("%s: a request's task failed", service, exc_info=task.exception())

        task.add_done_callback(ended)

    async def _respond(
        self, service: str, method: Method, request: int, arguments: Any, context: RequestContext
    ) -> bytes:
        """Run the handler: its answer to request `request` (an error answer when it failed;
        an error answers this request only)."""
        try:
            result = await _run(method, arguments, context)
            payload = cbor.encode([RESPONSE, VERSION, request, True, result])
            if len(payload) > limits.MAX_SERVICE_MESSAGE:
                log.error("%s: a %d-byte answer is over the limit", service, len(payload))
                limit = limits.MAX_SERVICE_MESSAGE
                too_large = f"the answer is over the {limit}-byte service limit"
                payload = error_response(FAILED, too_large, request=request)
        except Busy as exc:  # the handler ran and met busy further on (a call of its own):
            # `failed`, for `busy` says it did not run and its caller would run it again
            # (docs/protocols.md, "Services"; review 28a, busy 1)
            ran = f"{service}: the request ran and met {exc}"
            payload = error_response(FAILED, ran, request=request)
        except TrothError as exc:
            payload = _failure(exc, request)
        except Exception:  # a bug: answer, log, and keep the connection that carried it
            log.exception("%s: a request failed", service)
            payload = error_response(FAILED, "internal error", request=request)
        return payload

    async def _answer(self, back: Route, payload: bytes) -> None:
        if back:
            with contextlib.suppress(TrothError):
                await self.router.route(RoutedMessage(back, (), payload))


def to_the_end(work: Coroutine[Any, Any, T], kept: set[asyncio.Task[Any]]) -> Awaitable[T]:
    """`work` in a task of its own that a cancelled request does not stop, for a handler whose
    steps must go together (docs/protocols.md, "Concurrent requests"): the handler awaits it
    shielded, so when its channel closes and the request is cancelled, the handler stops
    waiting but `work` still ends. The task stays in `kept` (its service's) until it ends; an
    error no one waits for any more is logged."""
    task = asyncio.get_running_loop().create_task(work)
    kept.add(task)

    def ended(task: asyncio.Task[T]) -> None:
        kept.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("work a cancelled request left to finish failed: %s", task.exception())

    task.add_done_callback(ended)
    return asyncio.shield(task)


def _lane(caller: Caller, source: Source, carried: RequestSource | None, back: Route) -> Lane:
    """Whom a peer's request counts against: the members at the roots of its chains (else the
    source's origin), the connection it came over (else its source), and the authorities at
    the roots of its chains (troth.node.shares)."""
    if isinstance(caller, PeerCaller):
        members: frozenset[Any] = member_accounts(caller.peer)
    else:
        members = frozenset({source.origin(back)})
    carrier = carried.request_lane() if carried is not None else None
    return Lane(members, source if carrier is None else carrier, authorities_of(caller))


# -- the client ----------------------------------------------------------------------------------
# The client side of the service protocol (docs/protocols.md, "Services"): `call`, and the
# request multiplexer behind it.
#
# Every first hop a node calls through (a channel end's `.enc` worker, or a local service) has one
# `Calls`: one reply worker at an unguessable address (`/worker/calls-<16 hex digits>`), the
# requests in flight by id, and a bound on them. Each request carries that one reply address as
# its return route, so the routed-message headers of every call through a channel are the same
# bytes (encoded and decoded once, then cached) and no worker is registered per call.
#
# Why an answer cannot be forged from elsewhere: the reply address is reachable only from sources
# that allow it, and a channel end allows the return addresses of what was sent through it (its
# reply paths), so only the channel the requests went through (and local code) can reach its
# `Calls`. An answer whose id is not in flight (unknown, answered already, timed out) is dropped
# and counted. When the channel closes its `Calls` is closed: the callers still waiting get
# `Unreachable` at once.
#
# Deadlines: one timer per `Calls`, not one per call. It is armed at the earliest deadline of the
# calls in flight; when it fires it fails the calls past their deadline and is armed again at the
# earliest one left. A call whose deadline comes before the armed time re-arms it; with one
# timeout for every call (the usual case) deadlines only grow, so no call touches the timer.

_PRUNE_AT = 64  # first hops remembered before the ones no longer served are forgotten
BUSY_BACKOFF: Final = (0.05, 1.0)
"""A call answered `busy` is sent again after between half and all of a ceiling that starts at
50 ms and doubles up to 1 s, while its timeout allows (docs/protocols.md, "Concurrent
requests"): a busy request did not run, so sending it again is safe."""


class Calls:
    """The requests a node has in flight through one first hop: one reply worker, request ids,
    at most `limit` in flight (more callers wait for a slot)."""

    def __init__(self, hop: Address, *, limit: int = limits.MAX_CALLS_IN_FLIGHT) -> None:
        self.hop = hop
        self.address = new_worker_address("calls")
        """The reply worker: the return route of every request through `hop`."""
        self.limit = limit
        self.dropped = 0
        """Answers dropped: malformed, or for an id not in flight."""
        self._pending: dict[int, asyncio.Future[list[Any]]] = {}
        self._deadlines: dict[int, tuple[float, float, Address]] = {}  # id: (loop time,
        # timeout, the service called)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._next_id = int.from_bytes(os.urandom(4), "big")
        self._busy = 0  # slots taken (requests in flight or about to be sent)
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed: str | None = None

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered (nor timed out)."""
        return len(self._pending)

    async def call(
        self, router: Router, route: Route, method: str, arguments: Any, timeout: float
    ) -> Any:
        """Send a request along `route` (starting with this hop) and wait for its answer. A
        `busy` answer (the request did not run) is sent again after a back-off, until the
        deadline; then `Busy` is raised."""
        if self._closed is not None:
            raise Unreachable(self._closed)
        request_id = self._new_id()
        request = encode_request(request_id, method, arguments)
        if self._busy < self.limit:
            self._busy += 1
        else:
            await self._wait_for_slot(timeout)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            ceiling = BUSY_BACKOFF[0]
            while True:
                sent = (request_id, request, deadline, timeout)
                started = loop.time()
                response = await self._exchange(router, route, *sent)
                try:
                    return result_of(response)
                except Busy:
                    pause = ceiling * (0.5 + random.random() / 2)
                    # sent again only with time left for twice the answer's round trip: one
                    # sent too late ended Unreachable at the deadline, not Busy
                    if loop.time() + pause + 2 * (loop.time() - started) >= deadline:
                        raise
                await asyncio.sleep(pause)
                ceiling = min(2 * ceiling, BUSY_BACKOFF[1])
                request_id = self._new_id()  # the same request under a new id
                request = encode_request(request_id, method, arguments)
        finally:
            self._release()

    def _new_id(self) -> int:
        request_id = self._next_id
        self._next_id = (request_id + 1) & MAX_REQUEST_ID
        return request_id

    async def _exchange(
        self,
        router: Router,
        route: Route,
        request_id: int,
        request: bytes,
        deadline: float,
        timeout: float,
    ) -> list[Any]:
        """Send one request and wait for its answer (Unreachable past `deadline`)."""
        if self._closed is not None:  # closed while this caller waited (a slot, a back-off)
            raise Unreachable(self._closed)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[Any]] = loop.create_future()
        self._pending[request_id] = answer
        self._deadlines[request_id] = (deadline, timeout, route[-1])
        if self._timer is None or deadline < self._timer_at:
            self._arm(loop, deadline)
        try:
            await router.route(RoutedMessage(route, (self.address,), request))
            return await answer
        finally:
            self._pending.pop(request_id, None)
            self._deadlines.pop(request_id, None)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """(Re-)arm the deadline timer at loop time `when`."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._expire, loop)
        self._timer_at = when

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """The deadline timer: fail the calls past their deadline (Unreachable), then arm the
        timer at the earliest deadline left."""
        self._timer = None
        now = loop.time()
        earliest: float | None = None
        for request_id, (deadline, timeout, where) in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[request_id]
                answer = self._pending.get(request_id)
                if answer is not None and not answer.done():
                    why = f"no answer from {where} within {timeout} s"
                    answer.set_exception(Unreachable(why))
            elif earliest is None or deadline < earliest:
                earliest = deadline
        if earliest is not None and self._closed is None:
            self._arm(loop, earliest)

    async def _wait_for_slot(self, timeout: float) -> None:
        """Wait until a finishing request hands its slot over (Unreachable after `timeout`)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        handed = False
        try:
            async with asyncio.timeout(timeout):
                await waiter
            handed = True
        except TimeoutError:
            raise Unreachable(f"{self.limit} requests in flight to {self.hop}") from None
        finally:
            if not handed:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # handed a slot it will not use: pass it on
                else:
                    waiter.cancel()  # skipped by _release

    def _release(self) -> None:
        """A request is done: its slot goes to the first caller waiting, else back."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._busy -= 1

    async def answer(self, message: RoutedMessage, source: Source | None) -> None:
        """The reply worker: hand an answer to the caller waiting for its id."""
        try:
            request_id, response = decode_response(message.payload)
        except DecodeError as exc:
            self.dropped += 1
            _DROPPED_ANSWERS.log(
                logging.INFO, "%s: dropped a malformed answer: %s", self.address, exc
            )
            return
        waiting = self._pending.pop(request_id, None)
        if waiting is None or waiting.done():
            self.dropped += 1
            _DROPPED_ANSWERS.log(
                logging.INFO,
                "%s: dropped an answer to request %d, not in flight",
                self.address,
                request_id,
            )
            return
        waiting.set_result(response)

    def close(self, why: str) -> None:
        """The hop is gone: every caller still waiting gets Unreachable(`why`), and so does
        every later call."""
        self._closed = why
        for waiting in self._pending.values():
            if not waiting.done():
                waiting.set_exception(Unreachable(why))
        self._pending.clear()
        self._deadlines.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


_CALLS: weakref.WeakKeyDictionary[Router, dict[Address, Calls]] = weakref.WeakKeyDictionary()


def calls_through(router: Router, hop: Address) -> Calls:
    """The `Calls` of first hop `hop` on `router` (made, and its reply worker registered, on
    first use)."""
    table = _CALLS.get(router)
    if table is None:
        table = _CALLS[router] = {}
    calls = table.get(hop)
    if calls is None:
        if len(table) >= _PRUNE_AT:
            for gone in [h for h, c in table.items() if not c.in_flight and not router.has(h)]:
                forget_calls(router, gone, f"{gone} is gone")
        calls = table[hop] = Calls(hop)
        router.register(calls.address, calls.answer)
    return calls


def forget_calls(router: Router, hop: Address, why: str) -> None:
    """`hop` is gone (its channel closed): fail its callers still waiting with `why`, and stop
    its reply worker."""
    table = _CALLS.get(router)
    calls = table.pop(hop, None) if table is not None else None
    if calls is not None:
        calls.close(why)
        router.unregister(calls.address)


async def call(
    router: Router, route: Route, method: str, arguments: Any, *, timeout: float = 10.0
) -> Any:
    """Send a request along `route` (ending at a service) and wait for its response: its
    result, or `Denied` (with the reasons), `RoutingError` (no route; `Congested` when this
    node's first hop dropped it), `Busy` (answered busy until `timeout`: the node runs as many
    requests as it may, or the way on is congested), `RemoteError` (the service failed or
    refused it) or `Unreachable` (no answer within `timeout` seconds, or the channel closed)."""
    if not route:
        raise RoutingError("a call needs a route to a service")
    return await calls_through(router, route[0]).call(router, route, method, arguments, timeout)
