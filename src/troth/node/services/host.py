"""The service host: `ServiceHost` serves node services on a router, the one place requests
are decided and dispatched (docs/protocols.md, "Services"). Every request passes the node's
`AccessPolicy` before its handler runs, and the handler gets the verified caller in its
`RequestContext`; what it returns, or the error it raises, is answered along the request's
return route with the request's id (troth.node.services.protocol). A peer's request to a service
not served is answered here too, as the decision point says (`unserved`: review 64b, access 1).

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
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

from troth import limits
from troth.encoding import cbor
from troth.errors import Busy, DecodeError, Denied, RemoteError, TrothError, cut_text
from troth.node.access import (
    UNSERVED,
    AccessPolicy,
    AccessRequest,
    Caller,
    PeerCaller,
    member_accounts,
)
from troth.node.services.admission import Admission, Lane, RequestLimits
from troth.node.services.plugin import Method, NodeService, RequestContext, service_address
from troth.node.services.protocol import (
    FAILED,
    LOG_LINES_PER_MINUTE,
    REQUEST,
    RESPONSE,
    VERSION,
    check_message,
    decode_envelope,
    error_response,
    failure_response,
)
from troth.node.shares import authorities_of
from troth.routing import Address, Route, RoutedMessage, Router, Source
from troth.transport.ratelog import RateLimitedLog

__all__ = ["MAX_METHODS_DECIDED", "MAX_NAME_SHOWN", "RequestSource", "ServiceHost", "to_the_end"]

log = logging.getLogger("troth.node.services")
T = TypeVar("T")
MAX_NAME_SHOWN: Final = 64
"""Characters of an unknown method's name an answer shows (the caller chose the name, up to
the whole request: review 44a, malformed 1)."""
MAX_METHODS_DECIDED: Final = 16
"""Methods of a service decided for a caller that asks for one it does not have, to learn
whether it may be told so (`ServiceHost._no_method`): a peer chooses how many such requests
it sends, an operator's service how many methods it has."""


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
                try:
                    caller = self._caller(service.name, "message", source)
                    back = message.return_route
                    context = self._decide(service.name, "message", None, caller, back)
                except Denied as refused:  # a request sent to it answered as any service's
                    # (review 64b, access 1: unanswered, it told a served one-way service)
                    answer = _refused(message.payload, refused)
                    if answer is not None:
                        await self._answer(message.return_route, answer)
                    raise
                try:
                    await _run(oneway, message.payload, context)
                except asyncio.CancelledError:
                    if _cancelling():
                        raise
                    log.exception("%s: a one-way message failed", service.name)

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

    async def unserved(self, message: RoutedMessage, source: Source | None) -> bool:
        """A peer's `message` to a `/service/...` address this host does not serve (its next
        hop): answered as a request to a members-only method of a service it serves would be,
        and True, unless the decision point admits its caller to one (`UNSERVED`: a member,
        told honestly that nothing serves it; False). A stranger or a revoked member told
        `denied` by the services served and `no-route` by made-up names listed the services
        by name (review 64b, access 1; docs/protocols.md, "Services")."""
        try:
            caller = self._caller(message.onward[0].value, "request", source)
            decision = self.policy.decide(AccessRequest(caller, *UNSERVED, None, self.clock()))
            if decision.allowed:
                return False
            self.refused += 1
            answer = _refused(message.payload, Denied(decision.reasons))
        except Denied as exc:  # no verified caller (a channel end's message always has one)
            answer = _refused(message.payload, exc)
        except Exception:  # a bug: answered and logged as a served service's (`_request`)
            log.exception("a request to a service not served failed")
            answer = _refused(message.payload, None)
        if answer is not None:
            await self._answer(message.return_route, answer)
        return True

    def _no_method(
        self, service: NodeService, name: str, arguments: Any, caller: Caller
    ) -> TrothError:
        """The answer to method `name`, which `service` does not have: "no method" to a caller
        the decision point allows one of its first MAX_METHODS_DECIDED methods, else the
        denial its first method gets (review 63i, access 1: a caller refused the whole service
        told its methods from made-up names, as only those were answered "no method"). Where
        Cedar decides, that denial's reasons name the method decided. (The decisions asked
        here are recorded nowhere: the node's decision point has no recorder, the MCP gate's
        own point records its calls.)"""
        now, refusal = self.clock(), None
        for known in itertools.islice(service.methods, MAX_METHODS_DECIDED):
            request = AccessRequest(caller, service.name, known, arguments, now)
            decision = self.policy.decide(request)
            if decision.allowed:
                shown = cut_text(name, MAX_NAME_SHOWN)  # review 44a, malformed 1
                return RemoteError(f"service {service.name} has no method {shown!r}")
            refusal = refusal or decision
        self.refused += 1
        if refusal is None:  # a service with no methods (one-way only) is served apart
            return Denied((f"{service.name} has no methods",))
        return Denied(refusal.reasons)

    async def _request(
        self, service: NodeService, message: RoutedMessage, source: Source | None
    ) -> None:
        """A request, in its connection's routing: decided here; run here when it is inline or
        local (the caller's own task waits for it), else started in a task of its own."""
        try:
            value = decode_envelope(message.payload, REQUEST, "request")
        except DecodeError as exc:  # no id to answer to
            self.malformed += 1
            self._log.log(logging.INFO, "%s: dropped a malformed request: %s", service.name, exc)
            return
        request, arguments, back = value[2], value[4], message.return_route
        try:
            name = cbor.expect_text(value[3], "method")
            caller = self._caller(service.name, name, source)
            method = service.methods.get(name)
            if method is None:
                raise self._no_method(service, name, arguments, caller)
            if source is None or method.inline:
                context = self._decide(service.name, name, arguments, caller, back)
                payload = await self._respond(service.name, method, request, arguments, context)
            else:
                # decided first: a caller refused is told so whatever runs (review 64b, access
                # 3: `busy` before the decision told a stranger the services served)
                context = self._decide(service.name, name, arguments, caller, back)
                carried = source if isinstance(source, RequestSource) else None
                lane = _lane(caller, source, carried, back)
                why = self.admission.refusal(lane)
                if why is not None:  # answered at once: nothing waits in a queue
                    self.busy += 1
                    raise Busy(f"busy: {why}, send it again later")
                kept = carried.requests if carried is not None else None
                self._start(service.name, method, request, arguments, context, kept, lane)
                return
        except TrothError as exc:
            payload = failure_response(exc, request)
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
            payload, within = cbor.encode_counted([RESPONSE, VERSION, request, True, result])
            if len(payload) > limits.MAX_SERVICE_MESSAGE:
                log.error("%s: a %d-byte answer is over the limit", service, len(payload))
                limit = limits.MAX_SERVICE_MESSAGE
                too_large = f"the answer is over the {limit}-byte service limit"
                payload = error_response(FAILED, too_large, request=request)
            elif not within:  # one its caller would drop, unanswered (review 51e, calls 6);
                check_message(payload)  # else the encoding walk counted them (review 53b)
        except Busy as exc:  # the handler ran and met busy further on (a call of its own):
            # `failed`, for `busy` says it did not run and its caller would run it again
            # (docs/protocols.md, "Services"; review 28a, busy 1)
            ran = f"{service}: the request ran and met {exc}"
            payload = error_response(FAILED, ran, request=request)
        except TrothError as exc:
            payload = failure_response(exc, request)
        except Exception:  # a bug: answer, log, and keep the connection that carried it
            log.exception("%s: a request failed", service)
            payload = error_response(FAILED, "internal error", request=request)
        except asyncio.CancelledError:  # not an Exception: the handler's own, or its request's
            if _cancelling():
                raise
            log.exception("%s: a request failed", service)
            payload = error_response(FAILED, "internal error", request=request)
        return payload

    async def _answer(self, back: Route, payload: bytes) -> None:
        if back:
            try:  # noqa: SIM105 - a suppress() costs three Python calls on every answer
                await self.router.route(RoutedMessage(back, (), payload))
            except TrothError:
                pass


def _refused(payload: bytes | bytearray | memoryview, refused: Denied | None) -> bytes | None:
    """The answer to `payload` from a caller refused as `refused` says (None: a bug, `failed`),
    as `_request` answers such a request (None when it is no request: nothing is answered;
    `failed` when its method is no text, which `_request` reads before it decides)."""
    try:
        value = decode_envelope(payload, REQUEST, "request")
    except DecodeError:
        return None
    try:
        cbor.expect_text(value[3], "method")
    except DecodeError as exc:
        return failure_response(exc, value[2])
    if refused is None:
        return error_response(FAILED, "internal error", request=value[2])
    return failure_response(refused, value[2])


def _cancelling() -> bool:
    """Whether the task running now is being cancelled: a handler's `CancelledError` is then
    its request's (the channel closed, the node stops: no answer has a way back), else the
    handler's own, a bug answered and logged as any other (it awaited a future something else
    cancelled: review 61i, access 1, where it went unanswered and, raised inline, up the
    connection's routing, which it stopped for every channel over that connection)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


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
