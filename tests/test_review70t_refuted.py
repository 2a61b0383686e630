"""Review 70t, enroll: attacks on enrollment tickets and member enrollment that did NOT work,
kept as passing tests (each docstring says what was tried)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent, acme_ticket, enroll_in_process
from troth import enrollment
from troth.authority import Authority
from troth.authority.budgets import RequestBudgets
from troth.authority.client import enroll_request
from troth.authority.requests import make_request
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.errors import AuthorityError, AuthorityFailure
from troth.limits import (
    ENROLL_REQUESTS_BURST,
    MAX_CLOCK_SKEW_SECONDS,
    MAX_ENROLL_REQUEST_SOURCES,
)
from troth.node import Node, init_node, open_node

NOW = 1_800_000_000
A = AuthorityFailure


def _refused(authority: Authority, request: bytes, reason: AuthorityFailure) -> None:
    with pytest.raises(AuthorityError) as refused:
        authority.enroll(request, now=NOW)
    assert refused.value.reason is reason, refused.value


def _request(agent: Node, name: str, authority: Authority, arguments: Sequence[object]) -> bytes:
    """An enroll request by local identity `name` (made now) with `arguments`."""
    signer = agent.identities.signer(name, now=NOW)
    return make_request(signer, "enroll", authority.identifier, list(arguments), now=NOW)


def test_one_identity_racing_its_ticket_on_many_connections_takes_one_use(
    tmp_path: Path,
) -> None:
    """70t refuted 1: one identity sends its enrollment with one ticket (two uses) on eight
    connections at once (its own SQLite connection each), hoping each takes a use and gets a
    credential of its own. One use is taken and every connection gets the same credential;
    the ticket's other use still enrolls another identity, and a third is refused."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, _one_use):
        ticket = acme_ticket(authority, NOW, uses=2)
        requests = [enroll_request(agent.identities, "agent", ticket, now=NOW) for _ in range(8)]
        barrier = threading.Barrier(len(requests))
        answers: list[bytes] = []
        errors: list[BaseException] = []

        def redeem(request: bytes) -> None:
            barrier.wait()
            try:
                answers.append(authority.enroll(request, now=NOW).encode())
            except AuthorityError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=redeem, args=(r,)) for r in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=15)
        assert errors == []
        assert len(answers) == 8
        assert len(set(answers)) == 1
        for name in ("second", "third"):
            agent.identities.create(now=NOW, name=name)
        authority.enroll(enroll_request(agent.identities, "second", ticket, now=NOW), now=NOW)
        _refused(
            authority,
            enroll_request(agent.identities, "third", ticket, now=NOW),
            A.TICKET_UNKNOWN,
        )
        assert len(authority.members()) == 2


def test_a_ticket_copied_after_its_use_enrolls_no_one_else(tmp_path: Path) -> None:
    """70t refuted 2: the ticket's text copied out of a shell's history once it was used, and
    redeemed by the copier's own identity (within the window and at its last second): refused
    TICKET_UNKNOWN, and the member that used it keeps its credential."""
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        enroll_in_process(agent, "agent", authority, ticket, clock)
        agent.identities.create(now=NOW, name="copier")
        _refused(
            authority,
            enroll_request(agent.identities, "copier", Ticket.parse(str(ticket)), now=NOW),
            A.TICKET_UNKNOWN,
        )
        assert len(authority.members()) == 1
        assert len(agent.wallet.held("agent")) == 1


