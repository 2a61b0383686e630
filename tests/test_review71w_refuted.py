"""Review 71w: attacks on the no-route notice for a hop a source was cut off from (review 71s,
relaywait 1) that did not work.

1. Flooding the hub with packets into an address the connection was cut off from, one source
   or many named behind it in the return route: the notices take the same budgets as any
   other (review 51h, notices 1-2: NOTICE_BURST for one source, NOTICE_CONNECTION_BURST for
   the connection), and go only on the hub's own channel with the node at the other end of
   that connection, never to a connection or channel the return route names (no third party
   is sent one), and never for an address the connection never reached.
2. Using the mark as an oracle of whether an address is served: an address cut off is
   answered the same whether a worker serves it now or not (a notice), and one whose mark
   was pushed out by newer cuts (at most `max_reply_paths`) is answered like one never
   reached (nothing); a mark goes when the address is reached again (`allow`, `hold`,
   `permit`), after which only the served-or-not answer of review 49b holds.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import pytest

import troth.node.notice_budgets as notice_budgets
from tests.test_review53h_refuted import _Hub
from tests.test_review71w_wave4a import _connection, _link
from troth.errors import RoutingError
from troth.limits import NOTICE_BURST, NOTICE_CONNECTION_BURST
from troth.node.no_route import NoRouteNotices
from troth.routing import Address, RoutedMessage, Router
from troth.routing.notice import parse_no_route
from troth.transport.connection import Connection

if TYPE_CHECKING:
    from troth.node.channels import ChannelManager

_END = Address("worker", "chan-a.dec")


async def _send(router: Router, sender: Connection, hop: Address, *behind: Address) -> None:
    """A packet from `sender` into `hop`, its return route naming `behind` then `_END`."""
    back = (sender.address, *behind, _END)
    message = RoutedMessage((hop, Address("service", "echo")), back, b"x")
    with pytest.raises(RoutingError):
        await router.route(message, sender)


def _hub(sender: Connection) -> tuple[Router, _Hub]:
    """A router whose no-route hook is a hub's notices, the hub linked over `sender`."""
    hub, router = _Hub((_link(sender.address, "to-sender"),)), Router()
    router.unroutable = NoRouteNotices(cast("ChannelManager", hub)).unroutable
    return router, hub


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_a_flood_into_a_cut_address_spends_the_budgets_and_reaches_no_third_party(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refuted 1 (no budget refills in this test: the intervals are made huge)."""
    monkeypatch.setattr(notice_budgets, "NOTICE_INTERVAL", 1e9)
    monkeypatch.setattr(notice_budgets, "NOTICE_CONNECTION_INTERVAL", 1e9)

    async def test() -> None:
        sender, cut, never = _connection(), Address("worker", "tcp-cut"), Address("worker", "x")
        sender.allow(cut)
        sender.allowed.forget_each({cut})
        router, hub = _hub(sender)
        for _ in range(3 * NOTICE_BURST):
            await _send(router, sender, never)
            await _send(router, sender, cut)
        await _settle()
        assert len(hub.sent) == NOTICE_BURST
        for n in range(3 * NOTICE_CONNECTION_BURST):  # other sources named behind it
            await _send(router, sender, cut, Address("worker", f"tcp-behind-{n}"))
        await _settle()
        assert NOTICE_BURST < len(hub.sent) <= NOTICE_CONNECTION_BURST  # (fewer sources kept)
        assert {m.onward[0] for m in hub.sent} == {hub.ends[0].enc}  # its own link only

    asyncio.run(test())


def test_a_cut_mark_tells_nothing_of_whether_an_address_is_served() -> None:
    """Refuted 2."""

    async def test() -> None:
        sender = _connection()
        router, hub = _hub(sender)
        served, dead, old = (Address("worker", f"tcp-{n}") for n in ("served", "dead", "old"))

        async def serve(message: RoutedMessage, source: object) -> None:
            pass

        router.register(served, serve)
        for address in (old, served, dead):
            sender.allow(address)
        sender.allowed.forget_each({old})
        sender.allowed.forget_each({served, dead})
        for n in range(sender.allowed.max_reply_paths - 2):  # pushes `old`'s mark out
            sender.allow(Address("worker", f"tcp-more-{n}"))
            sender.allowed.forget_each({Address("worker", f"tcp-more-{n}")})
        for hop in (served, dead, old):
            await _send(router, sender, hop)
        await _settle()
        assert [parse_no_route(m.payload)[0] for m in hub.sent] == [(served,), (dead,)]  # alike
        sender.allow(served)  # reached again: the mark goes, a served address is just served
        sender.allowed.permit(dead)
        assert not sender.cut_from(served)
        assert not sender.cut_from(dead)
        await router.route(RoutedMessage((served,), (sender.address, _END), b"x"), sender)
        await _settle()
        assert len(hub.sent) == 2

    asyncio.run(test())
