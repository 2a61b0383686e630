"""Node services as plug-ins, and their one request/response protocol (docs/protocols.md,
"Services").

    request  = ["troth.service.request", 1, method, arguments]
    response = ["troth.service.response", 1, true, result]
             | ["troth.service.response", 1, false, {"error": kind, "message": text,
                                                     "reasons": [text, ...]}]

`kind` is "denied" (the access decision refused: `reasons` say who refused whom and why; the
caller raises `Denied`), "no-route" (nothing serves that address: `RoutingError`) or "failed"
(the service refused or failed the request: `RemoteError`).

A request travels through a secure channel to `/service/<name>` with a fresh reply address
(`/worker/req-...`) as its return route; the service answers to that route. Requests and
responses are at most `limits.MAX_SERVICE_MESSAGE` bytes: both sides decode with that limit,
and a service whose answer would be larger answers an error instead.

A service (`NodeService`) is a name (its address is `/service/<name>`), methods (name ->
handler + access rule), optionally a one-way handler (messages without an answer), a
maintenance hook and a status. `ServiceHost` serves them on a router: every request passes the
node's `AccessPolicy` before its handler runs, and the handler gets the verified caller in its
`RequestContext`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, Denied, RemoteError, RoutingError, TrothError, Unreachable
from troth.node.access import AccessPolicy, AccessRequest, Caller, Decision, Rule
from troth.routing import Address, Route, RoutedMessage, Router, Source, new_worker_address

__all__ = [
    "DENIED",
    "FAILED",
    "NO_ROUTE",
    "Handler",
    "Method",
    "NodeService",
    "RequestContext",
    "ServiceHost",
    "call",
    "error_response",
    "service_address",
]

log = logging.getLogger("troth.node.services")
REQUEST: Final = "troth.service.request"
RESPONSE: Final = "troth.service.response"
VERSION: Final = 1
DENIED: Final = "denied"
NO_ROUTE: Final = "no-route"
FAILED: Final = "failed"
_ERROR_KINDS: Final = frozenset({DENIED, NO_ROUTE, FAILED})


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
    """A service method: its handler and the access rule the decision point applies."""

    handler: Handler
    rule: Rule


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


def error_response(kind: str, message: str, reasons: tuple[str, ...] = ()) -> bytes:
    """An error answer of `kind` (DENIED, NO_ROUTE or FAILED)."""
    return cbor.encode(
        [RESPONSE, VERSION, False, {"error": kind, "message": message, "reasons": list(reasons)}]
    )


def _failure(exc: TrothError) -> bytes:
    if isinstance(exc, Denied):
        return error_response(DENIED, str(exc), exc.reasons)
    if isinstance(exc, RemoteError):  # already a remote's answer: not prefixed again
        return error_response(FAILED, str(exc))
    return error_response(FAILED, f"{type(exc).__name__}: {exc}")


class ServiceHost:
    """Serves node services on a router; the one place requests are decided and dispatched.
    `callers` maps a message's Source to its verified caller (None: refused)."""

    def __init__(
        self,
        router: Router,
        policy: AccessPolicy,
        *,
        clock: Callable[[], int],
        callers: Callable[[Source | None], Caller | None],
    ) -> None:
        self.router = router
        self.policy = policy
        self.clock = clock
        self.callers = callers
        self.services: dict[str, NodeService] = {}
        self.refused = 0
        """Requests and one-way messages the decision point refused."""

    def add(self, service: NodeService) -> None:
        """Serve `service` at `/service/<name>`."""
        self.services[service.name] = service
        address = service_address(service.name)
        if service.oneway is not None:
            oneway = service.oneway

            async def message(message: RoutedMessage, source: Source | None) -> None:
                context = self._decide(service.name, "message", None, source, message.return_route)
                await oneway.handler(message.payload, context)

            self.router.register(address, message)
        else:
            self.router.register(address, lambda m, s: self._request(service, m, s))

    def addresses(self) -> frozenset[Address]:
        """The addresses of the services served."""
        return frozenset(service_address(name) for name in self.services)

    def remove_all(self) -> None:
        """Stop serving every service."""
        for name in self.services:
            self.router.unregister(service_address(name))
        self.services.clear()

    def _decide(
        self, service: str, method: str, arguments: Any, source: Source | None, back: Route
    ) -> RequestContext:
        now = self.clock()
        caller = self.callers(source)
        if caller is None:
            self.refused += 1
            raise Denied((f"{service}.{method} refused: the source is not a verified caller",))
        decision = self.policy.decide(AccessRequest(caller, service, method, arguments, now))
        if not decision.allowed:
            self.refused += 1
            raise Denied(decision.reasons)
        return RequestContext(caller, back, decision, now)

    async def _request(
        self, service: NodeService, message: RoutedMessage, source: Source | None
    ) -> None:
        try:
            value = cbor.expect_array(
                cbor.decode(message.payload, max_bytes=limits.MAX_SERVICE_MESSAGE), "request", 4
            )
            cbor.expect_header(value, REQUEST, VERSION, "request")
            name = cbor.expect_text(value[2], "method")
            method = service.methods.get(name)
            if method is None:
                raise RemoteError(f"service {service.name} has no method {name!r}")
            context = self._decide(service.name, name, value[3], source, message.return_route)
            result = await method.handler(value[3], context)
            payload = cbor.encode([RESPONSE, VERSION, True, result])
            if len(payload) > limits.MAX_SERVICE_MESSAGE:
                log.error("%s: a %d-byte answer is over the limit", service.name, len(payload))
                limit = limits.MAX_SERVICE_MESSAGE
                too_large = f"the answer is over the {limit}-byte service limit"
                payload = error_response(FAILED, too_large)
        except TrothError as exc:
            payload = _failure(exc)
        except Exception:  # a bug: answer, log, and keep the connection that carried it
            log.exception("%s: a request failed", service.name)
            payload = error_response(FAILED, "internal error")
        if message.return_route:
            with contextlib.suppress(TrothError):
                await self.router.route(RoutedMessage(message.return_route, (), payload))