def test_a_ticket_redeems_before_its_expiry_never_at_it(tmp_path: Path) -> None:
    """70t refuted 3: a ticket redeemed at the very second of its expiry (`now ==
    expires_at`), and one whose request is dated within the skew before it but reaches the
    authority at its expiry: both refused TICKET_UNKNOWN (expires_at is exclusive at the
    authority's clock); a second earlier it redeems."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, _ticket):
        ttl = 600
        ticket = acme_ticket(authority, NOW, ttl=ttl)
        at_expiry = enroll_request(agent.identities, "agent", ticket, now=NOW + ttl)
        with pytest.raises(AuthorityError) as refused:
            authority.enroll(at_expiry, now=NOW + ttl)
        assert refused.value.reason is A.TICKET_UNKNOWN
        early = enroll_request(agent.identities, "agent", ticket, now=NOW + ttl - 10)
        with pytest.raises(AuthorityError) as late:
            authority.enroll(early, now=NOW + ttl)
        assert late.value.reason is A.TICKET_UNKNOWN
        other = acme_ticket(authority, NOW, ttl=ttl)
        last = enroll_request(agent.identities, "agent", other, now=NOW + ttl - 1)
        authority.enroll(last, now=NOW + ttl - 1)
        assert len(authority.members()) == 1


def test_a_ticket_of_one_authority_enrolls_nowhere_else(tmp_path: Path) -> None:
    """70t refuted 4: authority acme's ticket presented to authority beta (another node's),
    its request addressed to acme (REQUEST_INVALID) or re-signed to beta with acme's code
    (TICKET_UNKNOWN): beta makes no member, and the ticket still enrolls at acme."""
    init_node("beta", home=tmp_path)
    with (
        acme_and_agent(tmp_path, NOW) as (acme, agent, _member, ticket),
        open_node("beta", home=tmp_path) as beta_node,
    ):
        beta = beta_node.create_authority("beta", now=NOW)
        to_acme = enroll_request(agent.identities, "agent", ticket, now=NOW)
        _refused(beta, to_acme, A.REQUEST_INVALID)
        _refused(beta, _request(agent, "agent", beta, [ticket.code]), A.TICKET_UNKNOWN)
        assert beta.members() == []
        acme.enroll(to_acme, now=NOW)
        assert len(acme.members()) == 1


def test_a_request_dated_past_the_skew_takes_no_use(tmp_path: Path) -> None:
    """70t refuted 5: an enroll request dated past the clock skew (ahead and behind), hoping
    its use is taken before the date is judged (the member then refused, the ticket spent):
    CLOCK_SKEW before anything is written; the ticket then redeems."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        skew = MAX_CLOCK_SKEW_SECONDS + 1
        ahead = enroll_request(agent.identities, "agent", ticket, now=NOW + skew)
        _refused(authority, ahead, A.CLOCK_SKEW)
        behind = enroll_request(agent.identities, "agent", ticket, now=NOW)
        with pytest.raises(AuthorityError) as late:
            authority.enroll(behind, now=NOW + skew)
        assert late.value.reason is A.CLOCK_SKEW
        authority.enroll(enroll_request(agent.identities, "agent", ticket, now=NOW), now=NOW)
        assert len(authority.members()) == 1


def test_malformed_and_nested_enroll_arguments_take_no_use(tmp_path: Path) -> None:
    """70t refuted 6: enroll requests whose arguments are the code twice, the code nested
    deep in arrays, a code of the wrong type or length, or empty: REQUEST_INVALID (or
    TICKET_UNKNOWN for a code of another length) and no use taken; the ticket then redeems."""
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        nested: object = ticket.code
        for _ in range(20):
            nested = [nested]
        for arguments, reason in (
            ([ticket.code, ticket.code], A.REQUEST_INVALID),
            ([nested], A.REQUEST_INVALID),
            ([ticket.code.hex()], A.REQUEST_INVALID),
            ([], A.REQUEST_INVALID),
            ([ticket.code + b"\x00"], A.TICKET_UNKNOWN),
        ):
            _refused(authority, _request(agent, "agent", authority, arguments), reason)
        authority.enroll(enroll_request(agent.identities, "agent", ticket, now=NOW), now=NOW)
        assert len(authority.members()) == 1


def test_two_interleaved_enrollments_of_one_ticket_hold_one_credential(tmp_path: Path) -> None:
    """70t refuted 7: the holder side of a race: two enrollments of one identity with one
    ticket (`troth enroll` while the node resumes it) both send before either completes, and
    complete one after the other: the authority answers both with one credential, the holder
    holds it once and nothing stays pending."""
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        steps = [
            enrollment.enrollment(agent.identities, agent.wallet, "agent", ticket, clock=clock)
            for _ in range(2)
        ]
        requests = [enrollment.request_of(s) for s in steps]
        answers = [authority.enroll(r, now=NOW).encode() for r in requests]
        assert answers[0] == answers[1]
        for step, answer in zip(steps, answers, strict=True):
            enrollment.complete(step, answer)
        assert len(agent.wallet.held("agent")) == 1
        assert agent.wallet.pending_enrollments("agent") == []


def test_a_flood_of_enroll_requests_spends_only_its_sources_budget() -> None:
    """70t refuted 8: a flood of enroll requests from one network (past its burst: refused
    RATE_LIMITED, nothing spent) and from more networks than the budgets remember (each
    evicting another), hoping to spend a member's budget or leave a new stranger refused:
    members are budgeted apart, and a new network always has its burst."""
    budgets = RequestBudgets()
    burst = ENROLL_REQUESTS_BURST
    for _ in range(burst):
        budgets.charge("flooder", member=False, now=NOW)
    with pytest.raises(AuthorityError) as limited:
        budgets.charge("flooder", member=False, now=NOW)
    assert limited.value.reason is A.RATE_LIMITED
    for source in range(MAX_ENROLL_REQUEST_SOURCES + 16):
        for _ in range(burst):
            budgets.charge(("net", source), member=False, now=NOW)
    for _ in range(burst):
        budgets.charge("member", member=True, now=NOW)
        budgets.charge("newcomer", member=False, now=NOW)
    with pytest.raises(AuthorityError):
        budgets.charge("member", member=True, now=NOW)
