"""The router: delivers a message to its next hop, a local worker or a transport. Default deny:
a message arriving from a transport connection or a secure channel (its `Source`) reaches only
the addresses that source allows (docs/protocols.md, "Routing"). Sources keep what they allow
in an `AllowSet` (troth.routing.allow)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Protocol

from troth.errors import DecodeError, RoutingError
from troth.routing.address import Address, Route
from troth.routing.message import RoutedMessage, stepped

__all__ = ["Handler", "Router", "Source", "Transport", "Unroutable", "new_worker_address"]


class Source(Protocol):
    """Where a message came from, and what it may reach."""

    name: str

    def allows(self, address: Address) -> bool:
        """Whether a message from this source may go to `address`."""
        ...

    def allow(self, address: Address) -> None:
        """Let later messages from this source reach `address` (a reply path, a new endpoint)."""
        ...

    def hold(self, address: Address) -> None:
        """Let later messages from this source reach `address` until `forget`, whatever else
        it allows meanwhile (a channel end that runs over this source)."""
        ...

    def forget(self, address: Address) -> None:
        """Undo `allow` or `hold` (the endpoint is gone)."""
        ...

    def cut_from(self, address: Address) -> bool:
        """Whether this source reached `address` and was cut off from it (a relay refused:
        `AllowSet.forget_each`), not allowed it again since."""
        ...

    def origin(self, return_route: Route) -> str:
        """Who sent a message that came with `return_route`, as far as this source can tell
        (the key that per-source limits count under, e.g. the peer's IP address)."""
        ...


Handler = Callable[[RoutedMessage, Source | None], Awaitable[None]]
"""A worker: gets the message (already past its own address) and its source (None: local)."""
Unroutable = Callable[[RoutedMessage, Source], None]
"""Told of a message from a source whose next hop is a node-local address (`/worker/...`) the
source may reach and no worker serves, or one the source was cut off from (it reached it before
a relay's refusal cut it: review 71s, relaywait 1), before it is dropped (troth.node.no_route:
the no-route notice; never for an address the source never reached: review 50f, relays 3)."""


class Transport(Protocol):
    """Sends messages to addresses of its kind (`tcp`)."""

    kind: str

    async def send(self, address: Address, message: RoutedMessage) -> None:
        """Send `message` (already past `address`) to the node at `address`."""
        ...


def new_worker_address(prefix: str) -> Address:
    """A fresh, unguessable node-local address (`/worker/<prefix>-<16 hex digits>`)."""
    return Address("worker", f"{prefix}-{os.urandom(8).hex()}")


class Router:
    """Local workers by address, transports by address kind; `route` delivers one hop."""

    def __init__(self) -> None:
        self._workers: dict[Address, Handler] = {}
        self._transports: dict[str, Transport] = {}
        self.unroutable: Unroutable | None = None
        """Told of each message from a source dropped for a `/worker/...` next hop the source
        may reach and no worker serves, or was cut off from (docs/protocols.md, "Unanswered
        channels"; review 49b, relays 1; review 50f, relays 3; review 71s, relaywait 1)."""

    def register(self, address: Address, handler: Handler) -> None:
        """Serve `address` with `handler` (RoutingError when it is taken)."""
        if address in self._workers:
            raise RoutingError(f"{address} is taken")
        self._workers[address] = handler

    def unregister(self, address: Address) -> None:
        """Stop serving `address` (no error when it was not served)."""
        self._workers.pop(address, None)

    def worker(self, address: Address) -> Handler | None:
        """The local worker serving `address`, if any."""
        return self._workers.get(address)

    def has(self, address: Address) -> bool:
        """Whether a local worker serves `address`."""
        return address in self._workers

    def add_transport(self, transport: Transport) -> None:
        """Send addresses of `transport.kind` through it."""
        self._transports[transport.kind] = transport

    async def route(self, message: RoutedMessage, source: Source | None = None) -> None:
        """Deliver to the next hop. Raises RoutingError on no route or a denied address."""
        onward = message.onward
        if not onward:
            raise DecodeError("message has no onward route")
        hop = onward[0]
        if source is not None and not source.allows(hop):
            # no notice: one would tell the source whether a node-local address it could never
            # reach is served (review 50f, relays 3); but one it was cut off from (a relay
            # refused) is no more for it, served or not: its channels there learn at once
            if hop.kind == "worker" and source.cut_from(hop):  # (review 71s, relaywait 1)
                self._unroutable(message, source)
            raise RoutingError(f"{source.name} may not reach {hop}")
        handler = self._workers.get(hop)
        if handler is not None:  # (`stepped`, inline: one call less per hop)
            await handler(RoutedMessage(onward[1:], message.return_route, message.payload), source)
            return
        transport = self._transports.get(hop.kind)
        if transport is None:
            if source is not None and hop.kind == "worker":  # one `source` may reach: it was
                self._unroutable(message, source)  # there, and is no more
            raise RoutingError(f"no worker or transport for {hop}")
        if source is not None and hop.kind == "tcp":
            raise RoutingError(f"{source.name} may not open connections ({hop})")
        await transport.send(hop, stepped(message))

    def _unroutable(self, message: RoutedMessage, source: Source) -> None:
        if self.unroutable is not None:
            self.unroutable(message, source)
