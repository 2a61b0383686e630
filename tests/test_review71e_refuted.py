"""Review 71e, attacks on the shared ticket quota that did not work (tests/test_review71e_quota.py).

With the members one ticket enrolled sharing its quota (review 70q feeds 2), whoever holds a
ticket of many uses can spend what every member of that ticket needs. These are the attacks
past that ticket's members that were tried.
"""

from __future__ import annotations

from tests.conftest import NOW
from tests.test_authority import ORDERS, Setup
from tests.test_review71e_quota import member, refused, setup, strict
from troth.credentials import CredentialChain

__all__ = ["setup", "strict"]  # the fixtures, shared


def test_one_tickets_members_cannot_spend_another_tickets_quota(strict: Setup) -> None:
    """Tried: the members of one ticket spend its quota, then a member of another ticket (and
    one of a single-use ticket) revokes: each is charged to its own ticket, and is taken."""
    first, second = strict.ticket(uses=2), strict.ticket(uses=2)
    member(strict, "a0", first)
    member(strict, "a1", first)
    member(strict, "b0", second)
    member(strict, "alone", strict.ticket())
    assert not refused(strict, "a0")
    assert refused(strict, "a1")
    assert not refused(strict, "b0")
    assert not refused(strict, "alone")


def test_the_authoritys_own_revocations_are_never_refused(strict: Setup) -> None:
    """Tried: a ticket's members spend its quota, then the authority revokes a link of one of
    them and removes another (its credentials revoked): neither is charged, both are written."""
    ticket = strict.ticket(uses=2)
    member(strict, "c0", ticket)
    member(strict, "c1", ticket)
    assert not refused(strict, "c0")
    assert refused(strict, "c1")
    below = strict.agents.wallet.delegate(
        "c1", to=strict.id("c1-sub"), attributes=ORDERS, now=NOW, ttl=60, purpose="z"
    )
    length = strict.feed_length()
    target = CredentialChain.decode(below).credentials[-1].hash
    assert strict.authority.revoke_credential(target, now=NOW) == length
    assert strict.authority.remove_member(strict.id("c1"), now=NOW)
    assert strict.feed_length() > length + 1


def test_a_repeat_of_an_enrollment_gives_no_fresh_quota(strict: Setup) -> None:
    """Tried: a member of a ticket of many uses that spent its quota repeats its enrollment
    with that ticket (answered with its credential, no use taken): still the ticket's quota,
    refused, as is the next member that ticket enrolls."""
    ticket = strict.ticket(uses=3)
    member(strict, "e0", ticket)
    assert not refused(strict, "e0")
    strict.enroll("e0", ticket)
    assert refused(strict, "e0")
    member(strict, "e1", ticket)
    assert refused(strict, "e1")
