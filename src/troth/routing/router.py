"""The router: delivers a message to its next hop, a local worker or a transport. Default deny:
a message arriving from a transport connection or a secure channel (its `Source`) reaches only
the addresses that source allows (docs/protocols.md, "Access")."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Protocol

from troth.errors import RoutingError
from troth.routing.address import Address
from troth.routing.message import RoutedMessage

__all__ = ["Handler", "Router", "Source", "Transport", "new_worker_address"]


class Source(Protocol):
    """Where a message came from, and what it may reach."""

    name: str

    def allows(self, address: Address) -> bool: ...

    def allow(self, address: Address) -> None:
        """Let later messages from this source reach `address` (a reply path, a new endpoint)."""
        ...

    def forget(self, address: Address) -> None:
        """Undo `allow` (the endpoint is gone)."""
        ...


Handler = Callable[[RoutedMessage, Source | None], Awaitable[None]]
"""A worker: gets the message (already past its own address) and its source (None: local)."""


class Transport(Protocol):
    kind: str

    async def send(self, address: Address, message: RoutedMessage) -> None: ...


def new_worker_address(prefix: str) -> Address:
    return Address("worker", f"{prefix}-{os.urandom(8).hex()}")


class Router:
    def __init__(self) -> None:
        self._workers: dict[Address, Handler] = {}
        self._transports: dict[str, Transport] = {}

    def register(self, address: Address, handler: Handler) -> None:
        if address in self._workers:
            raise RoutingError(f"{address} is taken")
        self._workers[address] = handler

    def unregister(self, address: Address) -> None:
        self._workers.pop(address, None)

    def has(self, address: Address) -> bool:
        return address in self._workers

    def add_transport(self, transport: Transport) -> None:
        self._transports[transport.kind] = transport

    async def route(self, message: RoutedMessage, source: Source | None = None) -> None:
        """Deliver to the next hop. Raises RoutingError on no route or a denied address."""
        hop = message.next_hop()
        if source is not None and not source.allows(hop):
            raise RoutingError(f"{source.name} may not reach {hop}")
        handler = self._workers.get(hop)
        if handler is not None:
            await handler(message.stepped(), source)
            return
        transport = self._transports.get(hop.kind)
        if transport is None:
            raise RoutingError(f"no worker or transport for {hop}")
        if source is not None and hop.kind == "tcp":
            raise RoutingError(f"{source.name} may not open connections ({hop})")
        await transport.send(hop, message.stepped())
