"""Review 65 (lead), enrollment 1: an enrollment's answer was held as whatever chain rooted at
the ticket's authority came back, where a refresh's answer is held only as that authority's
member credential (one link: review 35a, refresh 1). An authority (or whatever answered for
it) could answer an enrollment with a delegation chain rooted at itself, caveated, short-lived
or narrowed by a middle holder, and the node held it as its member credential (found by helper
65f, left as low). Now `complete_enrollment` holds the answer with the same one-link rule:
UNTRUSTED_ISSUER before anything is stored, and the pending record stays.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent, acme_ticket, enroll_in_process
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.enrollment import enroll
from troth.errors import CredentialError, CredentialFailure

NOW = 1_800_000_000


def test_enrollment1_an_answer_of_two_links_is_not_held_as_the_member_credential(
    tmp_path: Path,
) -> None:
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        agent.identities.create(now=NOW, name="middle")
        enroll_in_process(agent, "middle", authority, acme_ticket(authority, NOW), clock)
        delegated = agent.wallet.delegate(
            "middle",
            to=member,
            attributes=Attributes({"team.name": "x"}),
            now=NOW,
            ttl=600,
            purpose="narrowed",
            caveats=('context.ticket == "1"',),
        )

        def send(request: bytes) -> bytes:
            authority.enroll(request, now=clock.now())  # the ticket used; the answer swapped
            return delegated

        with pytest.raises(CredentialError) as caught:
            enroll(agent.identities, agent.wallet, "agent", ticket, clock=clock, send=send)
        assert caught.value.reason is CredentialFailure.UNTRUSTED_ISSUER
        assert "2 links" in str(caught.value)
        assert agent.wallet.held("agent") == []
        assert len(agent.wallet.pending_enrollments("agent")) == 1
