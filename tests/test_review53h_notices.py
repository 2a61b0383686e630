"""Review 53h, notices 1 (review 52c, notices 1): a no-route notice budget's source was the
connection a dropped packet came on at the node before, so one host holding many connections to
a relay (up to `max_connections_per_source`, 64, from one IPv4 address or any address of one
IPv6 /64) was as many sources at the node past it: sixteen of them spending their shares as they
refilled held every kept source and the connection's whole total, and another sender's calls to
a dead member waited their timeout. A relay names an accepted connection by its peer's host
(`/worker/tcp-h<tag>-<random>`, `troth.transport.connection`), as the channel limits past a
relay already count it (review 29b, sources 1): the notice budgets now count one host's
connections as one source."""

from __future__ import annotations

import os

from troth import limits
from troth.node.notice_budgets import NoticeBudgets
from troth.routing import Address

ONE = Address("worker", "tcp-one")


def _tagged(host_tag: str) -> Address:
    """A connection a relay accepted from the host its tag names, as the relay names it."""
    return Address("worker", f"tcp-h{host_tag}-{os.urandom(8).hex()}")


def _other_gets_notices(party: list[Address], other: Address) -> int:
    """What `other` gets, one notice asked a second over a call's timeout (10 s), while
    `party`'s sources spend every notice their shares allow, first."""
    budgets = NoticeBudgets()
    got = 0
    step = limits.NOTICE_CONNECTION_INTERVAL
    for tick in range(int(10 / step)):
        now = tick * step
        for source in party:
            while budgets.take(ONE, source, now):
                pass
        if tick % int(1 / step) == 0:
            got += budgets.take(ONE, other, now)
    return got


def test_one_hosts_many_connections_at_the_relay_are_one_source() -> None:
    party = [_tagged("0badc0de") for _ in range(4 * limits.MAX_NOTICE_SOURCES)]
    assert _other_gets_notices(party, _tagged("600dcafe")) == 10


def test_hosts_apart_keep_shares_apart() -> None:
    """Two hosts' connections are two sources: each its own burst."""
    budgets = NoticeBudgets()
    first, second = _tagged("0badc0de"), _tagged("600dcafe")
    assert sum(budgets.take(ONE, first, 0.0) for _ in range(10)) == limits.NOTICE_BURST
    assert sum(budgets.take(ONE, second, 0.0) for _ in range(10)) == limits.NOTICE_BURST
    assert not budgets.take(ONE, _tagged("0badc0de"), 0.0)  # the first host's third connection


def test_an_address_that_names_no_host_is_its_own_source() -> None:
    """A connection the relay opened itself (no tag), or that node's own packets: each its own
    share, as before."""
    budgets = NoticeBudgets()
    for value in ("tcp-a", "tcp-b", "tcp-0badc0de-0123456789abcdef"):
        got = sum(budgets.take(ONE, Address("worker", value), 0.0) for _ in range(10))
        assert got == limits.NOTICE_BURST