async def call(
    router: Router, route: Route, method: str, arguments: Any, *, timeout: float = 10.0
) -> Any:
    """Send a request along `route` (ending at a service) and wait for its response: its
    result, or `Denied` (with the reasons), `RoutingError` (no route) or `RemoteError`."""
    reply = new_worker_address("req")
    future: asyncio.Future[bytes | bytearray | memoryview] = (
        asyncio.get_running_loop().create_future()
    )

    async def receive(message: RoutedMessage, source: Source | None) -> None:
        if not future.done():
            future.set_result(message.payload)

    request = cbor.encode([REQUEST, VERSION, method, arguments])
    if len(request) > limits.MAX_SERVICE_MESSAGE:
        raise RemoteError(f"a request over the {limits.MAX_SERVICE_MESSAGE}-byte service limit")
    router.register(reply, receive)
    try:
        await router.route(RoutedMessage(route, (reply,), request))
        async with asyncio.timeout(timeout):
            payload = await future
    except TimeoutError:
        raise Unreachable(f"no answer from {route[-1]} within {timeout} s") from None
    finally:
        router.unregister(reply)
    try:
        value = cbor.expect_array(
            cbor.decode(payload, max_bytes=limits.MAX_SERVICE_MESSAGE), "response", 4
        )
        cbor.expect_header(value, RESPONSE, VERSION, "response")
        if value[2] is True:
            return value[3]
        kind, message, reasons = _error_fields(value[3])
    except DecodeError as exc:
        raise RemoteError(f"malformed response: {exc}") from None
    if kind == DENIED:
        raise Denied(reasons)
    if kind == NO_ROUTE:
        raise RoutingError(message)
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
