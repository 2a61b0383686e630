"""Review 61r (adversarial review of review 61p's resumption order).

Enrollment 1: after the first record of an address and authority reached it, each identity's
others went one after the other, newest first (`_one_at_a_time`), whatever became of the one
before: a newer one whose answer was lost (the authority committed it, no answer came: its
outcome unknown) was followed by an older one, which completed; the newer stayed pending (an
older one completing clears no newer), was sent again the next round and completed too (its
request replayed): a second credential for one member, as review 61p enrollment 2 had it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.support.pending import hub_ticket, made_up, record_at_hub
from troth.errors import RoutingError
from troth.node import membership
from troth.node.membership import RESUME_AFTER, RESUME_BACKOFF
from troth.node.services import call


def test_a_newer_record_whose_answer_is_lost_holds_back_the_older(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T1, T2 valid (their requests never arrived), a made-up T3, one address and authority,
    due in one round: T3 refused for good (the address reached), T2 committed by the hub but
    its answer lost, then T1 sent: it completed, T2 stayed, resent the next round."""
    calls: list[int] = []

    async def losing_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        answer = await call(*args, **kwargs)
        if len(calls) == 2:  # T2: committed by the authority, its answer lost
            raise RoutingError("the answer lost")
        return answer

    monkeypatch.setattr(membership, "call", losing_second)

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        wallet = agent.node.wallet
        tickets = [hub_ticket(net, team) for team in ("one", "other")]
        for made in (*tickets, made_up(tickets[0])):
            record_at_hub(net, agent, made, redeemed=False)
        net.clock.advance(RESUME_AFTER)
        await agent.maintain()
        for _ in range(3):
            net.clock.advance(2 * RESUME_BACKOFF)
            await agent.maintain()
        assert wallet.pending_enrollments("agent") == []
        assert len(wallet.held("agent")) == 1, "a second credential for one member"

    run_memnet(test, tmp_path)
