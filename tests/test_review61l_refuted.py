"""Review 61l, refuted: attacks on the pending enrollments kept one per ticket that did not work.

Each test is a real attempt and fails if the defence breaks: a completion with one authority
clearing the pending enrollments of another identity or of another authority (only the
records of its own identity and authority recorded before it go); `troth credential refresh`
resuming both of two pending tickets of one authority to get a second credential for one
member (the newest completes and clears the older, which is not sent).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from tests.support.enroll import acme_and_agent, acme_ticket, enroll_answer_lost, enroll_in_process
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.enrollment import enroll
from troth.errors import RemoteError
from troth.node import init_node, open_node
from troth.node.authorities import resume_locally

NOW = 1_800_000_000


def _unreachable(request: bytes) -> bytes:
    raise RemoteError("no route to the authority")


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
            with contextlib.suppress(RemoteError):  # recorded before agent's acme enrollments
                enroll(agent.identities, agent.wallet, ref, older, clock=clock, send=_unreachable)
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
        with contextlib.suppress(RemoteError):
            enroll(
                agent.identities,
                agent.wallet,
                "agent",
                second,
                clock=FixedClock(NOW + 10),
                send=_unreachable,
            )
        assert len(agent.wallet.pending_enrollments("agent")) == 2
        resumed, remote, failed = resume_locally(agent, "agent", clock=FixedClock(NOW + 60))
        assert (len(resumed), remote, failed) == (1, [], [])
        assert resumed[0].resumed is not None
        assert resumed[0].resumed.ticket == str(second)
        assert len(agent.wallet.held("agent")) == 1
        assert resumed[0].credential.links[-1].subject == member
        assert agent.wallet.pending_enrollments("agent") == []
