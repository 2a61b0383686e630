"""The relay service (`/service/relay`): a member without a listening port asks a node to
forward `/relay/<name>` to it over its own connection (docs/protocols.md, "Relays").

`create(name)` needs a credential whose `troth.relay` attribute holds `name` or `*` (the
access rule, decided before the handler runs). A name belongs to the identity that created it:
when its owner's channel closes, the name stays reserved for that owner for a grace period
(`RELAY_GRACE`, 5 minutes by default), so that another holder of `troth.relay=*` cannot take
it over while the owner reconnects; messages to a relay whose owner is gone are not routed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from troth.encoding import cbor
from troth.errors import DecodeError, Denied, RemoteError, RoutingError
from troth.identity import Identifier
from troth.node.access import AttributeCoversArgument, PeerCaller
from troth.node.channels import ChannelEnd, ChannelManager
from troth.node.services.base import Method, RequestContext
from troth.routing import Address, RoutedMessage, Router, Source

__all__ = ["RELAY_ATTRIBUTE", "RELAY_GRACE", "Relay", "RelayService"]

RELAY_ATTRIBUTE: Final = "troth.relay"
RELAY_GRACE: Final = 300
"""Seconds a relay name stays reserved for its owner after the owner's channel closed."""


@dataclass(slots=True)
class Relay:
    """One relay name: its owner, the connection messages are forwarded to, the owner's
    channel, and when that channel was lost (None while it is open)."""

    owner: Identifier
    connection: Address
    channel: str
    lost_at: int | None = None


class RelayService:
    """Forwards `/relay/<name>` to the connection of the member that created it."""

    name = "relay"
    oneway: Method | None = None

    def __init__(
        self,
        router: Router,
        channels: ChannelManager,
        *,
        me: str,
        clock: Callable[[], int],
        grace: int = RELAY_GRACE,
    ) -> None:
        self.router = router
        self.channels = channels
        self.me = me
        self.clock = clock
        self.grace = grace
        self.relays: dict[str, Relay] = {}
        self.methods: Mapping[str, Method] = {
            "create": Method(self.create, AttributeCoversArgument(RELAY_ATTRIBUTE))
        }
        channels.closed_hooks.append(self._channel_closed)

    async def create(self, arguments: Any, context: RequestContext) -> str:
        """Forward `/relay/<name>` to the caller's connection; its route."""
        caller = context.caller
        if not isinstance(caller, PeerCaller):
            raise RemoteError("relays are created over secure channels")
        try:
            name = cbor.expect_text(arguments, "relay name")
        except DecodeError as exc:
            raise RemoteError(str(exc)) from None
        end = self.channels.find(caller.channel)
        if end is None or not end.peer_route:
            raise RoutingError("the caller's channel is gone")
        address = Address("relay", name)
        existing = self.relays.get(name)
        if existing is not None and existing.owner != caller.identifier and self._held(existing):
            raise Denied(
                (
                    f"{self.me} refused {caller}: relay {name!r} belongs to another identity "
                    f"({existing.owner}), reserved for it {self._until(existing)}",
                )
            )
        self.relays[name] = Relay(caller.identifier, end.peer_route[0], caller.channel)
        self.router.unregister(address)
        self.router.register(address, self._forwarder(name))
        return f"/relay/{name}"

    def _held(self, relay: Relay) -> bool:
        return relay.lost_at is None or self.clock() < relay.lost_at + self.grace

    def _until(self, relay: Relay) -> str:
        if relay.lost_at is None:
            return "while its channel is open"
        return f"until {relay.lost_at + self.grace} (its channel closed at {relay.lost_at})"

    def _forwarder(self, name: str) -> Callable[[RoutedMessage, Source | None], Any]:
        async def forward(message: RoutedMessage, _source: Source | None) -> None:
            relay = self.relays.get(name)
            if relay is None or relay.lost_at is not None:
                raise RoutingError(f"relay {name!r} is gone (its owner's channel closed)")
            onward = (relay.connection, *message.onward)
            await self.router.route(RoutedMessage(onward, message.return_route, message.payload))

        return forward

    def _channel_closed(self, end: ChannelEnd) -> None:
        for relay in self.relays.values():
            if relay.channel == end.id and relay.lost_at is None:
                relay.lost_at = self.clock()

    async def maintain(self, now: int) -> None:
        """Free the names whose owner did not come back within the grace period."""
        for name, relay in list(self.relays.items()):
            if relay.lost_at is not None and now >= relay.lost_at + self.grace:
                del self.relays[name]
                self.router.unregister(Address("relay", name))

    def status(self) -> dict[str, Any]:
        """Each relay name: its owner, and whether it forwards or is held for its owner."""
        return {
            name: {
                "owner": str(relay.owner),
                "state": "up" if relay.lost_at is None else "held " + self._until(relay),
            }
            for name, relay in sorted(self.relays.items())
        }
