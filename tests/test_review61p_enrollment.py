"""Review 61p (adversarial review of review 61l's pending enrollments, one per ticket).

Enrollment 1: the node's maintenance resumed an older ticket's record while a newer one of the
same identity and authority was still younger than RESUME_AFTER (possibly carried by the
`troth enroll` that recorded it, or failed for a passing reason a moment ago): the older one,
sent alone, completed and left the newer one pending (a newer record stays when an older one
completes), which the next round sent too: the member's second ticket redeemed for nothing,
and a second credential held for one member (review 61l's own test asserts one, the newer
resumed first and clearing the older, when both are due in one round).

Enrollment 2: the records of one address and authority went newest first only for the first:
once it had reached the address (refused for good, say), the others were sent at once, two of
one identity both completing (a second credential) where the newer one completing clears the
older before it is sent.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.support.pending import hub_ticket, made_up, record_at_hub
from troth.node.membership import RESUME_AFTER


def test_an_older_record_waits_for_a_newer_one_in_flight(tmp_path: Path) -> None:
    """T1 redeemed (its answer lost); RESUME_AFTER/2 later `troth enroll` with T2, its request
    failed for a passing reason; when T1 is due, T2 is not yet: one credential in the end."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        wallet = agent.node.wallet
        for i, team in enumerate(("one", "other")):  # the first's answer lost
            record_at_hub(net, agent, hub_ticket(net, team), redeemed=i == 0)
            net.clock.advance(RESUME_AFTER // 2)  # T2 recorded RESUME_AFTER/2 after T1
        assert len(wallet.pending_enrollments("agent")) == 2
        # T1 due (RESUME_AFTER old), T2 not yet
        await agent.maintain()
        net.clock.advance(RESUME_AFTER)  # both due now
        await agent.maintain()
        assert wallet.pending_enrollments("agent") == []
        assert len(wallet.held("agent")) == 1, "a second credential for one member"

    run_memnet(test, tmp_path)


def test_an_older_record_held_back_is_resumed_once_the_newer_is_refused(tmp_path: Path) -> None:
    """The hold-back strands nothing: T1 redeemed (its answer lost), a made-up T2 recorded
    RESUME_AFTER/2 later; the first round sends neither, the next sends T2 (refused for good,
    forgotten) and then T1, which completes."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        wallet, ticket = agent.node.wallet, hub_ticket(net, "one")
        for made in (ticket, made_up(ticket)):  # the first's answer lost
            record_at_hub(net, agent, made, redeemed=made is ticket)
            net.clock.advance(RESUME_AFTER // 2)
        assert await agent.resume_enrollments() == 0  # T1 held back, T2 not yet due
        assert len(wallet.pending_enrollments("agent")) == 2
        net.clock.advance(RESUME_AFTER)
        await agent.maintain()
        assert wallet.pending_enrollments("agent") == []
        assert len(wallet.held("agent")) == 1

    run_memnet(test, tmp_path)


def test_after_the_newest_is_refused_the_others_go_one_at_a_time(tmp_path: Path) -> None:
    """T1 redeemed (its answer lost), T2 valid (its request never arrived), a made-up T3, all
    of one address and authority and due in one round: T3 refused for good, then T2 and T1
    were sent at once (the address reached), both completed: a second credential."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        wallet = agent.node.wallet
        tickets = [hub_ticket(net, team) for team in ("one", "other")]
        for i, made in enumerate((*tickets, made_up(tickets[0]))):  # the first's answer lost
            record_at_hub(net, agent, made, redeemed=i == 0)
        assert len(wallet.pending_enrollments("agent")) == 3
        net.clock.advance(RESUME_AFTER)
        await agent.maintain()
        assert wallet.pending_enrollments("agent") == []
        assert len(wallet.held("agent")) == 1, "a second credential for one member"

    run_memnet(test, tmp_path)
