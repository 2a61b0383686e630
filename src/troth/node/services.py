"""Node services and their one request/response protocol (docs/protocols.md, "Services").

    request  = ["troth.service.request", 1, method, arguments]
    response = ["troth.service.response", 1, ok (bool), result / error text]

A request travels through a secure channel to `/service/<name>` with a fresh reply address
(`/worker/req-...`) as its return route; the service answers to that route.

Requests and responses are at most `limits.MAX_SERVICE_MESSAGE` bytes (docs/protocols.md,
"Services"): both sides decode with that limit, and a service whose answer would be larger
answers an error instead (nothing the protocol sends comes close: a feed page is at most half
of it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, RemoteError, RoutingError, TrothError
from troth.routing import Address, Route, RoutedMessage, Router, Source, new_worker_address

__all__ = ["Method", "RequestContext", "Service", "call", "error_response"]

log = logging.getLogger("troth.node.services")
REQUEST: Final = "troth.service.request"
RESPONSE: Final = "troth.service.response"
VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class RequestContext:
    source: Source | None  # the channel end the request came through (None: local)
    return_route: Route


Method = Callable[[Any, RequestContext], Awaitable[Any]]


def error_response(text: str) -> bytes:
    return cbor.encode([RESPONSE, VERSION, False, text])


class Service:
    """A named service: methods keyed by name, each `async (arguments, context) -> result`."""

    def __init__(self, router: Router, name: str, methods: dict[str, Method]) -> None:
        self.address = Address("service", name)
        self.router = router
        self.methods = methods

    def start(self) -> None:
        self.router.register(self.address, self._handle)

    async def _handle(self, message: RoutedMessage, source: Source | None) -> None:
        try:
            value = cbor.expect_array(
                cbor.decode(message.payload, max_bytes=limits.MAX_SERVICE_MESSAGE), "request", 4
            )
            cbor.expect_header(value, REQUEST, VERSION, "request")
            method = self.methods.get(cbor.expect_text(value[2], "method"))
            if method is None:
                raise RemoteError(f"{self.address} has no method {value[2]!r}")
            result = await method(value[3], RequestContext(source, message.return_route))
            payload = cbor.encode([RESPONSE, VERSION, True, result])
            if len(payload) > limits.MAX_SERVICE_MESSAGE:
                log.error("%s: a %d-byte answer is over the limit", self.address, len(payload))
                payload = error_response(
                    f"the answer is over the {limits.MAX_SERVICE_MESSAGE}-byte service limit"
                )
        except TrothError as exc:
            payload = error_response(f"{type(exc).__name__}: {exc}")
        except Exception:  # a bug: answer, log, and keep the connection that carried it
            log.exception("%s: a request failed", self.address)
            payload = error_response("internal error")
        if message.return_route:
            with contextlib.suppress(TrothError):
                await self.router.route(RoutedMessage(message.return_route, (), payload))


async def call(
    router: Router, route: Route, method: str, arguments: Any, *, timeout: float = 10.0
) -> Any:
    """Send a request along `route` (ending at a service) and wait for its response."""
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
        raise RoutingError(f"no answer from {route[-1]} within {timeout} s") from None
    finally:
        router.unregister(reply)
    try:
        value = cbor.expect_array(
            cbor.decode(payload, max_bytes=limits.MAX_SERVICE_MESSAGE), "response", 4
        )
        cbor.expect_header(value, RESPONSE, VERSION, "response")
    except DecodeError as exc:
        raise RemoteError(f"malformed response: {exc}") from None
    if value[2] is not True:
        raise RemoteError(str(value[3]))
    return value[3]
