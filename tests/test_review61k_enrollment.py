"""Review 61k, enrollment: the review of review 61c's `_give_up` (troth.enrollment).

Enrollment 1: a ticket the authority refuses for good puts back the interrupted enrollment it
had replaced (review 61c, enrollment 1), but not only while that enrollment is unfinished: the
node resumes an interrupted enrollment on its own (`resumption`, its answer lost before), and
when that resumption completes while the operator's `troth enroll` with another ticket (which
replaced its record) waits for the authority, the refusal of that other ticket writes the
completed enrollment's record back. The identity then holds the credential AND an interrupted
enrollment of it, which the node resumes again at each round (a second enroll request, and
after the ticket's window a fresh credential issued as a refresh would be: a duplicate
enrollment), and `troth enroll` reports it pending. Fixed by review 61l's redesign: pending
enrollments are kept one per ticket (troth.credentials.pending), a refusal forgets only its own
ticket's record and nothing is put back.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent, enroll_answer_lost, resume_in_process
from troth import enrollment
from troth.authority import Ticket
from troth.clock import FixedClock
from troth.errors import AuthorityError, AuthorityFailure

NOW = 1_800_000_000


def test_a_refused_ticket_does_not_put_back_an_enrollment_completed_meanwhile(
    tmp_path: Path,
) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW))  # acme made her
        (first,) = agent.wallet.pending_enrollments("agent")  # the node's resumer reads it
        bogus = Ticket(os.urandom(32), ticket.authority_history, ticket.address)
        clock = FixedClock(NOW + 10)
        steps = enrollment.enrollment(agent.identities, agent.wallet, "agent", bogus, clock=clock)
        request = next(steps)  # `troth enroll` with another ticket: its record replaced hers
        done = resume_in_process(agent, first, authority, FixedClock(NOW + 11))  # the node's
        assert done.credential.links[-1].subject == member
        with pytest.raises(AuthorityError) as refused:
            steps.throw(_answer(authority, request, NOW + 12))
        assert refused.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert agent.wallet.held("agent")  # she holds her credential, and nothing is pending
        assert agent.wallet.pending_enrollments("agent") == []


def _answer(authority: object, request: bytes, now: int) -> AuthorityError:
    """The authority's refusal of `request` (an exception to throw into the steps)."""
    try:
        authority.enroll(request, now=now)  # type: ignore[attr-defined]
    except AuthorityError as exc:
        return exc
    raise AssertionError("the made-up ticket was taken")
