"""Review 61r refuted: attempts on review 61p's resumption order that did not work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import HUB, MemNet, run_memnet
from tests.support.pending import hub_ticket, made_up, record_at_hub
from troth.authority import Ticket
from troth.node import membership
from troth.node.membership import RESUME_AFTER, RESUME_BACKOFF
from troth.node.runtime import NodeRuntime
from troth.node.services import call

DAY = 24 * 3600


def test_a_newer_record_dated_ahead_at_no_address_holds_back_the_older_for_a_while(
    tmp_path: Path,
) -> None:
    """T1 redeemed (its answer lost); T2 of the same authority recorded with the clock a day
    ahead, naming an address nothing listens at (never resolving); the clock set back: T1 is
    held back only until T2's wait from first seen is over, then completes (one credential),
    T2 still pending."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        wallet = agent.node.wallet
        record_at_hub(net, agent, hub_ticket(net, "one"), redeemed=True)
        net.clock.advance(DAY)
        newer = hub_ticket(net, "other")
        nowhere = Ticket(newer.code, newer.authority_history, HUB.replace("hub", "nowhere"))
        record_at_hub(net, agent, nowhere, redeemed=False)
        net.clock.advance(-DAY + RESUME_AFTER)
        assert await agent.resume_enrollments() == 0  # T1 held back: T2 first seen now
        for _ in range(3):
            net.clock.advance(2 * RESUME_BACKOFF)
            await agent.maintain()
        assert len(wallet.held("agent")) == 1
        [left] = wallet.pending_enrollments("agent")
        assert left.address == nowhere.address

    run_memnet(test, tmp_path)


def test_a_record_completed_elsewhere_while_its_request_is_out_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T1, T2 of one identity and a made-up T3, due in one round (T2 and T1 one after the other,
    `_one_at_a_time`): while T2's request is out, another process completes T2 (clearing T1):
    the round ends without an error, T1 skipped, one credential in all."""
    calls: list[int] = []

    async def clearing_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        answer = await call(*args, **kwargs)
        if len(calls) == 2:  # T2 completed meanwhile by another process (the same answer)
            wallet, now = agent_box[0].node.wallet, agent_box[0].clock.now()
            newer = max(wallet.pending_enrollments("agent"), key=lambda p: p.started_at)
            wallet.complete_enrollment(newer, answer, now=now)
        return answer

    monkeypatch.setattr(membership, "call", clearing_second)
    agent_box: list[NodeRuntime] = []

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        agent_box.append(agent)
        wallet = agent.node.wallet
        tickets = [hub_ticket(net, team) for team in ("one", "other")]
        for made in (*tickets, made_up(tickets[0])):
            record_at_hub(net, agent, made, redeemed=False)
            net.clock.advance(1)
        net.clock.advance(RESUME_AFTER)
        assert await agent.resume_enrollments() == 1
        assert wallet.pending_enrollments("agent") == []
        assert len(wallet.held("agent")) == 1
        assert len(calls) == 2  # T3 refused, T2; T1 not sent

    run_memnet(test, tmp_path)
