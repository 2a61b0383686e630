"""Review 61c, authority: findings on the authority's tickets, enrollment and feed.

Authority 1: a member's throwaway delegates each had a supersession budget of their own, so one
member caused feed entries past its quota without bound. docs/credentials.md ("Nobody can flood
the feed") says what a member's delegates ask is one budget ("delegating to throwaway
identities buys nothing, since every delegate shares the second"), and a delegate's own request
(`revoke_link`'s `_learn`) charges its supersession to the delegates' shared account. But the
issuer histories a revoke request's chain shows (`Revoking._keep_issuers`, review 57o) were each
published charged to that issuer's own supersession budget: a member makes K delegates (free),
each is stored by the authority's node when it shows its chain over a channel (as every
admitted peer's chain issuers are), rotates up to MAX_IDENTITY_CHANGES times, and the member's
revoke requests carrying their rotated histories publish K x 63 supersessions, K unbounded,
until the members' part of the feed is full (FEED_LIMIT for every other member's revocation).

Fixed in `Revoking._keep_issuers`: a delegate's supersession (an issuer below the member at the
root of the chain) is charged to the member's delegates' account (`delegates_of`), as its own
request's is; the member's own, to the member. A budget spent still leaves the history stored.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.enroll import (
    acme_and_agent,
    acme_ticket,
    enroll_answer_lost,
    enroll_in_process,
    resume_in_process,
)
from troth.authority import Ticket
from troth.authority.client import revoke_request
from troth.clock import FixedClock
from troth.credentials import Attributes, CredentialChain, delegate, issue_credential
from troth.errors import AuthorityError, AuthorityFailure
from troth.identity import Identifier, verify_history
from troth.node import init_node, open_node

NOW = 1_800_000_000
ORDERS = Attributes({"orders.access": "read"})


def test_a_members_delegates_share_one_supersession_budget(tmp_path: Path) -> None:
    init_node("acme", home=tmp_path)
    init_node("agents", home=tmp_path)
    with open_node("acme", home=tmp_path) as acme, open_node("agents", home=tmp_path) as agents:
        authority = acme.create_authority("acme", now=NOW, revocation_quota=1)
        ids = agents.identities
        member = ids.create(now=NOW, name="member").identifier
        enroll_in_process(agents, "member", authority, acme_ticket(authority, NOW), FixedClock(NOW))
        delegates = [ids.create(now=NOW, name=f"d{i}").identifier for i in range(3)]
        below = ids.create(now=NOW, name="below").identifier
        for i in range(3):  # stored as the node stores an admitted peer's chain issuers
            authority.identities.observe(verify_history(ids.export(f"d{i}"), now=NOW))
            ids.rotate(f"d{i}", now=NOW + 10)  # rotations cost nothing
        now = NOW + 20
        signer = authority.signer(now)
        root = issue_credential(
            signer, subject=member, attributes=ORDERS, now=now, ttl=600, depth=4
        )
        chain = CredentialChain((root,), (signer.identity.history,))
        for ref, subject in (
            ("member", delegates[0]),
            ("d0", delegates[1]),
            ("d1", delegates[2]),
            ("d2", below),
        ):
            chain = delegate(
                ids.signer(ref, now=now),
                chain,
                subject=subject,
                attributes=ORDERS,
                now=now,
                ttl=600,
                purpose="job",
            )
        request = revoke_request(
            ids,
            "member",
            authority.identifier,
            credential_hash=chain.credentials[-1].hash,
            chain=chain.encode(),
            reason="",
            now=now,
        )
        authority.revoke_link(request, now=now)
        published = [d for d in delegates if authority.store.latest_supersession(d.digest)]
        assert len(published) <= 1, f"{len(published)} supersessions on a quota of 1"
        for i in range(3):  # each rotation is stored all the same (review 57g)
            assert authority.identities.stored_changes(Identifier(delegates[i].digest)) == 2


def test_a_refused_ticket_leaves_the_interrupted_enrollment_it_replaced(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, ticket):
        enroll_answer_lost(agent, "agent", authority, ticket, clock)  # acme made her a member
        bogus = Ticket(os.urandom(32), ticket.authority_history, ticket.address)  # made up
        with pytest.raises(AuthorityError) as refused:
            enroll_in_process(agent, "agent", authority, bogus, FixedClock(NOW + 10))
        assert refused.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert authority.member(member)  # a member at acme, holding nothing:
        assert not agent.wallet.held("agent")
        (pending,) = agent.wallet.pending_enrollments("agent")  # her first one still resumes
        done = resume_in_process(agent, pending, authority, FixedClock(NOW + 20))
        assert done.credential.links[-1].subject == member
