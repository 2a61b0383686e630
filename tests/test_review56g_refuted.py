"""Review 56g: attacks tried on the authority's enrollment that did not work (each test fails
if its defence breaks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent, acme_ticket, enroll_in_process
from troth.authority.tickets import code_hash
from troth.clock import FixedClock
from troth.errors import AuthorityError, AuthorityFailure
from troth.limits import REDEMPTION_GRACE_SECONDS

NOW = 1_800_000_000
TTL = 3600


def test_a_ticket_whose_redemption_was_pruned_redeems_nothing_again(tmp_path: Path) -> None:
    """Redemptions 2's pruning against replay: agent redeems one use of a two-use ticket and
    repeats it within the window (answered with the credential recorded, no second use); past
    the expiry and the grace its redemption is deleted. Its repeat then, and at a clock set
    back into the ticket's window, is `ticket unknown` (the ticket went at its expiry, before
    its redemption could): no use, no member, no credential for anyone."""
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, _):
        ticket = acme_ticket(authority, NOW, uses=2, ttl=TTL)
        first = enroll_in_process(agent, "agent", authority, ticket, clock)
        again = enroll_in_process(agent, "agent", authority, ticket, clock)
        assert again.credential.links[-1].hash == first.credential.links[-1].hash
        authority.forget_expired_tickets(now=NOW + TTL + REDEMPTION_GRACE_SECONDS)
        assert not authority.store.redeemed(code_hash(ticket.code), member.digest)
        agent.identities.create(now=NOW, name="other")
        for when in (NOW + TTL + REDEMPTION_GRACE_SECONDS, NOW + 60):
            for ref in ("agent", "other"):
                with pytest.raises(AuthorityError) as refused:
                    enroll_in_process(agent, ref, authority, ticket, FixedClock(when))
                assert refused.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert [m.identifier for m in authority.members()] == [member]
