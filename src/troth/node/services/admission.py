"""How many requests a node runs at once (docs/protocols.md, "Concurrent requests"): sans-IO
counts of the requests running per member, per connection and in all, and the refusal of one
more past a limit ("busy", answered at once: no request waits in a queue).

A request counts against every member at the root of the caller's chains (`member_accounts`:
a member's delegates share its share), against the connection its channel runs over (for a
channel relayed to the node, the sender behind the relay, `ChannelEnd.request_lane`: review
41b, relayed requests 1) and against the node: past
the node's limit, a request still runs while one of the authorities at the roots of its
caller's chains holds fewer than its share (troth.node.shares), so one authority's members
cannot leave another's busy. Counts that reach zero are forgotten, so what this holds is
bounded by the requests running.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from troth import limits
from troth.node.shares import STRANGERS, Shares

__all__ = ["Admission", "Lane", "RequestLimits"]


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The limits on requests running at once (troth.limits' by default)."""

    per_peer: int = limits.MAX_REQUESTS_PER_PEER
    per_connection: int = limits.MAX_REQUESTS_PER_CONNECTION
    total: int = limits.MAX_REQUESTS_RUNNING


@dataclass(frozen=True, slots=True)
class Lane:
    """Whom a request counts against: its caller's members, its connection, and the
    authorities at the roots of its caller's chains (`troth.node.shares.authorities_of`)."""

    members: frozenset[Hashable]
    connection: object
    """The connection's address, or the source itself when it names none."""
    authorities: frozenset[Hashable] = frozenset({STRANGERS})


class Admission:
    """The requests running now, counted by lane (module docstring); `trusted` is the number
    of authorities the node trusts now (its shares)."""

    def __init__(
        self, limits: RequestLimits | None = None, trusted: Callable[[], int] = lambda: 1
    ) -> None:
        self.limits = limits or RequestLimits()
        self._shares = Shares(trusted)
        self._members: dict[Hashable, int] = {}
        self._connections: dict[object, int] = {}

    def refusal(self, lane: Lane) -> str | None:
        """Why one more request in `lane` would be refused (None: it may run)."""
        bounds = self.limits
        if not self._shares.room(lane.authorities, bounds.total):
            running = f"{self.running} requests are running on this node"
            return f"{running} (its share of them for each of the caller's authorities)"
        if self._connections.get(lane.connection, 0) >= bounds.per_connection:
            return f"{bounds.per_connection} requests over this connection are running"
        if any(self._members.get(member, 0) >= bounds.per_peer for member in lane.members):
            return f"{bounds.per_peer} requests of this member are running"
        return None

    def take(self, lane: Lane) -> None:
        """A request in `lane` starts (the caller checked `refusal` first)."""
        self._shares.take(lane.authorities)
        self._connections[lane.connection] = self._connections.get(lane.connection, 0) + 1
        for member in lane.members:
            self._members[member] = self._members.get(member, 0) + 1

    def release(self, lane: Lane) -> None:
        """A request in `lane` ended (answered, failed or cancelled)."""
        self._shares.release(lane.authorities)
        _drop(self._connections, lane.connection)
        for member in lane.members:
            _drop(self._members, member)

    @property
    def running(self) -> int:
        """Requests running now, in all."""
        return self._shares.places

    def held(self) -> tuple[int, int]:
        """(members, connections) with requests running: what the counts keep."""
        return len(self._members), len(self._connections)


def _drop(counts: dict[Any, int], key: object) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]
