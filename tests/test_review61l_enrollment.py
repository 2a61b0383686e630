"""Review 61l, enrollment 1: an interrupted enrollment was lost when an enrollment with another
ticket for the same authority failed for a passing reason first and was refused for good later.

A member's first enrollment with authority acme (ticket T1) was redeemed, its answer lost: it
sits pending (acme made the member; the holder holds no credential). The holder runs
`troth enroll` with another ticket T2 for acme. T2's pending record REPLACED T1's when T2
started (one record per identity and authority). Review 61c (enrollment 1) put T1's back when
T2 was refused for good at once; but when T2's request failed for a passing reason (the
network down, the authority busy), the node resumed T2 later (`troth.enrollment.resumption`,
which knew nothing of T1), and when acme then refused T2 for good, T1's record was gone: the
member acme made could never get its credential.
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
from tests.support.pending import enroll_unreachable, made_up
from troth import limits
from troth.authority import Ticket
from troth.cli.main import cli
from troth.clock import FixedClock
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import Node, membership
from troth.storage import PendingEnrollmentRecord

NOW = 1_800_000_000
CLOCK = FixedClock(NOW + 200)


def _records(agent: Node, ticket: Ticket) -> list[PendingEnrollmentRecord]:
    return [p for p in agent.wallet.pending_enrollments("agent") if p.ticket == str(ticket)]


def _pending(agent: Node) -> list[str]:
    return [p.ticket for p in agent.wallet.pending_enrollments("agent")]


def test_a_ticket_refused_for_good_when_resumed_leaves_the_enrollment_before_it(
    tmp_path: Path,
) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW))  # a member now
        second = made_up(ticket)
        enroll_unreachable(agent, "agent", second, FixedClock(NOW + 10))
        (resumed,) = _records(agent, second)
        with pytest.raises(AuthorityError) as refused:  # the node's resumption, later
            resume_in_process(agent, resumed, authority, FixedClock(NOW + 100))
        assert refused.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert authority.member(member)  # a member at acme, holding nothing:
        assert not agent.wallet.held("agent")
        assert _pending(agent) == [str(ticket)], "the member acme made is stranded"
        (first,) = agent.wallet.pending_enrollments("agent")
        done = resume_in_process(agent, first, authority, FixedClock(NOW + 200))
        assert done.credential.links[-1].subject == member
        assert _pending(agent) == []


def test_troth_credential_refresh_lists_and_resumes_both_pending_enrollments(
    troth_home: Path,
) -> None:
    """What the CLI shows: both pending enrollments resumed (`resuming the enrollment
    interrupted at ...` for each), the made-up ticket dropped, the first one completed."""
    now = int(time.time())
    with acme_and_agent(troth_home, now) as (authority, agent, _member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(now))
        enroll_unreachable(agent, "agent", made_up(ticket), FixedClock(now))
        assert len(_pending(agent)) == 2, "the first enrollment was given up"
    result = CliRunner().invoke(cli, ["credential", "refresh", "agent", "--node", "agent"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("resuming the enrollment interrupted at") == 2
    assert "dropped: the authority refused it for good" in result.stderr
    assert "stays pending" not in result.stderr


def test_the_second_ticket_completing_clears_the_first(tmp_path: Path) -> None:
    """T2 failing for a passing reason, then resumed and completed: the credential is held
    once, and T1's record goes with T2's in that commit (given up: the operator's newer ticket
    made the holder a member; it is what `Enrolled.replaced` reports)."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW))
        second = acme_ticket(authority, NOW)
        enroll_unreachable(agent, "agent", second, FixedClock(NOW + 10))
        (resumed,) = _records(agent, second)
        done = resume_in_process(agent, resumed, authority, FixedClock(NOW + 100))
        assert done.credential.links[-1].subject == member
        assert len(agent.wallet.held("agent")) == 1
        assert _pending(agent) == []


def test_enroll_again_with_the_second_ticket_completes_and_clears_both(tmp_path: Path) -> None:
    """`troth enroll` with T2 again (the same ticket: resumed, not a third record)."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW))
        second = acme_ticket(authority, NOW)
        enroll_unreachable(agent, "agent", second, FixedClock(NOW + 10))
        done = enroll_in_process(agent, "agent", authority, second, FixedClock(NOW + 20))
        assert done.resumed is not None
        assert done.resumed.ticket == str(second)
        assert done.credential.links[-1].subject == member
        assert _pending(agent) == []


def test_past_the_bound_a_new_ticket_gives_up_the_oldest(tmp_path: Path) -> None:
    """MAX_PENDING_PER_AUTHORITY records per identity and authority: `troth enroll` with ever
    more tickets failing for a passing reason no longer grows the table without bound."""
    bound = limits.MAX_PENDING_PER_AUTHORITY
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW))
        others = [made_up(ticket) for _ in range(bound)]
        for i, other in enumerate(others):
            enroll_unreachable(agent, "agent", other, FixedClock(NOW + i + 1))
        assert _pending(agent) == [str(t) for t in others]  # the oldest, the first, given up
        done = enroll_in_process(agent, "agent", authority, acme_ticket(authority, NOW), CLOCK)
        assert done.replaced is not None
        assert done.replaced.ticket == str(others[0])  # the oldest its completion cleared
        assert _pending(agent) == []


def test_the_nodes_rounds_reach_records_of_one_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two records of one identity and authority started the same second: the node's cursor
    over the records (`Resumption.choose`, one record a page here) reaches both (keyed by
    (started_at, identity, authority) alone, it skipped the second)."""
    monkeypatch.setattr(membership, "RESUME_SCANNED_PER_ROUND", 1)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW))
        enroll_unreachable(agent, "agent", made_up(ticket), FixedClock(NOW))
        state, later = membership.Resumption(), NOW + membership.RESUME_AFTER
        chosen = [state.choose(agent.wallet, later) for _ in range(3)]
        assert sorted(p.ticket for (p,) in chosen[:2]) == sorted(_pending(agent))


def test_an_earlier_troth_still_writes_the_rebuilt_table(tmp_path: Path) -> None:
    """The table keeps its columns: an earlier troth's `INSERT OR REPLACE ... VALUES (5)` and
    `DELETE ... AND ticket = ?` work on it (node.db's schema version is unchanged)."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, FixedClock(NOW))
        (first,) = agent.wallet.pending_enrollments("agent")
        row = (first.identifier, first.authority, "troth-ticket:x", first.address, NOW + 1)
        agent.db.execute("INSERT OR REPLACE INTO pending_enrollments VALUES (?, ?, ?, ?, ?)", row)
        assert _pending(agent) == [str(ticket), "troth-ticket:x"]
        done = resume_in_process(agent, first, authority, CLOCK)
        assert done.replaced is None  # the newer one stays
        assert _pending(agent) == ["troth-ticket:x"]
