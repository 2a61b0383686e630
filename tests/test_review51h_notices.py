"""Review 51h, notices: one source spent a connection's whole no-route notice budget
(docs/protocols.md, "Unanswered channels"; the closing note of 2026-12-05 07:42, "Knowingly
left": "a member whose connection another peer may reach can spend the hub's notice budget
toward that peer").

A node kept one notice budget per connection (`NOTICE_BURST` back to back, one more each
`NOTICE_INTERVAL`), whoever's packets or notices spent it:

1. At the hub, a member m that a sender a called (a's connection may reach m's) sent the hub
   notices naming a's connection: the hub passed each back toward a (a drops them: they name
   no channel of a's), from a's budget there. a's own call to a member restarted behind the
   hub's relay then got no notice: it waited its whole timeout (10 s) instead of failing fast.
2. Along a chain of relays (a -> hub -> r1 -> b), every sender behind the hub reaches r1 over
   the hub's one connection there: m, behind the hub too, sent packets to a dead address at r1
   (b's old connection, which m's channel to b had named), and r1's notices for them spent the
   budget of the hub's connection, and at the hub what r1 may pass back: a's call to b, then
   restarted, waited its timeout.

Now each connection's budget is spent per source as well (the connection the packet or the
notice came on at the node before, or the node at the other end of the connection itself:
`NOTICE_BURST`, `NOTICE_INTERVAL`), within a total for the connection eight sources' worth
(`NOTICE_CONNECTION_BURST`, `NOTICE_CONNECTION_INTERVAL`): one source spends at most its own
share, and the total still bounds what a connection is sent. No budget refills in these tests
(the intervals troth.node.notice_budgets reads are made huge): what a source spent stays spent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import troth.node.notice_budgets as notice_budgets
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_review44d_relays import FAST, crash_and_restart, until
from tests.test_review49b_noroute import GENEROUS
from tests.test_review50f_noroute import ECHO_B, behind_two_relays
from tests.test_review50f_refuted import hub_end_of, notify_hub
from troth import limits
from troth.errors import Unreachable
from troth.limits import NOTICE_BURST, NOTICE_INTERVAL
from troth.node.links import LinkState
from troth.node.runtime import NodeRuntime
from troth.routing import Address, RoutedMessage, parse_route

TO_B = f"{HUB}/relay/b/service/echo"
B = parse_route(f"{HUB}/relay/b")
TO_M = f"{HUB}/relay/m/service/echo"


def no_refills(monkeypatch: pytest.MonkeyPatch) -> None:
    """No notice budget refills during the test (each interval the module reads made huge)."""
    for name in ("NOTICE_INTERVAL", "NOTICE_CONNECTION_INTERVAL"):
        monkeypatch.setattr(notice_budgets, name, 1e9)


async def relayed(net: MemNet, name: str) -> NodeRuntime:
    """A member `name` reachable at the hub's relay `/relay/<name>`."""
    runtime = await net.node(name, backoff=FAST)
    await runtime.enroll(net.ticket(**{"troth.relay": name}), name)
    await runtime.create_relay(name, HUB)
    return runtime


def test_a_member_a_sender_called_cannot_starve_the_senders_notices_at_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_refills(monkeypatch)

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        m = await relayed(net, "m")
        b = await relayed(net, "b")
        a = await net.member("a")
        assert await a.send_message(TO_M, "hello") == "hello"  # a's connection reaches m's
        assert await a.send_message(TO_B, "before") == "before"
        old = await a.channel_to(B)
        b = await crash_and_restart(net, b)
        await until(lambda: hub.status()["services"]["relay"]["b"]["state"] == "up")
        await until(lambda: b.link_rows()[0].state is LinkState.CONNECTED)

        to_a = hub_end_of(hub, a).peer_route[0]
        for _ in range(3 * NOTICE_BURST):  # m's notices, passed back toward a (dropped there)
            await notify_hub(m, (Address("worker", "tcp-gone"),), (to_a, old.dec))
        await until(
            lambda: hub.channels.counters.no_route_notices_forwarded >= NOTICE_BURST
        )  # m spent what it could

        # before: "no answer within 10 s" (a's budget at the hub spent by m's notices)
        with pytest.raises(Unreachable, match="no route at the hub"):
            await asyncio.wait_for(a.send_message(TO_B, "first"), GENEROUS)
        assert old.channel.closed
        assert a.channels.counters.closed_by_no_route == 1
        assert await asyncio.wait_for(a.send_message(TO_B, "second"), GENEROUS) == "second"

    run_memnet(test, tmp_path)


