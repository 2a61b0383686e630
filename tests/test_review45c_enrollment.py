"""Review 45c, enrollment: an identity the authority revoked for good (`revoke_identity`).

Enrollment 1. `Authority.revoke_identity` removes the member and writes a kind-2 (identity)
entry: "every link it issued or holds stops verifying", for good. But `enroll` never asked
the feed: the revoked identity, redeeming any ticket it holds (a second use of a multi-use
ticket shared with its team, one handed to it before the revocation, or one an attacker
holding the stolen key was given), took a use of the ticket, became a member again — with the
ticket's attributes and role: an `enroller` role lets it create tickets for fresh identities
that nothing revokes — and was issued a credential (a row charged to no quota, a member VC the
CLI would export). Was a strict xfail until `enroll` refused an identity revoked in the
authority's own feed (NOT_A_MEMBER) before taking the ticket's use.

Enrollment 2. A ticket records who created it (an admin or an `enroller` member), and
`create_ticket` checks that role; nothing checked it again at redemption. So the tickets an
enroller made — up to MAX_TICKET_USES uses each, valid up to MAX_TTL — kept making members
after the authority removed that enroller or revoked its identity for good (its key stolen:
the thief's first act is a ticket of a million uses for a year). A revoked identity's links
stop verifying; its tickets went on. Was a strict xfail until a redemption checked that the
ticket's creator still holds the role `create_ticket` asked of it (TICKET_UNKNOWN, the use
not taken).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent
from troth.authority import ENROLLER
from troth.authority.client import enroll_request
from troth.credentials import Attributes
from troth.errors import AuthorityError, AuthorityFailure

NOW = 1_800_000_000


def test_an_identity_revoked_for_good_cannot_enroll_again(tmp_path: Path) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        authority.enroll(enroll_request(agent.identities, "agent", ticket, now=NOW), now=NOW)
        shared = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes(),
            address="node:acme",
            now=NOW,
            uses=5,
            role=ENROLLER,
        )
        authority.revoke_identity(member, now=NOW + 1, reason="key stolen")
        request = enroll_request(agent.identities, "agent", shared, now=NOW + 2)
        with pytest.raises(AuthorityError) as caught:
            authority.enroll(request, now=NOW + 2)
        assert caught.value.reason is AuthorityFailure.NOT_A_MEMBER
        assert authority.store.get_member(member.digest) is None
        assert authority.roles_of(member) == frozenset()
        # no use of the shared ticket was taken: four others and a fifth still redeem it
        for n in range(5):
            name = f"teammate-{n}"
            agent.identities.create(now=NOW, name=name)
            again = enroll_request(agent.identities, name, shared, now=NOW + 3)
            authority.enroll(again, now=NOW + 3)


@pytest.mark.parametrize("cut_off", ["revoked", "removed"])
def test_a_ticket_outlives_no_standing_of_the_enroller_that_made_it(
    tmp_path: Path, cut_off: str
) -> None:
    with acme_and_agent(tmp_path, NOW) as (authority, agent, enroller, _ticket):
        enroller_ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes(),
            address="node:acme",
            now=NOW,
            role=ENROLLER,
        )
        request = enroll_request(agent.identities, "agent", enroller_ticket, now=NOW)
        authority.enroll(request, now=NOW)
        made = authority.create_ticket(
            creator=enroller,
            attributes=Attributes({"team.name": "x"}),
            address="node:acme",
            now=NOW,
            uses=1000,
            ttl=86_400,
        )
        if cut_off == "revoked":
            authority.revoke_identity(enroller, now=NOW + 1, reason="key stolen")
        else:
            authority.remove_member(enroller, now=NOW + 1)
        stranger = agent.identities.create(now=NOW, name="stranger").identifier
        with pytest.raises(AuthorityError) as caught:
            authority.enroll(
                enroll_request(agent.identities, "stranger", made, now=NOW + 2), now=NOW + 2
            )
        assert caught.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert authority.store.get_member(stranger.digest) is None
