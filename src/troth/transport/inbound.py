"""The bytes of frames read from TCP connections that wait to be routed, counted for the node
and per source address (sans-IO; docs/protocols.md, "TCP transport"): past either bound the
connection that brought a frame stops reading until its own frames are routed (review 53n,
queues 1: before, only each connection's count of frames was bounded, 64 of up to 128 KiB, so
a source's connections held ~512 MiB at the per-source connection cap). The node's own
outgoing connections are counted apart, under a reserved share (review 53o, queues 1)."""

from __future__ import annotations

from collections.abc import Iterable

from troth.transport.settings import QUEUED_FRAME_COST, TcpSettings

__all__ = ["RoutingBudget", "routing_cost"]


def routing_cost(frames: Iterable[bytes]) -> int:
    """What `frames` cost waiting to be routed: their bytes, and `QUEUED_FRAME_COST` each (their
    bytes objects and deque slots, as for the write queues)."""
    count = size = 0
    for body in frames:
        count += 1
        size += len(body)
    return size + count * QUEUED_FRAME_COST


class RoutingBudget:
    """Bytes waiting to be routed from the connections the node accepted, in all (at most
    `total`, past which they pause) and per source address (at most `per_source`); and apart,
    from the node's own outgoing connections (its hub, its configured peers: at most `own`, not
    counted in `total`, so strangers holding the total over it do not pause the node's uplink;
    review 53o, queues 1)."""

    def __init__(self, total: int, per_source: int, own: int) -> None:
        self.total = total
        self.per_source = per_source
        self.own = own
        self.held = 0
        """Bytes waiting now, all accepted connections together."""
        self.held_own = 0
        """Bytes waiting now, the node's own outgoing connections together."""
        self._by_source: dict[str, int] = {}

    @classmethod
    def of(cls, settings: TcpSettings) -> RoutingBudget:
        """The budget `settings` define (`max_routing_total`, `routing_per_source`,
        `routing_outgoing`)."""
        return cls(
            settings.max_routing_total, settings.routing_per_source, settings.routing_outgoing
        )

    def held_by(self, host: str) -> int:
        """Bytes waiting now from the accepted connections of source address `host` together."""
        return self._by_source.get(host, 0)

    def charge(self, host: str, size: int, outgoing: bool = False) -> None:
        """`size` more bytes (negative: fewer) waiting from `host` (`outgoing`: from one of the
        node's own connections, counted apart)."""
        if outgoing:
            self.held_own += size
            return
        self.held += size
        held = self._by_source.get(host, 0) + size
        if held:
            self._by_source[host] = held
        else:
            self._by_source.pop(host, None)

    def source_over(self, host: str) -> bool:
        """True past `host`'s share (its accepted connections are then held back from reading
        until it is back within it: troth.transport.holds; review 55a, budget 1)."""
        return self.held_by(host) > self.per_source

    def over(self, host: str, outgoing: bool = False) -> bool:
        """True past the node's bound or `host`'s share (`outgoing`: past the own connections'
        share): a connection from `host` holding frames pauses reading (back-pressure) until its
        own are routed."""
        if outgoing:
            return self.held_own > self.own
        return self.held > self.total or self._by_source.get(host, 0) > self.per_source
