"""What every transport connection shares (TCP, in-memory): its worker address, its allow-set
(a connection is the Source of what arrives on it), its origin for per-source limits, and how
an arriving frame body becomes a routed message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troth.routing import Address, AllowSet, Route, RoutedMessage, new_worker_address

__all__ = ["Connection", "Listener"]


@dataclass
class Listener:
    """What a listening socket's connections may reach by default."""

    addresses: frozenset[Address] = frozenset()
    kinds: frozenset[str] = frozenset()  # every address of these kinds (e.g. "relay")
    server: Any = None
    """The listening server (an asyncio.Server for TCP), closed with the transport."""


class Connection:
    """A connection as a router sees it: a worker address and a message Source."""

    def __init__(
        self,
        *,
        kind: str,
        outgoing: bool,
        listener: Listener | None,
        peer: str,
        max_reply_paths: int,
    ) -> None:
        self.kind = kind
        self.outgoing = outgoing
        self.peer = peer
        """The peer's host:port."""
        self.host = peer.rpartition(":")[0]
        """The peer's host (its IP address for an accepted connection)."""
        self.address = new_worker_address(kind)
        self.name = f"{kind} {peer} ({'out' if outgoing else 'in'})"
        self.allowed = AllowSet(
            listener.addresses if listener else frozenset(),
            listener.kinds if listener else frozenset(),
            max_reply_paths=max_reply_paths,
        )
        """What messages arriving on this connection may reach."""
        self.frames_sent = 0

    def set_peer(self, host: str, port: int) -> None:
        """The accepted peer's address, once known."""
        self.host = host
        self.peer = f"{host}:{port}"
        self.name = f"{self.kind} {self.peer} ({'out' if self.outgoing else 'in'})"

    # -- Source ----------------------------------------------------------------------------------

    def allows(self, address: Address) -> bool:
        """Whether a message from the peer may go to `address`."""
        return self.allowed.allows(address)

    def allow(self, address: Address) -> None:
        """Let later messages from the peer reach `address` (a reply path)."""
        self.allowed.allow(address)

    def forget(self, address: Address) -> None:
        """Undo `allow`."""
        self.allowed.forget(address)

    def origin(self, return_route: Route) -> str:
        """Who sent a message with this return route: the peer's host for an accepted
        connection; for one this node opened (to a relay), this connection and the relay's
        connection to the sender (which the relay itself put in the route)."""
        if not self.outgoing:
            return f"{self.kind} {self.host}"
        via = return_route[1] if len(return_route) > 1 else None
        return f"{self.address} via {via}" if via is not None else str(self.address)

    # -- frames ----------------------------------------------------------------------------------

    def arrived(self, body: bytes) -> RoutedMessage:
        """A frame body from the peer as a routed message, this connection at the front of its
        return route (TrothError when it is malformed: the caller drops it)."""
        return RoutedMessage.decode(body).stepped_in(self.address)
