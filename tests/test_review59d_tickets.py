"""Review 59d, tickets: an enrollment ticket's window when the authority's clock ran ahead.

Tickets 1: a ticket made while the authority's clock ran ahead lives its TTL plus the clock's
error. A ticket's window is `expires_at = now + ttl` read at its making, and a redemption
compares only that expiry with the clock (`UPDATE tickets ... WHERE expires_at > ?`): a
10-minute ticket made by a clock a year ahead (a host restored with a wrong RTC, NTP spoofed
forward) stays redeemable for a year once the clock is corrected, and the authority's sweeps
(`forget_expired_tickets`: review 55c, tickets 1, the mirror case of a clock set back) never
delete it. A copy of it seen by someone else (a shell's history, a log, a screen: what a
one-time code's short life is for) enrolls whoever holds it all that time. Review 55c closed the
clock set back past an expiry; nothing looks at the ticket's `created_at`, which the store
keeps.

Fixed in the authority's store (troth.storage.sqlite_authority): `redeem_ticket` also
requires `created_at <= now + MAX_CLOCK_SKEW_SECONDS`, and `forget_tickets` also deletes the
tickets made more than MAX_CLOCK_SKEW_SECONDS after `now` (made by a clock since set back:
their window is not known; deny when in doubt, as a clock run ahead deletes the tickets it
finds expired), with `find_redemption` kept as it is (a member's repeat is answered as its
refresh would be).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent, acme_ticket, enroll_in_process
from troth.clock import FixedClock
from troth.errors import AuthorityError, AuthorityFailure

NOW = 1_800_000_000
DAY = 86_400


def test_a_ticket_made_by_a_clock_ahead_does_not_outlive_its_ttl(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, _ticket):
        ahead = acme_ticket(authority, NOW + 365 * DAY, ttl=600)  # the clock a year ahead
        authority.forget_expired_tickets(now=NOW + 60)  # corrected; its node runs a round
        with pytest.raises(AuthorityError) as caught:
            enroll_in_process(agent, "agent", authority, ahead, FixedClock(NOW + 30 * DAY))
        assert caught.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert authority.members() == []
