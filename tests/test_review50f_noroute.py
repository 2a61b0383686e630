"""Review 50f, relays: the no-route notice's gaps (docs/protocols.md, "Unanswered channels").

2. Only a dead address right after the hub was covered: a member restarted behind a chain of
   relays (a -> hub -> r1 -> b: b reaches the hub through r1) left the sender's first call
   waiting its whole timeout, r1 (which dropped the packet) having no channel with its
   sender. Now r1 tells the hub, over its own channel with the hub, and the hub passes it back
   to a, the way named hop by hop; a closes the stale channel at once.
   A notice passed back is charged first to the budget of the connection it came from, and
   only once it is found to go a way the packet could have gone, to the connection it goes
   over: a member that sent the hub notices naming a's connection, which never reached it,
   spent a's budget there, and a's own notices were not sent.
3. A hub answered a packet for any `/worker/...` address it does not serve, even one the
   connection it came on could never have reached: an authenticated peer learned, of an
   address it named, whether the hub serves it now (a notice for a dead or never-served one,
   silence for a live one). Now only an address that connection may reach (a reply path of
   what the hub sent over it, an end held on it) is answered.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import troth.node.notice_budgets as notice_budgets
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_review44d_relays import FAST, crash_and_restart, until
from tests.test_review45e_relay import HUB_AT_R1, R1, TO_B, _ticket
from tests.test_review49b_noroute import GENEROUS, direct_end
from tests.test_review50f_refuted import hub_end_of, notify_hub
from troth.credentials import Attributes
from troth.errors import Unreachable
from troth.limits import NOTICE_BURST
from troth.node import Node
from troth.node.links import LinkState
from troth.node.runtime import NodeRuntime
from troth.routing import Address, RoutedMessage, parse_route

ECHO_B = f"{TO_B}/service/echo"


async def behind_two_relays(net: MemNet) -> tuple[NodeRuntime, NodeRuntime, NodeRuntime]:
    """The chain of review 45e: r1 (an authority of its own, the hub holding `/relay/hub`
    there), b reaching the hub only through r1 and holding `/relay/b` there, and a, a member
    connected to the hub that called b: (a, r1, b)."""
    hub = net.hub
    assert hub is not None

    def create_r1(node: Node) -> None:
        node.create_authority("r1", now=net.clock.now())

    r1 = await net.node("r1", listen=("r1", 4000), prepare=create_r1)
    r1_authority = r1.node.authority()
    for_hub = r1_authority.create_ticket(
        creator=r1_authority.identifier,
        attributes=Attributes({"troth.relay": "hub"}),
        address=R1,
        now=net.clock.now(),
    )
    await hub.enroll(str(for_hub), "hub")
    await hub.create_relay("hub", R1)
    b = await net.node("b", backoff=FAST)
    await b.enroll(_ticket(net, HUB_AT_R1, **{"troth.relay": "b"}), "b")
    await b.create_relay("b", HUB_AT_R1)
    a = await net.member("a")
    assert await a.send_message(ECHO_B, "before", expect=net.identifier(b)) == "before"
    return a, r1, b


def test_a_member_restarted_behind_two_relays_fails_the_first_call_fast(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a, r1, b = await behind_two_relays(net)
        old = await a.channel_to(parse_route(TO_B))
        assert len(old.peer_route) == 4  # a's connection, the hub's to r1, r1's to b, b's end
        b = await crash_and_restart(net, b)
        await until(lambda: b.link_rows()[0].state is LinkState.CONNECTED)

        # before: "no answer within 10 s" (r1 dropped it: no channel of its own with a)
        with pytest.raises(Unreachable, match="no route at a relay past the hub"):
            await asyncio.wait_for(a.send_message(ECHO_B, "first"), GENEROUS)
        assert old.channel.closed
        assert r1.channels.counters.no_route_notices_sent >= 1
        assert hub.channels.counters.no_route_notices_forwarded >= 1
        assert a.channels.counters.closed_by_no_route == 1
        assert await asyncio.wait_for(a.send_message(ECHO_B, "second"), GENEROUS) == "second"

    run_memnet(test, tmp_path)


def test_an_address_the_connection_could_not_reach_gets_no_notice(tmp_path: Path) -> None:
    """a sends packets over its connection to `/worker/...` addresses it never reached there
    (none the hub ever sent it or serves): no notice, the same silence as for a live one."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a = await net.member("a")
        link = direct_end(a)
        connection = link.peer_route[0]
        for n in range(3):
            dead = Address("worker", f"tcp-never-{n}")
            probe = RoutedMessage((connection, dead, Address("worker", "x")), (link.dec,), b"!")
            await a.router.route(probe)
        # a call on a's link, over the same connection: answered after the probes were handled
        assert await a.send_message(f"{HUB}/service/echo", "after") == "after"
        assert hub.channels.counters.no_route_notices_sent == 0

    run_memnet(test, tmp_path)


def test_notices_a_peer_cannot_pass_back_do_not_spend_the_senders_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """m floods the hub with notices naming a's connection there (never reaching m's): a's
    budget there is untouched (no budget refills in this test: the interval is made huge)."""
    monkeypatch.setattr(notice_budgets, "NOTICE_INTERVAL", 1e9)  # its own name for it
    monkeypatch.setattr(notice_budgets, "NOTICE_CONNECTION_INTERVAL", 1e9)

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a = await net.member("a")
        m = await net.member("m")
        to_a = hub_end_of(hub, a).peer_route[0]
        for _ in range(3 * NOTICE_BURST):
            await notify_hub(m, (Address("worker", "tcp-gone"),), (to_a, direct_end(a).dec))
        assert await m.send_message(f"{HUB}/service/echo", "after") == "after"
        notices = hub.channels._notices
        assert [notices.take(to_a, 0.0) for _ in range(NOTICE_BURST)] == [True] * NOTICE_BURST

    run_memnet(test, tmp_path)
