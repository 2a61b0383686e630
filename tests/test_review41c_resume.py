"""Review 41c, resume: attacks on review 40b's resumption of interrupted enrollments through
the first record naming an address (`troth.node.membership._resume_at`).

A pending record's address and authority are whatever its ticket said: the ticket's issuer
chose both. Records naming one address are resumed through the first; when it does not reach
its authority, the others at the address wait as it does, uncontacted.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import HUB, MemNet, globex_over_tcp, run_memnet
from tests.test_review39a_resume import NOWHERE, _count_channels, _pending, _ticket
from troth.node.membership import RESUME_AFTER, RESUME_BACKOFF_MAX


def test_a_ticket_naming_anothers_address_holds_back_no_record_of_that_authority(
    tmp_path: Path,
) -> None:
    """Review 41c, resume 1. Globex, hostile, hands the operator a ticket naming the hub's
    address (its own identifier, the hub's address). `troth enroll` with it fails at the
    handshake (the peer there is not globex) and leaves its record pending: the oldest naming
    the hub's address. Then an agent's enrollment with the hub itself is interrupted (the
    answer lost). Each round, `_resume_at` tried globex's record first; its channel pinned to
    globex never opened (the hub is there), so the hub's own record was marked failed and
    never sent, at each step of their shared backoff, until both were given up: a ticket
    from one authority stopped the node resuming its enrollments with another.

    Was a strict xfail until the records were resumed through the first by address and
    authority, not by address alone (`resume_enrollments`, `_resume_at`).
    """

    async def test(net: MemNet) -> None:
        _globex_node, globex, _ = await globex_over_tcp(net)
        agent = await net.node("agent")
        _pending(agent, "decoy", _ticket(globex, HUB, net.clock.now()), net.clock)
        net.clock.advance(1)
        _pending(agent, "worker", _ticket(net.authority, HUB, net.clock.now()), net.clock)
        opened = _count_channels(agent, HUB)
        net.clock.advance(RESUME_AFTER)
        for _ in range(4):
            await agent.resume_enrollments()
            net.clock.advance(RESUME_BACKOFF_MAX)
        assert opened  # the address was tried
        left = agent.node.wallet.interrupted_enrollments(64)
        assert [p.authority for p in left] == [globex.identifier.digest]  # the hub's completed

    run_memnet(test, tmp_path)


def test_a_dark_address_costs_one_attempt_a_round_per_authority(tmp_path: Path) -> None:
    """Review 41c, resume 1, its bound: six records naming one dark address, three pinned to
    the hub's authority, three to globex's, cost two attempts a round (one per authority),
    not six; each record stays pending."""

    async def test(net: MemNet) -> None:
        _globex_node, globex, _ = await globex_over_tcp(net)
        agent = await net.node("agent")
        for i in range(3):
            _pending(agent, f"a{i}", _ticket(net.authority, NOWHERE, net.clock.now()), net.clock)
            _pending(agent, f"g{i}", _ticket(globex, NOWHERE, net.clock.now()), net.clock)
        opened = _count_channels(agent, NOWHERE)
        net.clock.advance(RESUME_AFTER)
        await agent.resume_enrollments()
        assert len(opened) == 2
        assert len(agent.node.wallet.interrupted_enrollments(64)) == 6

    run_memnet(test, tmp_path)


def test_one_dark_address_spelt_several_ways_costs_one_attempt_a_round(tmp_path: Path) -> None:
    """Review 41c, resume 2. Review 40b grouped the records by their address's text: four
    tickets naming one dark address spelt four ways (`/tcp/nowhere:4000`, a trailing slash,
    a doubled one, both), all parsed to one route and so opened under one lock, made four
    groups: four attempts a round, one after another, each its own connect or handshake
    timeout (what review 40b, resume 4 bounded to one).

    Was a strict xfail until the records were grouped by their route as `channel_to` locks
    it (`membership._route_key`), not by their address's text.
    """

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        for i, spelt in enumerate((NOWHERE, NOWHERE + "/", "/" + NOWHERE, "/" + NOWHERE + "/")):
            _pending(agent, f"a{i}", _ticket(net.authority, spelt, net.clock.now()), net.clock)
        opened = _count_channels(agent, NOWHERE)
        net.clock.advance(RESUME_AFTER)
        await agent.resume_enrollments()
        assert len(opened) == 1
        assert len(agent.node.wallet.interrupted_enrollments(64)) == 4

    run_memnet(test, tmp_path)
