"""Review 51h: attacks on the no-route notice budgets per source (troth.node.notice_budgets)
that failed: the code was right."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_review44d_relays import until
from tests.test_review49b_noroute import direct_end
from tests.test_review50f_refuted import hub_end_of, notify_hub
from tests.test_review51h_notices import TO_M, no_refills, relayed
from troth import limits
from troth.limits import NOTICE_BURST
from troth.routing import Address, RoutedMessage


def test_a_peer_naming_a_new_source_for_each_packet_gets_no_more_than_a_connections_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """a sends packets to dead addresses its connection could reach at the hub, each with a
    return hop of its own choosing before its channel end (where a relay puts its connection):
    each names a new source, yet the hub sends at most the connection's total (and no more
    sources than it keeps), not a notice each."""
    no_refills(monkeypatch)

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a = await net.member("a")
        link = direct_end(a)
        connection = link.peer_route[0]
        at_hub = hub.tcp.connection(direct_end(hub).peer_route[0])
        assert at_hub is not None
        packets = 3 * limits.NOTICE_CONNECTION_BURST
        for n in range(packets):
            dead = Address("worker", f"tcp-gone-{n}")
            at_hub.allow(dead)
            source = Address("worker", f"tcp-source-{n}")
            probe = RoutedMessage(
                (connection, dead, Address("worker", "x")), (source, link.dec), b""
            )
            await a.router.route(probe)
        await until(lambda: hub.channels.counters.no_route_notices_sent >= NOTICE_BURST)
        assert await a.send_message(f"{HUB}/service/echo", "after") == "after"
        sent = hub.channels.counters.no_route_notices_sent
        assert sent <= min(limits.NOTICE_CONNECTION_BURST, limits.MAX_NOTICE_SOURCES)
        assert sent < packets

    run_memnet(test, tmp_path)


def test_a_member_varying_its_notices_spends_one_share_of_the_senders_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """m (a's connection reaches m's) sends the hub notices for a's connection, each naming
    another way and another sender route past it: all come from m's connection, one source,
    so the hub passes back only m's share (`NOTICE_BURST`) toward a."""
    no_refills(monkeypatch)

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        m = await relayed(net, "m")
        a = await net.member("a")
        assert await a.send_message(TO_M, "hello") == "hello"
        to_a = hub_end_of(hub, a).peer_route[0]
        for n in range(3 * NOTICE_BURST):
            way = (Address("worker", f"tcp-gone-{n}"),)
            await notify_hub(m, way, (to_a, Address("worker", f"x-{n}.dec")))
        await until(lambda: hub.channels.counters.no_route_notices_forwarded >= NOTICE_BURST)
        assert await m.send_message(f"{HUB}/service/echo", "after") == "after"
        assert hub.channels.counters.no_route_notices_forwarded == NOTICE_BURST
        budgets = hub.channels._notices._budgets
        assert budgets.take(to_a, to_a, 0.0)  # a's own share there untouched

    run_memnet(test, tmp_path)
