"""Review 60f: attacks on the listener under hostile load that did NOT work (each test fails if
the defence it exercises breaks). Sans-IO where the attack allows: the connection table's
choice of who gives way (`troth.transport.eviction`) with stand-in connections, the handshake
budgets (`troth.node.opening_rates`) on a frozen event-loop clock."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field

import pytest

from tests.test_review60f_listener import count_pruned
from troth import limits
from troth.node.opening_rates import OpeningRates
from troth.transport.eviction import Refusals, eviction_candidate
from troth.transport.liveness import Liveness

IDLE_AFTER = 60.0


@dataclass(eq=False)
class _Held:
    """A stand-in accepted connection: its address, network, progress and clocks."""

    host: str
    network: str
    progress: int = 1
    frames_read: int = 1
    liveness: Liveness = field(default_factory=Liveness)


def _table(hosts: list[tuple[str, str]], at: float = 0.0) -> list[_Held]:
    held = [_Held(host, network) for host, network in hosts]
    for connection in held:
        connection.liveness.opened(at)
    return held


def _weigh(
    table: list[_Held], newcomer: _Held, refusals: Refusals, now: float
) -> _Held | str | None:
    """What the transport's `_admit` does at the cap: "known" when the remembered refusal
    answers, else the scan's choice."""
    newcomer.liveness.opened(now)
    per_host = collections.Counter(c.host for c in table)
    per_network = collections.Counter(c.network for c in table)
    counts = (per_host.get(newcomer.host, 0), per_network.get(newcomer.network, 0))
    if refusals.known(counts, now):
        return "known"
    return eviction_candidate(
        table,
        newcomer,
        per_host,
        per_network,
        strict=True,
        evict_idle_after=IDLE_AFTER,
        refusals=refusals,
    )


def test_a_remembered_refusal_does_not_refuse_a_newcomer_of_a_smaller_network() -> None:
    """An attacker holding 30 places from one /24 primes the remembered refusal with a newcomer
    of its own /24 (refused: nothing to give way for it); a newcomer from another network then
    still has one of the attacker's give way (the network fair share), not the remembered
    refusal."""
    table = _table([(f"10.0.0.{n}", "10.0.0.0/24") for n in range(30)])
    table += _table([("10.9.9.1", "10.9.9.0/24"), ("10.9.9.2", "10.9.9.0/24")])
    refusals = Refusals()
    assert _weigh(table, _Held("10.0.0.200", "10.0.0.0/24"), refusals, 1.0) is None
    assert _weigh(table, _Held("10.0.0.201", "10.0.0.0/24"), refusals, 1.0) == "known"
    victim = _weigh(table, _Held("192.0.2.1", "192.0.2.0/24"), refusals, 1.0)
    assert isinstance(victim, _Held)
    assert victim.network == "10.0.0.0/24"


def test_a_remembered_refusal_ends_when_the_idlest_could_give_way() -> None:
    """Refusals remembered at the cap stop as soon as the idlest connection has been idle
    `evict_idle_after`: a newcomer then has it give way (the sweep need not run first)."""
    table = _table([(f"10.0.{n}.1", f"10.0.{n}.0/24") for n in range(8)], at=5.0)
    table[3].liveness.last_active = 1.0  # the idlest
    refusals = Refusals()
    newcomer = _Held("10.0.0.9", "10.0.0.0/24")
    assert _weigh(table, newcomer, refusals, 30.0) is None
    assert _weigh(table, newcomer, refusals, 1.0 + IDLE_AFTER - 1) == "known"
    assert _weigh(table, newcomer, refusals, 1.0 + IDLE_AFTER) is table[3]


def test_a_remembered_refusal_is_forgotten_when_a_connection_goes_frameless_again() -> None:
    """What the table's change does: a connection that came (frameless) after a refusal was
    remembered is the newcomer's victim once `forget` is called, as `_admit` and `_forget` do."""
    table = _table([(f"10.0.{n}.1", f"10.0.{n}.0/24") for n in range(4)])
    refusals = Refusals()
    newcomer = _Held("10.0.9.1", "10.0.9.0/24")
    assert _weigh(table, newcomer, refusals, 1.0) is None
    table[0] = _Held("10.0.0.1", "10.0.0.0/24", progress=0, frames_read=0)
    refusals.forget()
    assert _weigh(table, newcomer, refusals, 1.0) is table[0]


def test_one_networks_sources_past_the_source_table_cost_no_scan_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The attempt behind listener 2, from one IPv6 /48 (65,536 /64 sources): 4,096 + 2,000
    messages 1 from as many of its sources within one second. Past the network's burst each is
    refused, its source's share given back whole, so the sources' table makes room by
    forgetting them in bulk: the buckets looked at stay within a few scans of the tables, and
    no other network's budget is touched."""
    looked = count_pruned(monkeypatch)

    async def main() -> list[bool]:
        monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: 1000.0)
        rates = OpeningRates(rate=limits.HANDSHAKE_RATE, burst=limits.HANDSHAKE_BURST)
        taken = [rates.take(f"tcp 2001:db8:0:{n:x}::/64", "tcp 2001:db8::/48") for n in range(6096)]
        taken.append(rates.take("tcp 192.0.2.1", "tcp 192.0.2.0/24"))
        return taken

    taken = asyncio.run(main())
    assert sum(taken[:-1]) == limits.HANDSHAKE_BURST
    assert taken[-1]
    tables = limits.MAX_HANDSHAKE_NETWORKS + limits.MAX_HANDSHAKE_SOURCES
    assert looked[0] <= 2 * tables, f"{looked[0]} buckets looked at"
