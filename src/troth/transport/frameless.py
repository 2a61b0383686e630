"""The accepted TCP connections that brought no frame yet (at a node: made no progress yet),
by source address, and the one to give way for a newcomer found without a scan (sans-IO;
docs/protocols.md, "TCP transport"; review 60i, listener 2: each newcomer at a cap held by
frameless connections looked at every one of them twice, ~0.2 ms at 1,024).

The transport adds each connection as it is accepted and takes it out as it closes or first
makes progress (the connection says so: `TcpTransport.proved`), so none is looked at again;
the addresses are ranked by how many they hold (`troth.ranked.Ranked`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from troth.ranked import Ranked

__all__ = ["Frameless"]

C = TypeVar("C")  # (hashable: a connection)


class Frameless(Generic[C]):
    """Connections by source address, oldest first, and the address holding the most."""

    __slots__ = ("_next", "_placed", "ranked")

    def __init__(self) -> None:
        self._placed: dict[C, tuple[int, str]] = {}  # oldest first: (order, source address)
        self._next = 0
        self.ranked: Ranked[str, C] = Ranked(lambda connection: self._placed[connection][0])
        """The connections by source address."""

    def __len__(self) -> int:
        return len(self._placed)

    def __contains__(self, connection: object) -> bool:
        return connection in self._placed

    def __iter__(self) -> Iterator[C]:
        """The connections, oldest first."""
        return iter(self._placed)

    def add(self, connection: C, host: str) -> None:
        """`connection` (the newest), from source address `host`, brought no frame yet."""
        self._placed[connection] = (self._next, host)
        self._next += 1
        self.ranked.add(host, connection)

    def discard(self, connection: C) -> None:
        """`connection` closed or made progress (nothing when it is not here)."""
        placed = self._placed.get(connection)
        if placed is not None:
            self.ranked.remove(placed[1], connection)
            del self._placed[connection]

    def victim(self) -> C:
        """The oldest connection of the source address holding the most (of those holding as
        many, the one whose oldest is the oldest); there must be one."""
        return next(iter(self.ranked.groups[self.ranked.most(None)]))
