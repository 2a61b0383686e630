"""Review 66w: attacks on the shield of review 66v, transport 1, that did not work (each test
would fail if the defence it names broke). The remembered refusal after a close or a first
progress, and the index against the table on every path, are tried by
`tests/test_review66w_transport.py` (its property test)."""

from __future__ import annotations

import collections
from collections.abc import Iterator

from tests.test_review60f_refuted import _Held
from troth.transport.eviction import Refusals, eviction_candidate
from troth.transport.frameless import Frameless


class _Unscanned(list[_Held]):
    """A table that counts its scans."""

    scans = 0

    def __iter__(self) -> Iterator[_Held]:
        _Unscanned.scans += 1
        return super().__iter__()


def _weigh(
    table: list[_Held], newcomer: _Held, now: float, index: Frameless[_Held] | None = None
) -> _Held | None:
    newcomer.liveness.opened(now)
    held = list(list.__iter__(table))  # (not a scan of the rule's)
    return eviction_candidate(
        table, newcomer, collections.Counter(c.host for c in held),
        collections.Counter(c.network for c in held), strict=True, evict_idle_after=60.0,
        refusals=Refusals(), unproven=index, shielded_for=10.0,
    )  # fmt: skip


def test_shielded_junk_from_many_small_networks_gives_way_to_a_client_of_a_new_network() -> None:
    """An attacker opens one junk connection from each of many /24s every few seconds, so some
    are always shielded: a client from a network holding none in the table (its network holds
    no more than any) still evicts one of them, at once."""
    active = [_Held(f"198.51.100.{n}", "198.51.100.0/24") for n in range(1, 5)]
    junk = [_Held(f"203.0.{n}.1", f"203.0.{n}.0/24", progress=0) for n in range(4)]
    table = [*active, *junk]
    index: Frameless[_Held] = Frameless()
    for at, connection in enumerate(table):
        connection.liveness.opened(float(at))
        connection.liveness.last_active = 8.0
        if not connection.progress:
            index.add(connection, connection.host)
    assert _weigh(table, _Held("192.0.2.7", "192.0.2.0/24", progress=0), 8.0, index) in junk
    assert _weigh(table, _Held("192.0.2.7", "192.0.2.0/24", progress=0), 8.0) in junk


def test_junk_past_its_shield_gives_way_without_a_scan() -> None:
    """Junk from 100 /24s, one each, past its shield, and pairs of fresh connections from new
    /24s (each pair's network the one the index ranks first, shielded for the newcomer), and
    newcomers from a /24 holding 5 active connections: each evicts the oldest junk, found
    without a look at the table (100 newcomers: no scan)."""
    big = [_Held(f"198.51.100.{n}", "198.51.100.0/24") for n in range(1, 6)]
    table = _Unscanned(big)
    index: Frameless[_Held] = Frameless()
    for n in range(100):
        junk = _Held(f"203.0.{n}.1", f"203.0.{n}.0/24", progress=0)
        table.append(junk)
        index.add(junk, junk.host)
    for connection in table:
        connection.liveness.opened(0.0)
    _Unscanned.scans = 0
    now = 20.0
    for n in range(100):
        now += 0.05
        for connection in big:
            connection.liveness.last_active = now
        for host in (1, 2):
            fresh = _Held(f"203.1.{n}.{host}", f"203.1.{n}.0/24", progress=0)
            fresh.liveness.opened(now)
            table.append(fresh)
            index.add(fresh, fresh.host)
        oldest = index.oldest()
        victim = _weigh(table, _Held("198.51.100.9", "198.51.100.0/24", progress=0), now, index)
        assert victim is oldest
        assert victim is not None
        assert victim.network.startswith("203.0.")
        table.remove(victim)
        index.discard(victim)
    assert _Unscanned.scans == 0
    assert index.entries() <= 2 * len(index) + 16


def test_one_byte_of_junk_does_not_unshield_and_keep_a_connection() -> None:
    """A junk connection from a small network that sends a junk frame (frames read, no
    progress at a node) to become unshielded-but-kept: it is still without progress, in the
    index, and past its shield gives way to a newcomer of a bigger network."""
    big = [_Held(f"198.51.100.{n}", "198.51.100.0/24") for n in range(1, 8)]
    junk = _Held("203.0.113.1", "203.0.113.0/24", progress=0, frames_read=1)
    table = [*big, junk]
    index: Frameless[_Held] = Frameless()
    for connection in table:
        connection.liveness.opened(0.0)
        connection.liveness.last_active = 10.0
    index.add(junk, junk.host)
    newcomer = _Held("198.51.100.9", "198.51.100.0/24", progress=0)
    assert _weigh(table, newcomer, 5.0, index) is None  # shielded: may be a handshake
    assert _weigh(table, newcomer, 10.0, index) is junk
