"""The bytes of frames read from TCP connections that wait to be routed, counted for the node
and per source address (sans-IO; docs/protocols.md, "TCP transport"): past either bound the
connection that brought a frame stops reading until its own frames are routed (review 53n,
queues 1: before, only each connection's count of frames was bounded, 64 of up to 128 KiB, so
a source's connections held ~512 MiB at the per-source connection cap)."""

from __future__ import annotations

from collections.abc import Iterable

from troth.transport.settings import QUEUED_FRAME_COST

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
    """Bytes waiting to be routed, in all (at most `total`, past which connections pause) and
    per source address (at most `per_source`)."""

    def __init__(self, total: int, per_source: int) -> None:
        self.total = total
        self.per_source = per_source
        self.held = 0
        """Bytes waiting now, all connections together."""
        self._by_source: dict[str, int] = {}

    def held_by(self, host: str) -> int:
        """Bytes waiting now from the connections of source address `host` together."""
        return self._by_source.get(host, 0)

    def charge(self, host: str, size: int) -> None:
        """`size` more bytes (negative: fewer) waiting from `host`."""
        self.held += size
        held = self._by_source.get(host, 0) + size
        if held:
            self._by_source[host] = held
        else:
            self._by_source.pop(host, None)

    def over(self, host: str) -> bool:
        """True past the node's bound or `host`'s share: a connection from `host` holding
        frames pauses reading (back-pressure) until its own are routed."""
        return self.held > self.total or self.held_by(host) > self.per_source
