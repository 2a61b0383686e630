"""Review 56g, removal 1: a member removed at the authority while its enrollment was pending at
the holder (the authority committed it, the answer was lost) kept that pending record. Its
resumption is answered `not a member of this authority` (the authority finds the redemption
and no member, or after the ticket's window the member's refresh would be refused), and that
answer never changes for that ticket: a removed member becomes one again only by another
ticket, whose enrollment replaces the record. But the holder deleted its record only on
`ticket unknown`, so a running node sent it again at each backoff (up to an hour) for a week
(`RESUME_FOR`), each one an enroll request the authority checked in full, and kept it after.

Was a strict xfail until the holder takes `not a member` to an enroll request as a refusal for
good too (`troth.enrollment._refused_for_good`), and forgets the pending record.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.enroll import (
    acme_and_agent,
    acme_ticket,
    enroll_answer_lost,
    enroll_in_process,
    resume_in_process,
)
from troth.authority.core import DEFAULT_TICKET_TTL
from troth.cli.main import cli
from troth.clock import FixedClock
from troth.errors import AuthorityError, AuthorityFailure

NOW = 1_800_000_000


@pytest.mark.parametrize("late", [0, DEFAULT_TICKET_TTL + 60], ids=["in-window", "after"])
def test_a_removed_members_pending_enrollment_is_forgotten(tmp_path: Path, late: int) -> None:
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, clock)
        authority.remove_member(member, now=clock.now())
        clock.advance(late + 60)
        (pending,) = agent.wallet.pending_enrollments("agent")
        with pytest.raises(AuthorityError) as refused:
            resume_in_process(agent, pending, authority, clock)
        assert refused.value.reason is AuthorityFailure.NOT_A_MEMBER
        assert agent.wallet.pending_enrollments("agent") == []  # nothing left to resend
        assert agent.wallet.held("agent") == []


def test_troth_credential_refresh_says_a_removed_members_enrollment_is_dropped(
    troth_home: Path,
) -> None:
    """Removal 2: `troth credential refresh` resumes the pending enrollment, refused for good
    (`not a member`) and forgotten, and said `it stays pending`."""
    now = int(time.time())
    clock = FixedClock(now)
    with acme_and_agent(troth_home, now) as (authority, agent, member, ticket):
        enroll_in_process(agent, "agent", authority, ticket, clock)
        enroll_answer_lost(agent, "agent", authority, acme_ticket(authority, now), clock)
        authority.remove_member(member, now=now)
    result = CliRunner().invoke(cli, ["credential", "refresh", "agent", "--node", "agent"])
    assert "not a member" in result.stderr
    assert "stays pending" not in result.stderr
    assert "dropped" in result.stderr
