"""Review 61l, refuted: attacks on the pending enrollments kept one per ticket that did not work.

Each test is a real attempt and fails if the defence breaks: a completion with one authority
clearing the pending enrollments of another identity or of another authority (only the
records of its own identity and authority recorded before it go); `troth credential refresh`
resuming both of two pending tickets of one authority to get a second credential for one
member (the newest completes and clears the older, which is not sent).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.enroll import acme_and_agent, acme_ticket, enroll_answer_lost, enroll_in_process
from tests.support.nodes import MemNet, run_memnet
from tests.support.pending import enroll_unreachable, hub_ticket, record_at_hub
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.node import init_node, open_node
from troth.node.authorities import resume_locally
from troth.node.membership import RESUME_AFTER

NOW = 1_800_000_000


def test_a_completion_clears_no_other_identitys_or_authoritys_record(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        init_node("beta", home=tmp_path)
        with open_node("beta", home=tmp_path) as beta:
            other = beta.create_authority("beta", now=NOW)
            beta_ticket = other.create_ticket(
                creator=other.identifier, attributes=Attributes({}), address="node:beta", now=NOW
            )
        agent.identities.create(now=NOW, name="reader")
        for ref, older in (("agent", beta_ticket), ("reader", acme_ticket(authority, NOW))):
            enroll_unreachable(agent, ref, older, clock)  # before agent's acme enrollments
        enroll_answer_lost(agent, "agent", authority, ticket, clock)
        enroll_in_process(agent, "agent", authority, acme_ticket(authority, NOW), clock)
        assert [p.authority for p in agent.wallet.pending_enrollments("agent")] == [
            other.identifier.digest
        ]
        assert len(agent.wallet.pending_enrollments("reader")) == 1


def test_refresh_resuming_two_tickets_of_one_authority_gets_one_credential(
    tmp_path: Path,
) -> None:
    """T1 redeemed (answer lost), T2 valid (its request failed): resumed newest first, T2
    completes and clears T1, which is not sent again (it would be answered with T1's recorded
    credential: a second one held for one member)."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW))
        second = acme_ticket(authority, NOW)
        enroll_unreachable(agent, "agent", second, FixedClock(NOW + 10))
        assert len(agent.wallet.pending_enrollments("agent")) == 2
        resumed, remote, failed = resume_locally(agent, "agent", clock=FixedClock(NOW + 60))
        assert (len(resumed), remote, failed) == (1, [], [])
        assert resumed[0].resumed is not None
        assert resumed[0].resumed.ticket == str(second)
        assert len(agent.wallet.held("agent")) == 1
        assert resumed[0].credential.links[-1].subject == member
        assert agent.wallet.pending_enrollments("agent") == []


def test_the_nodes_round_resuming_two_tickets_of_one_authority_gets_one_credential(
    tmp_path: Path,
) -> None:
    """The same through a running node's maintenance, over a secure channel: the records of
    one address and authority go newest first, and one cleared meanwhile is skipped. Both
    started the same second, the older one's ticket text the greater: the records' order by
    start (then ticket) put the newer one first only by chance."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        wallet = agent.node.wallet
        tickets = [hub_ticket(net, team) for team in ("one", "other")]
        tickets.sort(key=str, reverse=True)  # the first enrollment's the greater
        for i, ticket in enumerate(tickets):  # the first's answer lost; the second never arrived
            record_at_hub(net, agent, ticket, redeemed=i == 0)
        assert len(wallet.pending_enrollments("agent")) == 2
        net.clock.advance(RESUME_AFTER)
        await agent.maintain()
        assert len(wallet.held("agent")) == 1  # one credential for one member
        assert wallet.pending_enrollments("agent") == []

    run_memnet(test, tmp_path)
