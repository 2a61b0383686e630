"""Review 67c: attacks on the TCP connection table's admission and eviction (the shield of
review 66v, transport 1, and the frameless index of review 66w) that did NOT work; each test
would fail if the defence it names broke.

- The index (and the shield's spends of review 67c, transport 1) against a full scan of the
  table under random arrivals from IPv4 /24s and IPv6 /48s (several /64s each, several
  addresses of each /64), first progress (the transport hears of each at once:
  `TcpTransport.proved`), closes, the sweep, idling past `evict_idle_after`, and the
  per-source cap: the index holds the table's frameless connections after every step, finds
  the victim a scan finds, and a remembered refusal answers only where a fresh scan finds no
  victim.
- Per-newcomer cost: a junk flood from one address, and from one IPv6 /48's /64s, churning a
  full table's frameless connections, is weighed without a look at the table.
- IPv6 accounting: the addresses of one /64 are one source, the /64s of one /48 one network,
  so a /48's fresh /64s cannot evict a lone client of another network mid-handshake.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_review60f_refuted import _Held
from troth.transport.connection import source_host, source_network
from troth.transport.eviction import Refusals, ShieldSpends, eviction_candidate
from troth.transport.frameless import Frameless

CAP, PER_SOURCE, IDLE, SHIELD = 8, 3, 60.0, 10.0


def _peer(family: int, network: int, address: int, salt: int) -> _Held:
    """A newcomer from network `network` of `family` (0: IPv4 /24s, 1: IPv6 /48s, whose /64s
    `address` names, `salt` an interface identifier within it), without progress."""
    if family:
        raw = f"2001:db8:{network:x}:{address:x}::{salt + 1:x}"
    else:
        raw = f"198.51.{network}.{address + 1}"
    host = source_host(raw)
    return _Held(host, source_network(host), progress=0, frames_read=0)


_OP = st.tuples(
    st.sampled_from(["arrive", "arrive", "arrive", "seen", "close", "sweep"]),
    st.integers(0, 1),  # family
    st.integers(0, 2),  # network
    st.integers(0, 2),  # address (an IPv6 /64)
    st.integers(0, 3),  # an address of that /64
    st.sampled_from([0.0, 0.5, 4.0, 11.0, 61.0]),  # time passing
    st.integers(0, 7),  # which accepted connection
)


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_OP, min_size=10, max_size=40))
def test_the_index_answers_as_a_scan_on_every_path(
    ops: list[tuple[str, int, int, int, int, float, int]],
) -> None:
    """The transport's `_admit`, `proved`, `_forget` and `_sweep` as they update the table, the
    index, the spends and the remembered refusal (which answers for a spent network's
    newcomers whatever their network holds, and for the others by the floor)."""
    table: list[_Held] = []
    index: Frameless[_Held] = Frameless()
    refusals = Refusals()
    spends = ShieldSpends(SHIELD, kept=3)
    now = 0.0

    def weigh(newcomer: _Held, **kwargs: Any) -> _Held | None:
        return eviction_candidate(
            table, newcomer, collections.Counter(c.host for c in table),
            collections.Counter(c.network for c in table), strict=True,
            evict_idle_after=IDLE, shielded_for=SHIELD, spent=spent, **kwargs,
        )  # fmt: skip

    for op, family, network, address, salt, passing, which in ops:
        now += passing
        if op == "arrive":
            newcomer = _peer(family, network, address, salt)
            newcomer.liveness.opened(now)
            mine = sum(c.host == newcomer.host for c in table)
            if mine >= PER_SOURCE:
                continue
            if len(table) >= CAP:
                theirs = sum(c.network == newcomer.network for c in table)
                spent = spends.spent(newcomer.network, now)
                scanned = weigh(newcomer)
                if refusals.known((mine, theirs), now, spent and not index.holds(newcomer.network)):
                    assert scanned is None
                    continue
                victim = weigh(newcomer, refusals=refusals, unproven=index)
                assert victim is scanned
                if victim is None:
                    continue
                fresh = now - victim.liveness.opened_at < SHIELD
                if victim.network != newcomer.network and not victim.progress and fresh:
                    spends.spend(newcomer.network, now)
                table.remove(victim)
                index.discard(victim)
            table.append(newcomer)
            index.add(newcomer, newcomer.host)
            refusals.forget()
        elif op == "sweep":
            refusals.forget()
            for connection in table:
                if connection.progress:
                    connection.liveness.last_active = now
        elif table:
            connection = table[which % len(table)]
            if op == "close":
                table.remove(connection)
                index.discard(connection)
                refusals.forget()
            elif not connection.progress:
                connection.progress = connection.frames_read = 1
                connection.liveness.last_active = now
                index.discard(connection)
                refusals.forget()
        assert set(index) <= set(table)
        assert [c for c in index if not c.progress] == [c for c in table if not c.progress]
        assert index.entries() <= 2 * len(index) + 17


class _Unscanned(list[_Held]):
    """A table that counts its scans."""

    scans = 0

    def __iter__(self) -> Iterator[_Held]:
        _Unscanned.scans += 1
        return super().__iter__()


def _admit_all(table: _Unscanned, index: Frameless[_Held], newcomers: list[_Held]) -> int:
    """Each newcomer weighed at the cap (the table full), the victim replaced: the scans."""
    _Unscanned.scans = 0
    for newcomer in newcomers:
        held = list(list.__iter__(table))
        victim = eviction_candidate(
            table, newcomer, collections.Counter(c.host for c in held),
            collections.Counter(c.network for c in held), strict=True, evict_idle_after=IDLE,
            refusals=Refusals(), unproven=index, shielded_for=SHIELD,
        )  # fmt: skip
        assert victim is not None
        list.remove(table, victim)
        index.discard(victim)
        table.append(newcomer)
        index.add(newcomer, newcomer.host)
    return _Unscanned.scans


def test_a_junk_flood_from_one_address_or_one_48_is_weighed_without_a_scan() -> None:
    """A full table (64) of active connections from 8 networks and 8 frameless junk ones; 500
    junk newcomers from one IPv4 address, then 500 from fresh /64s of one IPv6 /48, 1 ms apart
    (each shielded when the next comes): each evicts its own kind, found through the index."""
    table = _Unscanned()
    index: Frameless[_Held] = Frameless()
    for n in range(56):
        member = _Held(f"192.0.{n % 8}.{n}", f"192.0.{n % 8}.0/24")
        member.liveness.opened(0.0)
        table.append(member)
    for n in range(8):
        junk = _peer(0, 7, 200, n)
        junk.liveness.opened(0.0)
        table.append(junk)
        index.add(junk, junk.host)
    now, flood = 100.0, []
    for _ in range(500):
        now += 0.001
        newcomer = _Held("203.0.113.9", "203.0.113.0/24", progress=0, frames_read=0)
        newcomer.liveness.opened(now)
        flood.append(newcomer)
    for n in range(500):
        now += 0.001
        newcomer = _peer(1, 5, n, 0)
        newcomer.liveness.opened(now)
        flood.append(newcomer)
    assert _admit_all(table, index, flood) == 0
    assert len(index) == 8
    assert index.entries() <= 2 * 8 + 17


def test_a_48s_fresh_64s_do_not_evict_a_lone_client_mid_handshake() -> None:
    """A /48's /64s, one connection each, hold 7 of a cap of 8 (frameless, shielded); a lone
    client of another network is mid-handshake. Each next /64 of that /48 (its network holding
    7, as many as its /64s) evicts the /48's own oldest, never the client."""
    table: list[_Held] = []
    index: Frameless[_Held] = Frameless()
    for n in range(7):
        junk = _peer(1, 9, n, 0)
        junk.liveness.opened(float(n))
        table.append(junk)
        index.add(junk, junk.host)
    client = _peer(0, 1, 1, 0)
    client.liveness.opened(7.0)
    table.append(client)
    index.add(client, client.host)
    assert len({c.host for c in table}) == 8
    assert len({c.network for c in table}) == 2
    for n in range(7, 40):
        newcomer = _peer(1, 9, n, 3)
        newcomer.liveness.opened(7.0 + n / 100)
        for unproven in (None, index):
            victim = eviction_candidate(
                table, newcomer, collections.Counter(c.host for c in table),
                collections.Counter(c.network for c in table), strict=True,
                evict_idle_after=IDLE, unproven=unproven, shielded_for=SHIELD,
            )  # fmt: skip
            assert victim is not None
            assert victim is not client
            assert victim.network == newcomer.network
            evicted = victim
        table.remove(evicted)
        index.discard(evicted)
        table.append(newcomer)
        index.add(newcomer, newcomer.host)
