"""Review 71p (area: pools): attacks on the pools a ticket's members draw on that did not work,
kept as passing tests (tests/test_review71p_pools.py holds the one that did)."""

from __future__ import annotations

import pytest

from tests.conftest import NOW
from troth import limits
from troth.authority.budgets import RequestBudgets
from troth.errors import AuthorityError


def test_a_tickets_fleet_spending_its_request_budgets_leaves_other_members_theirs() -> None:
    """Tried (71h wave2a 3's starvation, for enroll and refresh requests): the members one
    ticket of many uses enrolled (more than MAX_ENROLL_REQUEST_SOURCES of them) each spend
    their request budget (`AuthorityService._charge` charges a member's by its own account),
    the first ten all of it: a single-use ticket's member, and another ticket's, are still
    served. The members' request budgets draw on no pool they share (each member's own only,
    and past the bound the oldest is forgotten, starting full), so a fleet sending N
    members' requests costs the authority what N members do, and refuses no one else: no
    second tier is needed there (unlike feed pages, review 71p pools 1)."""
    budgets = RequestBudgets()
    fleet = [n.to_bytes(32, "big") for n in range(limits.MAX_ENROLL_REQUEST_SOURCES + 1)]
    for member in fleet[:10]:
        for _ in range(limits.ENROLL_REQUESTS_BURST):
            budgets.charge(member, member=True, now=NOW)
        with pytest.raises(AuthorityError, match="at most"):
            budgets.charge(member, member=True, now=NOW)
    for member in fleet[10:]:
        budgets.charge(member, member=True, now=NOW)
    for other in (b"\xfe" * 32, b"\xff" * 32):  # a single-use member; another ticket's
        budgets.charge(other, member=True, now=NOW)
