"""The accepted TCP connections that brought no frame yet (at a node: made no progress yet),
by network and source address, and the one to give way for a newcomer found without a scan
(sans-IO; docs/protocols.md, "TCP transport"; review 60i, listener 2: each newcomer at a cap
held by frameless connections looked at every one of them twice, ~0.2 ms at 1,024).

The transport adds each connection as it is accepted and takes it out as it closes or first
makes progress (the connection says so: `TcpTransport.proved`), so none is looked at again;
the networks are ranked by how many they hold, and the addresses of each network
(`troth.ranked.Ranked`)."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from troth.ranked import Ranked

__all__ = ["Frameless"]


class _Networked(Protocol):
    @property
    def network(self) -> str: ...


C = TypeVar("C", bound=_Networked)  # (hashable: a connection)


class Frameless(Generic[C]):
    """Connections by network and source address, oldest first, and the network holding the
    most and its address holding the most (review 62f, listener 1: by address alone, one
    network's addresses, one connection each, had a newcomer from another network give way
    once it was the oldest)."""

    __slots__ = ("_ages", "_at", "_hosts", "_next", "_placed", "ranked")

    def __init__(self) -> None:
        self._placed: dict[C, tuple[int, str, str]] = {}  # oldest first: (order, address,
        # network)
        self._next = 0
        self.ranked: Ranked[str, C] = Ranked(self._order)
        """The connections by network."""
        self._hosts: dict[str, Ranked[str, C]] = {}  # each network's, by source address
        self._at: dict[int, C] = {}  # by order
        self._ages: collections.deque[int] = collections.deque()  # the orders, oldest first,
        # those left stale by `discard` skipped when met, rebuilt when they outnumber the live
        # (orders only: a connection gone is not kept alive)

    def _order(self, connection: C) -> int:
        return self._placed[connection][0]

    def __len__(self) -> int:
        return len(self._placed)

    def __contains__(self, connection: object) -> bool:
        return connection in self._placed

    def __iter__(self) -> Iterator[C]:
        """The connections, oldest first."""
        return iter(self._placed)

    def add(self, connection: C, host: str) -> None:
        """`connection` (the newest), from source address `host` (of its `network`), brought
        no frame yet."""
        self.discard(connection)  # (once)
        network = connection.network
        self._placed[connection] = (self._next, host, network)
        self._at[self._next] = connection
        self._ages.append(self._next)
        self._next += 1
        self.ranked.add(network, connection)
        hosts = self._hosts.get(network)
        if hosts is None:
            hosts = self._hosts[network] = Ranked(self._order)
        hosts.add(host, connection)

    def discard(self, connection: C) -> None:
        """`connection` closed or made progress (nothing when it is not here)."""
        placed = self._placed.get(connection)
        if placed is not None:
            order, host, network = placed
            del self._at[order]
            self.ranked.remove(network, connection)
            hosts = self._hosts[network]
            hosts.remove(host, connection)
            if not len(hosts):
                del self._hosts[network]
            del self._placed[connection]
            if len(self._ages) > 2 * len(self._placed) + 16:
                self._ages = collections.deque(self._at)

    def oldest(self) -> C | None:
        """The connection added first of those here (review 66w, transport 1)."""
        ages, at = self._ages, self._at
        while ages:
            connection = at.get(ages[0])
            if connection is not None:
                return connection
            ages.popleft()
        return None

    def entries(self) -> int:
        """The entries kept for `oldest`, stale ones included (bounded: tests)."""
        return len(self._ages)

    def holds(self, network: str) -> bool:
        """Whether a connection of `network` is here."""
        return network in self._hosts

    def victim(self, network: str | None = None) -> C | None:
        """Of the network holding the most (of those holding as many, the one whose oldest is
        the oldest; `network`, if given: that one, None when it holds none), the oldest
        connection of its source address holding the most (the same between its addresses);
        there must be one."""
        hosts = self._hosts.get(self.ranked.most(None) if network is None else network)
        return None if hosts is None else next(iter(hosts.groups[hosts.most(None)]))
