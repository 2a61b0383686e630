"""Review 71p (area: pools): the members one ticket of many uses enrolled take the members' pool
of feed-page signings at a hosted authority's service (review 71h, wave2a 3).

1. (one ticket's members take the whole members' pool, low) 71e made the members of a ticket
   of many uses share one revocation quota (`quota_holder`), but at the authority service each
   of them still had a feed-page budget of its own (FEED_PAGE_SIGNS_PER_CALLER, burst 8) and a
   free walk, all drawn from the pool the authority's members and anchors share
   (FEED_PAGE_SIGNS_PER_NODE: 20/s, burst 40): five members enrolled with one ticket spent
   the pool at once, and every other member's sync was answered "busy" (ten of them, all the
   time). Now a second tier: each member keeps its own budget, and the members of one ticket
   (their delegates with them) together take at most a quarter of the pool
   (FEED_PAGE_SIGNS_PER_TICKET: 5/s, burst 10), so a ticket's fleet leaves at least three
   quarters to everyone else while each of its members still gets pages. A single-use
   ticket's member, an anchor and a stranger are charged as before; the node's own callers
   never.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_attacks_review2 import throwaway_delegate
from tests.test_feed_budgets import ask, grow_feed
from troth import limits
from troth.credentials import Attributes
from troth.node.access import Decision, LocalCaller
from troth.node.runtime import NodeRuntime
from troth.node.services.authority import AuthorityService
from troth.node.services.base import RequestContext

_BURST = limits.FEED_PAGE_SIGNS_PER_CALLER_BURST


async def fleet(net: MemNet, name: str, members: int, uses: int = 2) -> NodeRuntime:
    """Node `name` whose identities `name`, `name`1, ... (`members` of them: one team's agents)
    each enrolled with one ticket of `uses` uses."""
    ticket = str(
        net.authority.create_ticket(
            creator=net.authority.identifier,
            attributes=Attributes({"agents.team": "support"}),
            address=HUB,
            now=net.clock.now(),
            uses=uses,
        )
    )
    runtime = await net.node(name)
    await runtime.enroll(ticket, name)
    for n in range(1, members):
        runtime.node.identities.create(now=net.clock.now(), name=f"{name}{n}")
        await runtime.enroll(ticket, f"{name}{n}")
    return runtime


async def pages(
    net: MemNet, runtime: NodeRuntime, starts: list[int], *, identity: str | None = None
) -> int:
    """How many of a burst of pages (each from a `since` of its own, taken from `starts`:
    each one signed on request) the hub signs for `runtime` (or its local `identity`)."""
    answers = [await ask(net, runtime, starts.pop(), identity=identity) for _ in range(_BURST)]
    assert set(answers) <= {"ok", "busy: too many feed pages signed on request, ask again later"}
    return answers.count("ok")


async def grown(net: MemNet) -> list[int]:
    """The hub's feed grown to 64 entries (after the members enrolled: their first syncs spent
    nothing of it): the `since` values, each a page of its own, signed on request."""
    assert net.hub is not None
    latest = grow_feed(net, 64, 1)
    await net.hub.refresh_feeds()
    return list(range(latest))


def test_a_tickets_fleet_leaves_a_single_use_member_its_pages(tmp_path: Path) -> None:
    """71p pools 1: five members of one ticket each ask a burst of pages (5 x 8: the members'
    pool's burst, 40); then a member enrolled with a single-use ticket still gets its whole
    burst, as before (its budget is its own, and no ticket's), where every page of its was
    answered busy. The fleet got its ticket's share (a quarter of the pool's burst), each
    member within its own budget; a page refused for the ticket's share spends nothing of the
    member's own budget, so a second later t1 gets what the share regained."""

    async def test(net: MemNet) -> None:
        members = await fleet(net, "t", 5, uses=5)
        solo = await net.member("solo")
        starts = await grown(net)
        names = ["t", "t1", "t2", "t3", "t4"]
        served = [await pages(net, members, starts, identity=name) for name in names]
        assert await pages(net, solo, starts) == _BURST
        share = 2 * limits.FEED_PAGE_SIGNS_PER_TICKET
        assert served == [_BURST, share - _BURST, 0, 0, 0]
        net.clock.advance(1)  # t1's refused pages spent nothing of its own budget
        assert await pages(net, members, starts, identity="t1") == share // 2

    run_memnet(test, tmp_path / "home", budget=60)


def test_two_tickets_fleets_each_get_their_share(tmp_path: Path) -> None:
    """71p pools 1: the fleets of two tickets, (a, a1) and (b and b's delegate d), each
    ask two bursts of pages: each member's own budget still serves it first, and each fleet
    gets its ticket's share (a its burst, a1 the rest of the share: its own budget is not
    what refuses it), the second fleet as much as the first. Then, the members' pool spent,
    the node's own callers (local: another node on this machine, the CLI) are still served."""

    async def test(net: MemNet) -> None:
        a = await fleet(net, "a", 2)
        b = await fleet(net, "b", 1)
        throwaway_delegate(b, "d", {"agents.team": "support"})
        starts = await grown(net)
        share = 2 * limits.FEED_PAGE_SIGNS_PER_TICKET
        served = [await pages(net, a, starts), await pages(net, a, starts, identity="a1")]
        assert served == [8, share - 8]
        served = [await pages(net, b, starts), await pages(net, b, starts, identity="d")]
        assert served == [8, share - 8]
        assert net.hub is not None
        service = net.hub.host.services["authority"]
        assert isinstance(service, AuthorityService)
        now = net.clock.now()
        while service._members.pool.take(None, 1, now=now):  # other members spend the rest
            pass
        assert await ask(net, a, starts.pop()) != "ok"
        local = RequestContext(LocalCaller(), (), Decision(True), now)
        for _ in range(_BURST):
            assert isinstance(await service.feed([starts.pop()], local), bytes)

    run_memnet(test, tmp_path / "home", budget=60)
