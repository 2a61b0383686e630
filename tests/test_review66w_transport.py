"""Review 66w, transport: the shield of review 66v, transport 1 (issue #8).

Transport 1 ("the index spared junk past its shield"): at a node's connection cap, when the
frameless connection the transport's index ranks first (of the network holding the most of
them) was shielded for the newcomer (opened less than `first_frame_timeout` ago, its network
holding fewer than the newcomer's), the index gave way with the newcomer's own network's
frameless connection, without a look at the others: a NAT's client mid-handshake was evicted by
its neighbour's newcomer while an attacker's junk connection, past its shield (a junk frame is
no progress at a node, so it stays frameless until idle for 600 s), was kept; a scan of the
table evicted the junk. Both now give way, when the first is shielded, with the oldest
frameless connection if it is past its shield, then the newcomer's own network's, then a scan
(the index and the scan answer alike).
"""

from __future__ import annotations

import collections
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_review60f_refuted import _Held
from troth.transport.eviction import Refusals, eviction_candidate
from troth.transport.frameless import Frameless


def _nat_and_junk() -> tuple[list[_Held], _Held, _Held, _Held]:
    """A cap of 8: a NAT (198.51.100.7) holding 4 active connections and one client mid-handshake
    (opened at 19 s); an attacker's junk from 192.0.2.2 opened at 0 s (junk frames only) and two
    fresh ones from 192.0.2.1 (15 s, 16 s). The newcomer: the NAT's, at 20 s."""
    old_junk = _Held("192.0.2.2", "192.0.2.0/24", progress=0)
    old_junk.liveness.opened(0.0)
    fresh = [_Held("192.0.2.1", "192.0.2.0/24", progress=0) for _ in range(2)]
    fresh[0].liveness.opened(15.0)
    fresh[1].liveness.opened(16.0)
    nat = [_Held("198.51.100.7", "198.51.100.0/24") for _ in range(4)]
    for connection in nat:
        connection.liveness.opened(1.0)
        connection.liveness.last_active = 19.5
    client = _Held("198.51.100.7", "198.51.100.0/24", progress=0)
    client.liveness.opened(19.0)
    newcomer = _Held("198.51.100.7", "198.51.100.0/24", progress=0)
    newcomer.liveness.opened(20.0)
    return [old_junk, *nat, *fresh, client], old_junk, client, newcomer


def test_junk_past_its_shield_gives_way_before_a_clients_connection_mid_handshake() -> None:
    table, old_junk, client, newcomer = _nat_and_junk()
    index: Frameless[_Held] = Frameless()
    for connection in table:
        if not connection.progress:
            index.add(connection, connection.host)
    per_host = collections.Counter(c.host for c in table)
    per_network = collections.Counter(c.network for c in table)
    for unproven in (None, index):
        victim = eviction_candidate(
            table, newcomer, per_host, per_network, strict=True, evict_idle_after=60.0,
            unproven=unproven, shielded_for=10.0,
        )  # fmt: skip
        assert victim is old_junk, "the index" if unproven else "the scan"
    assert client in index


_OP = st.tuples(
    st.sampled_from(["arrive", "arrive", "arrive", "progress", "close"]),
    st.integers(0, 3),  # network
    st.integers(0, 2),  # address in it
    st.sampled_from([0.0, 0.5, 3.0, 11.0]),  # time passing
    st.integers(0, 7),  # which accepted connection
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_OP, min_size=8, max_size=30))
def test_the_index_answers_as_a_scan_and_stays_the_tables_frameless(
    ops: list[tuple[str, int, int, float, int]],
) -> None:
    """A cap of 8 under random arrivals (4 networks of 3 addresses), first progress and
    closes: the index of frameless connections holds exactly the table's connections without
    progress after every step; at the cap the victim found through it is the one a scan of the
    table finds (the first found through the index failed here: transport 1); and a remembered
    refusal answers only where a fresh scan finds no victim either (refusals forgotten where
    the transport forgets them: a connection comes, goes or first makes progress)."""
    table: list[_Held] = []
    index: Frameless[_Held] = Frameless()
    refusals = Refusals()
    now = 0.0

    def weigh(newcomer: _Held, **kwargs: Any) -> _Held | None:
        per_host = collections.Counter(c.host for c in table)
        per_network = collections.Counter(c.network for c in table)
        return eviction_candidate(
            table, newcomer, per_host, per_network, strict=True, evict_idle_after=60.0,
            shielded_for=10.0, **kwargs,
        )  # fmt: skip

    for op, network, address, passing, which in ops:
        now += passing
        if op == "arrive":
            newcomer = _Held(f"10.{network}.0.{address}", f"10.{network}.0.0/24", progress=0)
            newcomer.liveness.opened(now)
            if len(table) >= 8:
                counts = (
                    sum(c.host == newcomer.host for c in table),
                    sum(c.network == newcomer.network for c in table),
                )
                scanned = weigh(newcomer)
                if refusals.known(counts, now):
                    assert scanned is None
                    continue
                victim = weigh(newcomer, refusals=refusals, unproven=index)
                assert victim is scanned
                if victim is None:
                    continue
                table.remove(victim)
                index.discard(victim)
            table.append(newcomer)
            index.add(newcomer, newcomer.host)
            refusals.forget()
        elif table:
            connection = table[which % len(table)]
            if op == "close":
                table.remove(connection)
                index.discard(connection)
                refusals.forget()  # (the transport's `_forget`)
            else:
                if not connection.progress:
                    index.discard(connection)
                    refusals.forget()  # (the transport's `proved`)
                connection.progress = 1
                connection.liveness.last_active = now  # (the sweep saw it: nothing forgotten)
        assert list(index) == [c for c in table if not c.progress]
        assert index.entries() <= 2 * len(index) + 17
