"""Sources held back from reading (sans-IO; docs/protocols.md, "TCP transport"): once the frames
a source address's accepted connections brought, waiting to be routed, pass its share of the
routing budget (`TcpSettings.routing_per_source`), every connection of that source stops
reading, the ones it opens meanwhile too, until its frames are back within its share.

Before review 55a (budget 1), only the connection whose read passed the share paused, and each
of the source's other connections still read once more before its own look found the share
passed: a source passed its share by one read (up to `large_read_buffer`, 512 KiB) per
connection it held, up to `max_connections_per_source` (64) of them, ~32 MiB past a 16 MiB
share. Now it passes it by one read in all (the read that found it passed)."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

__all__ = ["Holdable", "SourceHolds"]


class Holdable(Protocol):
    """A connection as the holds see it."""

    host: str

    def hold_reading(self) -> None:
        """Stop reading: its source passed its share."""
        ...

    def release_reading(self) -> None:
        """Its source is back within its share: read again, unless it waits for its own
        frames to be routed."""
        ...


H = TypeVar("H", bound=Holdable)


class SourceHolds(Generic[H]):
    """The accepted connections by source address, and the sources held back now."""

    def __init__(self) -> None:
        self._by_host: dict[str, set[H]] = {}
        self._held: set[str] = set()

    def add(self, connection: H) -> None:
        """An accepted connection: held at once when its source is."""
        self._by_host.setdefault(connection.host, set()).add(connection)
        if connection.host in self._held:
            connection.hold_reading()

    def remove(self, connection: H) -> None:
        """An accepted connection closed."""
        connections = self._by_host.get(connection.host)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._by_host[connection.host]

    def hold(self, host: str) -> None:
        """`host` passed its share: each of its connections stops reading."""
        if host in self._held:
            return
        self._held.add(host)
        for connection in self._by_host.get(host, ()):
            connection.hold_reading()

    def release(self, host: str) -> None:
        """`host` is back within its share: its connections read again."""
        if host not in self._held:
            return
        self._held.discard(host)
        for connection in list(self._by_host.get(host, ())):
            connection.release_reading()

    def held(self, host: str) -> bool:
        """Whether `host`'s connections are held back now."""
        return host in self._held