def test_a_sender_flooding_dead_addresses_past_a_relay_cannot_starve_another_senders_notices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_refills(monkeypatch)

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a, r1, b = await behind_two_relays(net)
        m = await net.member("m")
        assert await m.send_message(ECHO_B, "hello", expect=net.identifier(b)) == "hello"
        theirs = await m.channel_to(B)
        old = await a.channel_to(B)
        b = await crash_and_restart(net, b)
        await until(lambda: b.link_rows()[0].state is LinkState.CONNECTED)

        # m sends packets into b's old connection at r1 (its channel's way there), as fast as
        # it can, from its own channel end: r1 drops each
        way = theirs.peer_route[:3]
        for _ in range(3 * NOTICE_BURST):
            probe = RoutedMessage((*way, Address("worker", "x")), (theirs.dec,), b"!")
            await m.router.route(probe)
        await until(lambda: r1.channels.counters.no_route_notices_sent >= NOTICE_BURST)

        # before: "no answer within 10 s" (r1's budget toward the hub spent on m's packets)
        with pytest.raises(Unreachable, match="no route at a relay past the hub"):
            await asyncio.wait_for(a.send_message(ECHO_B, "first"), GENEROUS)
        assert old.channel.closed
        assert a.channels.counters.closed_by_no_route == 1

    run_memnet(test, tmp_path)


ONE, OTHER = Address("worker", "tcp-one"), Address("worker", "tcp-other")


def _sources(n: int) -> list[Address]:
    return [Address("worker", f"tcp-source-{i}") for i in range(n)]


def test_one_source_spends_its_share_and_leaves_the_others_theirs() -> None:
    budgets = notice_budgets.NoticeBudgets()
    first, second = _sources(2)
    takes = [budgets.take(ONE, first, 0.0) for _ in range(NOTICE_BURST + 2)]
    assert takes == [True] * NOTICE_BURST + [False, False]
    assert budgets.take(ONE, second, 0.0)  # the same connection, another source
    assert budgets.take(OTHER, first, 0.0)  # the same source, another connection
    assert budgets.take(ONE, first, NOTICE_INTERVAL)  # its share regains one an interval
    assert not budgets.take(ONE, first, NOTICE_INTERVAL)


def test_a_connections_total_bounds_every_source_together() -> None:
    """Eight sources' worth at once, then one each `NOTICE_CONNECTION_INTERVAL`, whatever the
    sources: what a connection is sent stays bounded (no fresh source mints more)."""
    budgets = notice_budgets.NoticeBudgets()
    sources = _sources(limits.MAX_NOTICE_SOURCES)
    spent = sum(budgets.take(ONE, s, 0.0) for s in sources for _ in range(NOTICE_BURST))
    assert spent == limits.NOTICE_CONNECTION_BURST == 8 * NOTICE_BURST
    assert not budgets.take(ONE, sources[-1], 0.0)  # its share untouched: the total spent
    later = limits.NOTICE_CONNECTION_INTERVAL
    assert budgets.take(ONE, sources[-1], later)
    assert not budgets.take(ONE, sources[-2], later)
    assert budgets.take(OTHER, sources[0], later)  # each connection its own total


def test_a_refused_notice_spends_nothing() -> None:
    """A source with no share left spends nothing of the total, nor one refused by the total
    anything of its share."""
    budgets = notice_budgets.NoticeBudgets()
    sources = _sources(9)
    for s in sources[:8]:
        assert all(budgets.take(ONE, s, 0.0) for _ in range(NOTICE_BURST))
    assert not budgets.take(ONE, sources[8], 0.0)  # the total spent, its share kept
    assert not budgets.take(ONE, sources[0], 3 * limits.NOTICE_CONNECTION_INTERVAL)
    later = 3 * limits.NOTICE_CONNECTION_INTERVAL  # three regained: none spent by sources[0]
    assert [budgets.take(ONE, sources[8], later) for _ in range(4)] == [True] * 3 + [False]


def test_past_the_sources_kept_a_refilled_one_goes_else_none_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budgets = notice_budgets.NoticeBudgets()
    monkeypatch.setattr(notice_budgets, "MAX_NOTICE_SOURCES", 2)
    first, second, third = _sources(3)
    assert budgets.take(ONE, first, 0.0)
    assert budgets.take(ONE, second, 0.0)
    assert not budgets.take(ONE, third, 0.0)  # deny when in doubt: both in use
    assert budgets.take(ONE, third, NOTICE_INTERVAL)  # both refilled: one forgotten


def test_past_the_connections_kept_a_refilled_one_goes_else_none_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budgets = notice_budgets.NoticeBudgets()
    monkeypatch.setattr(notice_budgets, "MAX_NOTICE_BUCKETS", 1)
    assert budgets.take(ONE, ONE, 0.0)
    assert not budgets.take(OTHER, OTHER, 0.0)
    assert not budgets.take(OTHER, OTHER, limits.NOTICE_CONNECTION_INTERVAL)  # ONE's source not
    assert budgets.take(OTHER, OTHER, NOTICE_INTERVAL)  # refilled: ONE's budgets forgotten
    budgets.forget(OTHER)
    assert budgets.take(ONE, ONE, NOTICE_INTERVAL)


def test_the_notice_budgets_are_named_in_troth_limits() -> None:
    for name in (
        "NOTICE_BURST",
        "NOTICE_INTERVAL",
        "NOTICE_CONNECTION_BURST",
        "NOTICE_CONNECTION_INTERVAL",
        "MAX_NOTICE_SOURCES",
        "MAX_NOTICE_BUCKETS",
    ):
        assert getattr(notice_budgets, name) is getattr(limits, name), name
    assert limits.NOTICE_CONNECTION_INTERVAL * 8 == NOTICE_INTERVAL
