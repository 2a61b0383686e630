"""Review 24a, authority: review 23a's bound on a member's live credentials
(MAX_LIVE_CREDENTIALS_PER_MEMBER; `Authority._issue_bounded`) against an honest member.

Authority 1: a refresh is not idempotent. A node refreshes in each maintenance round
(MAINTENANCE_SECONDS, 30 s) once its credential is within REFRESH_MARGIN (600 s) of expiry, and
retries next round when its call fails. When the authority is slow (its answers come after the
caller gave up) or the answers are lost, each retry still issues a credential the member never
holds, and every one counts as live. After 16 such rounds the member is refused until the
oldest of those it never got expires: once the link is healthy again, the member — its own
credential expired meanwhile — was refused for most of a credential's lifetime (here 48 min
of the hour). Before review 23a it got a credential at the first answer that arrived. Fixed:
at the bound a refresh revoked the newest live credential (one it never got), an entry charged
to the member's quota, and issued; since review 25 (authority 2) it is answered the newest
again instead, nothing written or charged (`Authority._issue_bounded`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.test_review23a_authority import ORDERS
from troth.authority import Authority
from troth.authority.client import enroll_request, refresh_request
from troth.credentials import CredentialBody
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import Node, init_node, open_node

ROUND = 30  # troth.node.runtime.MAINTENANCE_SECONDS
MARGIN = 600  # troth.node.runtime.REFRESH_MARGIN
TTL = 3600  # the authority's default credential lifetime


@pytest.fixture
def member(troth_home: Path) -> Iterator[tuple[Authority, Node]]:
    init_node("acme-node")
    init_node("members")
    with open_node("acme-node") as node, open_node("members") as members:
        authority = node.create_authority("acme", now=NOW)
        ticket = authority.create_ticket(
            creator=authority.identifier, attributes=ORDERS, address="node:acme-node", now=NOW
        )
        members.identities.create(now=NOW, name="m")
        authority.enroll(enroll_request(members.identities, "m", ticket, now=NOW), now=NOW)
        yield authority, members


def test_a_member_whose_refresh_answers_were_lost_refreshes_once_they_arrive(
    member: tuple[Authority, Node],
) -> None:
    authority, members = member

    def refresh(at: int) -> CredentialBody:
        request = refresh_request(members.identities, "m", authority.identifier, now=at)
        return CredentialBody.decode(authority.refresh(request, now=at).credentials[0].body)

    refused: list[AuthorityFailure] = []
    # from the margin on, a round each 30 s until after its credential expired (NOW + TTL):
    # the authority takes each request; the answers never reach the member
    for at in range(NOW + TTL - MARGIN, NOW + TTL + 4 * ROUND, ROUND):
        try:
            refresh(at)
        except AuthorityError as exc:
            refused.append(exc.reason)
    # at the bound (review 23a) each refresh is answered the newest again (review 25; review
    # 24a revoked it, charged to the member): none refused
    assert refused == []
    healed = NOW + TTL + 5 * ROUND  # the link works again; the member holds nothing valid
    assert refresh(healed).expires_at > healed
