"""No-route notice budgets (docs/protocols.md, "Unanswered channels"; troth.node.no_route).

A node's notices over one connection are spent per source as well as in all: each source a
burst of `NOTICE_BURST`, one more each `NOTICE_INTERVAL` s; the connection a burst of
`NOTICE_CONNECTION_BURST`, one more each `NOTICE_CONNECTION_INTERVAL` s (eight sources'
worth), over at most `MAX_NOTICE_SOURCES` sources a connection and `MAX_NOTICE_BUCKETS`
connections (troth.limits). A source is the address that spends it: the connection a dropped
packet came on at the node before (the one the node at the other end of the connection put
in its return route), or that connection itself for a packet from that node; for a notice
passed back, the connection it came from. One source could spend a connection's whole budget
before (review 51h, notices 1 and 2: a member a sender had called sent the hub notices for
the sender's connection, or a sender behind the hub sent a relay past it packets to a dead
address, and the other senders' calls to a member restarted waited their timeout): now it
spends at most its own share. What the node at the other end of the connection names as a
source, it names for what goes back to itself only (the packets and notices of the senders
behind it, which it could drop anyway).

A source a node names by its peer's host (a connection it accepted, `/worker/tcp<letters>-
h<tag>-...`: `troth.transport.connection.host_tag`, the key the channel limits past a relay
count too) is that host's, however many connections the host holds there (review 53h, notices
1; review 52c, notices 1: one host's sixteen connections to a relay, up to
`max_connections_per_source`, were
sixteen sources past it, held every kept source and the connection's whole total, and another
sender's calls to a dead member waited their timeout). What stays: a party holding many hosts
(eight IPv4 addresses or IPv6 /64s take a connection's total; sixteen hold its kept sources) is
many sources, as at every per-source limit of a relay; a node past a relay sees its tag alone,
not its network; and senders behind one address (a NAT) share one source: an office of them
calling one member restarted past a second relay at once gets its notices a burst, then one a
second, so past a dozen or so senders the last wait their 10 s timeout (each connection had its
own share before), as every per-source limit counts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from troth.limits import (
    MAX_NOTICE_BUCKETS,
    MAX_NOTICE_SOURCES,
    NOTICE_BURST,
    NOTICE_CONNECTION_BURST,
    NOTICE_CONNECTION_INTERVAL,
    NOTICE_INTERVAL,
)
from troth.routing import Address
from troth.transport.connection import host_tag

__all__ = ["NoticeBudgets"]


def _spender(source: Address) -> Address:
    """Who spends a source's share: the host a tagged connection address names (one host's
    connections at the node before are one source), else the source itself."""
    tag = host_tag(source)
    return source if tag is None else Address("worker", f"host-{tag}")


def _source_level(value: tuple[float, float], now: float) -> float:
    """A source's share at `now` (`value`: its level, and when)."""
    level, at = value
    return min(float(NOTICE_BURST), level + (now - at) / NOTICE_INTERVAL)


@dataclass(slots=True)
class _Connection:
    level: float
    at: float
    sources: dict[Address, tuple[float, float]] = field(default_factory=dict)
    """source -> (level, at)."""

    def total(self, now: float) -> float:
        """The connection's total at `now`."""
        level = self.level + (now - self.at) / NOTICE_CONNECTION_INTERVAL
        return min(float(NOTICE_CONNECTION_BURST), level)

    def full(self, now: float) -> bool:
        """Whether the connection's total and each of its sources' shares refilled:
        forgetting it loses nothing."""
        return self.total(now) >= NOTICE_CONNECTION_BURST and all(
            _source_level(value, now) >= NOTICE_BURST for value in self.sources.values()
        )


class NoticeBudgets:
    """The notice budgets of one kind (sent over each connection; taken from each to pass
    back), each connection's per source and in all."""

    def __init__(self) -> None:
        self._connections: dict[Address, _Connection] = {}

    def take(self, connection: Address, source: Address, now: float) -> bool:
        """Spend one notice of `connection`'s budget for `source` at loop time `now`: False
        when the source's share or the connection's total has none (then neither is spent),
        or when there is no room for a budget of either and none is refilled (deny when in
        doubt). Sources a node named by one host are one (`_spender`)."""
        source = _spender(source)
        entry = self._connections.get(connection)
        if entry is None:
            if len(self._connections) >= MAX_NOTICE_BUCKETS:
                full = next((k for k, v in self._connections.items() if v.full(now)), None)
                if full is None:
                    return False
                del self._connections[full]
            entry = self._connections[connection] = _Connection(float(NOTICE_CONNECTION_BURST), now)
        sources = entry.sources
        if source not in sources and len(sources) >= MAX_NOTICE_SOURCES:
            refilled = next(
                (k for k, v in sources.items() if _source_level(v, now) >= NOTICE_BURST), None
            )
            if refilled is None:
                return False
            del sources[refilled]
        mine = _source_level(sources.get(source, (float(NOTICE_BURST), now)), now)
        total = entry.total(now)
        if mine < 1 or total < 1:
            sources[source] = (mine, now)
            entry.level, entry.at = total, now
            return False
        sources[source] = (mine - 1, now)
        entry.level, entry.at = total - 1, now
        return True

    def forget(self, connection: Address) -> None:
        """`connection` closed: its budgets go."""
        self._connections.pop(connection, None)
