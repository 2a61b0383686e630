"""Pinned service routes (docs/protocols.md, "Addresses and tickets"; docs/traces.md, "Where
records go"): a node that sends what it must not hand to just anyone — its records, to the trace
service node.json names — expects one identity behind that route, as its authority's and
policy routes expect the authority's identifier.

The identity expected is the one configured (node.json `traces_expect`), else the one that
answered there first: it is pinned at that first contact and kept in `<node dir>/pins.json`
(`RoutePins`, an identifier book: troth.node.books), so a restart expects it too. Every channel
to the route is opened with `expect` (the runtime's `channel_to`, the same check as the
authority's routes: troth.node.access.ChannelAdmission), so anyone else answering there — a
member that took over the collector's relay name while it was away — is refused before the
node reveals its own identity, with a ChannelError PEER_NOT_ALLOWED naming both identities and
the route. The identifier is pinned, not a key: a collector that rotates its keys is the same
identity and is still accepted. To move to another collector: change `traces` (a new route is
pinned afresh) or set `traces_expect`, or remove the route from pins.json, then restart the node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from troth import limits
from troth.errors import ChannelError, ChannelFailure, ConfigError, RoutingError
from troth.identity import Identifier
from troth.node.books import IdentifierBook
from troth.node.channel_ends import ChannelEnd
from troth.node.node import Node
from troth.node.services.base import call
from troth.node.worker import StoreWorker
from troth.routing import Address, Route, Router, format_route, parse_route

__all__ = ["ChannelTo", "PinnedService", "RoutePins", "pinned_traces", "split_service_route"]


class ChannelTo(Protocol):
    """An open channel to the node at `route`, refused unless `expect` answers there (the
    runtime's `channel_to`)."""

    def __call__(self, route: Route, *, expect: Identifier | None = None) -> Awaitable[ChannelEnd]:
        """The channel (ChannelError PEER_NOT_ALLOWED when another identity answers)."""
        ...


def split_service_route(text: str) -> tuple[Route, Address]:
    """`/tcp/h:p[/relay/x]/service/echo` -> (route to the node, the service address)."""
    route = parse_route(text)
    if route[-1].kind != "service" or len(route) < 2:
        raise RoutingError(f"{text!r} must end with /service/NAME after the route to a node")
    return route[:-1], route[-1]


class RoutePins(IdentifierBook):
    """The identity pinned at each route, in `<node dir>/pins.json`:
    {"version": 1, "pins": {route: identifier}} (troth.node.books)."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            field="pins",
            what="pin book",
            max_entries=limits.MAX_ROUTE_PINS,
            max_bytes=limits.MAX_PINS_FILE_BYTES,
            key=lambda text: format_route(parse_route(text)),
        )

    def pin(self, route: Route, identifier: Identifier) -> None:
        """Keep `identifier` as the identity expected at `route` (ConfigError when the book is
        full: the pin is not kept and the caller must not send)."""
        pins = self.load()
        key = format_route(route)
        if key not in pins and len(pins) >= self.max_entries:
            raise ConfigError(
                f"{self.path} holds {len(pins)} pins, the most it keeps: remove the routes no "
                "longer used"
            )
        pins[key] = identifier
        self.save(pins)


class PinnedService:
    """Calls to the service at the route `text` (ending in /service/NAME), every channel to
    it pinned: to `configured`, else to the identity that answered there first (kept in
    `pins`). `run` runs the pin book's file work off the event loop; `what` names the service
    in errors."""

    def __init__(
        self,
        text: str,
        *,
        what: str,
        configured: Identifier | None,
        pins: RoutePins,
        channel_to: ChannelTo,
        router: Router,
        run: Callable[..., Awaitable[Any]],
    ) -> None:
        self.route, self.service = split_service_route(text)
        self.text = text
        self.what = what
        self.configured = configured
        self.pins = pins
        self.channel_to = channel_to
        self.router = router
        self.run = run
        self._pinned: Identifier | None = None
        self._loaded = False
        self._first = asyncio.Lock()  # the first contact, one call at a time

    async def expected(self) -> Identifier | None:
        """The identity expected at the route (None: nobody answered there yet)."""
        if self.configured is not None:
            return self.configured
        if not self._loaded:
            kept = await self.run(self.pins.load)
            self._pinned = kept.get(format_route(self.route))
            self._loaded = True
        return self._pinned

    async def call(self, method: str, arguments: Any) -> Any:
        """Call `method` of the service, over a channel to the identity expected there (the
        first to answer is pinned, and kept before anything is sent to it)."""
        end = await self._channel()
        return await call(self.router, (end.enc, self.service), method, arguments)

    async def _channel(self) -> ChannelEnd:
        """A channel to the identity expected at the route. While none is, one call at a time
        makes the first contact: a call that waited for it expects whom it pinned (two first
        contacts at once could each pin whoever answered it, the later over the earlier)."""
        expect = await self.expected()
        if expect is not None:
            return await self._open(expect)
        async with self._first:
            expect = await self.expected()
            if expect is not None:
                return await self._open(expect)
            end = await self._open(None)
            peer = end.peer
            if peer is None:
                raise ChannelError(ChannelFailure.PEER_NOT_ALLOWED, "the peer is not known")
            await self.run(self.pins.pin, self.route, peer.identifier)
            self._pinned = peer.identifier
            return end

    async def _open(self, expect: Identifier | None) -> ChannelEnd:
        try:
            return await self.channel_to(self.route, expect=expect)
        except ChannelError as exc:
            if exc.reason is not ChannelFailure.PEER_NOT_ALLOWED or expect is None:
                raise
            source = "node.json traces_expect" if self.configured is not None else "pins.json"
            raise ChannelError(
                exc.reason,
                f"{self.what} at {self.text} is pinned to {expect} ({source}): {exc.detail}",
            ) from None


def pinned_traces(
    node: Node, channel_to: ChannelTo, router: Router, worker: StoreWorker
) -> PinnedService:
    """The trace service `node`'s node.json names (`traces`), pinned to `traces_expect`, else
    to the identity that answers there first (kept in `<node dir>/pins.json`)."""
    config = node.config
    expect = config.traces_expect
    return PinnedService(
        config.traces or "",
        what="the trace service",
        configured=None if expect is None else Identifier.parse(expect),
        pins=RoutePins(node.path / "pins.json"),
        channel_to=channel_to,
        router=router,
        run=worker.run,
    )
