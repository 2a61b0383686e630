"""Review 38c, enroll: an enrollment interrupted after the authority committed it (a crash of
the holder, or of the authority right after its commit, or the answer lost on the way) and
resumed once the ticket's window (DEFAULT_TICKET_TTL: 10 minutes) had passed.

The authority answered a repeat of the enrollment with the credential it recorded only while
the ticket's window lasted; after it, the repeat was refused as `ticket unknown, used up or
expired`, a refusal for good, so the holder deleted its pending record. The identity was left
a member at the authority (its ticket used, a credential issued) holding no credential and no
trust in the authority's address: nothing left to resume it with (`troth credential refresh`
knows only authorities a credential or a pending record names), stranded until an operator
made it a new ticket. A node down for more than ten minutes (the holder's restart, an outage
of the authority's node) is all it takes.

Was a strict xfail until `Authority.enroll` answered a repeat by the member that redeemed the
ticket, after its window, as that member's refresh would be (`AuthorityStore.redeemed`,
`_issue_bounded`): a signed request by that very member, so nothing a refresh would not give
it. Anyone else's repeat after the window is still `ticket unknown`
(tests/test_authority.py::test_after_the_tickets_window_only_its_redeemer_is_answered).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent, enroll_answer_lost, resume_in_process
from tests.support.nodes import HUB, MemNet, run_memnet
from troth.authority.core import DEFAULT_TICKET_TTL
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.enrollment import enrollment, request_of
from troth.errors import AuthorityError, AuthorityFailure
from troth.identity import Identifier
from troth.node import open_node
from troth.node.membership import RESUME_AFTER

NOW = 1_800_000_000


def _interrupted(tmp_path: Path) -> tuple[FixedClock, Identifier]:
    """acme (authority) and agent (member `agent`): agent's enrollment committed at acme, the
    answer lost (what a crash at `authority.enroll.after-commit` or `holder.enroll.before-
    commit` leaves: a pending record, a redemption). Returns the clock and agent's identifier."""
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, clock)
        assert len(agent.wallet.pending_enrollments("agent")) == 1
        assert agent.wallet.held("agent") == []
    return clock, member


def test_an_enrollment_resumed_after_the_tickets_window_completes(tmp_path: Path) -> None:
    clock, member = _interrupted(tmp_path)
    clock.advance(DEFAULT_TICKET_TTL + 60)  # the holder's node was down for 11 minutes
    with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
        authority = acme.authority()
        assert authority.member(member).identifier == member  # a member at acme
        (pending,) = agent.wallet.pending_enrollments("agent")
        enrolled = resume_in_process(agent, pending, authority, clock)
        assert enrolled.authority == authority.identifier
        (held,) = agent.wallet.held("agent")
        assert held.authority == authority.identifier.digest
        assert agent.wallet.pending_enrollments("agent") == []


def test_after_the_window_a_removed_member_is_told_so(tmp_path: Path) -> None:
    """Review 38c, enroll 1: a member removed since it redeemed the ticket is answered `not a
    member` after the window too (as within it), not `ticket unknown` (its pending record is
    then forgotten: tests/test_review56g_removal.py)."""
    clock, member = _interrupted(tmp_path)
    with open_node("acme", home=tmp_path) as acme:
        acme.authority().remove_member(member, now=clock.now())
    clock.advance(DEFAULT_TICKET_TTL + 60)
    with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
        authority = acme.authority()
        (pending,) = agent.wallet.pending_enrollments("agent")
        with pytest.raises(AuthorityError) as refused:
            resume_in_process(agent, pending, authority, clock)
        assert refused.value.reason is AuthorityFailure.NOT_A_MEMBER
        assert agent.wallet.held("agent") == []


@pytest.mark.parametrize("local", [False, True], ids=["over-a-channel", "node-on-this-machine"])
def test_a_restarted_node_resumes_its_interrupted_enrollment(tmp_path: Path, local: bool) -> None:
    """Review 38c, enroll 2. A running node enrolls over a secure channel (`troth enroll`
    through the node, a remote ticket) and is killed once the request left: the authority
    committed it, the answer never arrived, the node restarts (its supervisor) with the
    pending record. Nothing in the node resumed it: its maintenance refreshes credentials
    only from authorities it already trusts, and the record waited for an operator to run
    `troth enroll` or `troth credential refresh` again, within the ticket's ten minutes
    (enroll 1: after them the member is stranded). The same with a `node:NAME` ticket.

    Was a strict xfail until the node's maintenance resumed interrupted enrollments once
    RESUME_AFTER seconds old (`troth.node.membership.resume_enrollments`)."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        wallet = agent.node.wallet
        authority = net.authority
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "support"}),
            address="node:hub" if local else HUB,
            now=net.clock.now(),
        )
        steps = enrollment(agent.node.identities, wallet, "agent", ticket, clock=net.clock)
        request = request_of(steps)  # the pending record committed, the request sent
        net.authority.enroll(request, now=net.clock.now())  # committed there; answer lost
        steps.close()
        assert len(wallet.pending_enrollments("agent")) == 1
        assert wallet.held("agent") == []
        await agent.maintain()  # too young: `troth enroll` may still be carrying it
        assert wallet.held("agent") == []
        net.clock.advance(RESUME_AFTER)
        await agent.maintain()  # the restarted node's next round
        (held,) = wallet.held("agent")
        assert held.authority == net.authority.identifier.digest
        assert wallet.pending_enrollments("agent") == []

    run_memnet(test, tmp_path)
