"""Review 25 (authority): the refresh bound (MAX_LIVE_CREDENTIALS_PER_MEMBER, 16; at it a refresh
revokes the newest live credential, an entry charged to the member's quota, and issues:
`Authority._check_live`, review 24a authority 1) and review 23a's bound on what removing a
member writes (16 entries at most).

1. `enroll` issues without `_check_live`. A member with the enroller role creates member tickets
   (no `troth.*` attribute) at will and redeems each itself: every redemption by an existing
   member merges the ticket's attributes and issues a credential of its own. 40 self-made
   tickets are 41 live credentials; removing the enroller then writes 41 feed entries, none
   charged to any quota (the removal is the authority's): review 23a authority 2's flood,
   through the other door. Fix: `enroll` of an existing member goes through `_check_live`
   too (or answers its live credential).
2. The bound's revocations are charged to the quota the member needs for its own revocations
   (`revoke_link` of a link it delegated: `payer = member`). An orchestrator that revoked its
   jobs' links as they finished (here 10 within the hour, the authority's configured quota;
   DEFAULT_REVOCATION_QUOTA is 100) and whose refresh answers were then lost for 16 rounds
   (8 minutes of a slow authority: review 24a's case) is refused a credential once its link
   heals (QUOTA_EXCEEDED, "try again in 42 min"; its credential expires in 2): review 24a
   authority 1's lockout is back for any member that revokes. Within its credential's life it
   also could no longer revoke a delegate gone bad, for lost answers it did not cause (the
   delegates have a second budget for the same reason: "a delegate cannot spend what its
   delegator needs"). Fix: at the bound, answer the newest live credential again (a member
   that asks again never got it) instead of revoking it and issuing: no feed entry, no quota.
3. "The newest is one it never got" holds only for lost answers. A member whose answers all
   arrive but who refreshes more often than TTL / 16 (`troth credential refresh` run every 3
   minutes by a supervisor or a cron job; several processes refreshing for one identity) holds
   the newest: at the bound each of its refreshes revokes the credential it holds, presents on
   its channels and delegated its agents' links under (each agent cut off until re-delegated),
   and spends its quota doing so. The fix of 2 answers such a refresh with the credential it
   holds.

Fixed (`Authority._issue_bounded`, which replaced `_check_live`): a refresh and an enrollment go
through the bound, and at it are answered the newest live credential again, as it went out;
only one whose attributes the member no longer has (a re-enrollment that merged a ticket's) is
revoked, charged to the member's quota, and a new one issued.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.test_review23a_authority import ORDERS
from troth import limits
from troth.authority import ENROLLER, Authority
from troth.authority.client import enroll_request, refresh_request, revoke_request
from troth.credentials import (
    Attributes,
    CredentialBody,
    CredentialChain,
    RevocationKind,
    delegate,
)
from troth.errors import AuthorityError, AuthorityFailure
from troth.node import Node, init_node, open_node

ROUND = 30  # troth.node.runtime.MAINTENANCE_SECONDS
MARGIN = 600  # troth.node.runtime.REFRESH_MARGIN
TTL = 3600  # the authority's default credential lifetime
QUOTA = 10


@pytest.fixture
def acme(troth_home: Path) -> Iterator[tuple[Authority, Node]]:
    init_node("acme-node")
    init_node("members")
    with open_node("acme-node") as node, open_node("members") as members:
        yield node.create_authority("acme", now=NOW, revocation_quota=QUOTA), members


def _enroll(authority: Authority, members: Node, name: str, **ticket: object) -> CredentialChain:
    issued = authority.create_ticket(
        creator=authority.identifier,
        attributes=ORDERS,
        address="node:acme-node",
        now=NOW,
        **ticket,  # type: ignore[arg-type]
    )
    members.identities.create(now=NOW, name=name)
    return authority.enroll(enroll_request(members.identities, name, issued, now=NOW), now=NOW)


def test_an_enroller_redeeming_its_own_tickets_stays_within_the_removal_bound(
    acme: tuple[Authority, Node],
) -> None:
    authority, members = acme
    _enroll(authority, members, "e", role=ENROLLER)
    enroller = members.identities.get("e", now=NOW).identifier
    for n in range(1, 41):
        own = authority.create_ticket(
            creator=enroller, attributes=ORDERS, address="node:acme-node", now=NOW + n
        )
        request = enroll_request(members.identities, "e", own, now=NOW + n)
        authority.enroll(request, now=NOW + n)
    before = authority.store.revocation_tip()[0]
    authority.remove_member(enroller, now=NOW + 41)
    assert authority.store.revocation_tip()[0] - before <= limits.MAX_LIVE_CREDENTIALS_PER_MEMBER


def test_an_enroller_changing_its_attributes_at_the_bound_pays_from_its_quota(
    acme: tuple[Authority, Node],
) -> None:
    """At the bound a redemption whose ticket changes the member's attributes cannot be
    answered the newest again: the newest is revoked, an entry charged to the member's quota,
    and a credential with the attributes issued. An enroller redeeming tickets it made itself,
    each with a value of its own, writes its quota and no more; its removal the bound."""
    authority, members = acme
    _enroll(authority, members, "e", role=ENROLLER)
    enroller = members.identities.get("e", now=NOW).identifier
    bound = limits.MAX_LIVE_CREDENTIALS_PER_MEMBER

    def redeem(at: int, value: str) -> CredentialChain:
        own = authority.create_ticket(
            creator=enroller,
            attributes=Attributes({"orders.access": value}),
            address="node:acme-node",
            now=at,
        )
        return authority.enroll(enroll_request(members.identities, "e", own, now=at), now=at)

    for n in range(1, bound):  # the same attributes, up to the bound
        redeem(NOW + n, "read")
    start = authority.store.revocation_tip()[0]
    refused: list[AuthorityFailure] = []
    for n in range(bound, bound + 2 * QUOTA):
        try:
            chain = redeem(NOW + n, f"v{n}")
        except AuthorityError as exc:
            refused.append(exc.reason)
            continue
        granted = CredentialBody.decode(chain.credentials[0].body).attributes
        assert granted["orders.access"] == f"v{n}"
    assert authority.store.revocation_tip()[0] - start == QUOTA
    assert refused == [AuthorityFailure.QUOTA_EXCEEDED] * QUOTA
    before = authority.store.revocation_tip()[0]
    authority.remove_member(enroller, now=NOW + bound + 2 * QUOTA)
    assert authority.store.revocation_tip()[0] - before == bound


def test_a_member_that_revoked_its_delegates_refreshes_after_lost_answers(
    acme: tuple[Authority, Node],
) -> None:
    authority, members = acme
    chain = _enroll(authority, members, "m")
    # an orchestrator: a job's link per delegate, revoked when the job is done (its quota, in
    # the 10 minutes before its credential's refresh margin)
    for job in range(QUOTA):
        at = NOW + TTL - MARGIN - 60 * (QUOTA - job)
        below = members.identities.create(now=at, name=f"job-{job}").identifier
        link = delegate(
            members.identities.signer("m", now=at),
            chain,
            subject=below,
            attributes=ORDERS,
            now=at,
            ttl=600,
            purpose="job",
        )
        request = revoke_request(
            members.identities,
            "m",
            authority.identifier,
            credential_hash=link.credentials[-1].hash,
            chain=link.encode(),
            reason="done",
            now=at,
        )
        authority.revoke_link(request, now=at)

    def refresh(at: int) -> CredentialChain:
        request = refresh_request(members.identities, "m", authority.identifier, now=at)
        return authority.refresh(request, now=at)

    # from the margin on, a round each 30 s: the authority takes each request, the answers
    # never reach the member (review 24a, authority 1); 16 rounds, 8 minutes
    for at in range(NOW + TTL - MARGIN, NOW + TTL - MARGIN + 16 * ROUND, ROUND):
        with contextlib.suppress(AuthorityError):  # (a refusal is lost with the rest)
            refresh(at)
    healed = NOW + TTL - MARGIN + 16 * ROUND  # its credential expires in 2 minutes
    assert len(refresh(healed).credentials) == 1


def test_a_frequent_refresh_does_not_revoke_the_credential_the_member_holds(
    acme: tuple[Authority, Node],
) -> None:
    authority, members = acme
    held = _enroll(authority, members, "m")
    for n in range(1, limits.MAX_LIVE_CREDENTIALS_PER_MEMBER):  # every 3 minutes, answered
        at = NOW + 180 * n
        held = authority.refresh(
            refresh_request(members.identities, "m", authority.identifier, now=at), now=at
        )
    at = NOW + 180 * limits.MAX_LIVE_CREDENTIALS_PER_MEMBER
    agent = members.identities.create(now=at, name="agent").identifier
    link = delegate(
        members.identities.signer("m", now=at),
        held,
        subject=agent,
        attributes=ORDERS,
        now=at,
        ttl=600,
        purpose="job",
    )
    request = refresh_request(members.identities, "m", authority.identifier, now=at)
    authority.refresh(request, now=at)
    root = link.credentials[0].hash  # the member's credential its agent's link hangs from
    assert authority.store.find_revocation(RevocationKind.CREDENTIAL, root) is None


def test_at_the_bound_a_member_holds_a_valid_credential_until_the_count_falls(
    acme: tuple[Authority, Node],
) -> None:
    """The newest, answered again at the bound, expires last: 16 credentials that went out in
    a burst near its start (several processes refreshing for one identity) leave a member
    that refreshes near expiry answered that newest, and issued a new one once the oldest
    expired, before the newest did; nothing is written to the feed."""
    authority, members = acme
    _enroll(authority, members, "m")

    def refresh(at: int) -> CredentialChain:
        request = refresh_request(members.identities, "m", authority.identifier, now=at)
        return authority.refresh(request, now=at)

    burst = [refresh(NOW + n) for n in range(1, limits.MAX_LIVE_CREDENTIALS_PER_MEMBER)]
    start = authority.store.revocation_tip()[0]
    newest = burst[-1].credentials[0]
    for at in range(NOW + TTL - MARGIN, NOW + TTL, ROUND):  # near expiry: the newest again
        assert refresh(at).credentials[0] == newest
    expires = CredentialBody.decode(newest.body).expires_at
    fresh = CredentialBody.decode(refresh(NOW + TTL).credentials[0].body)  # the oldest expired
    assert expires > NOW + TTL
    assert fresh.expires_at == NOW + 2 * TTL
    assert authority.store.revocation_tip()[0] == start


def test_at_the_bound_one_issued_before_a_rotation_in_the_same_second_is_not_answered_again(
    acme: tuple[Authority, Node],
) -> None:
    """A credential issued in the second of the authority's rotation, before it, still counts
    as live (its history's change began that second), but its key's attestation is the older
    change's: with the rotated history it would verify nowhere, so it is not answered again."""
    authority, members = acme
    _enroll(authority, members, "m")

    def refresh() -> bytes:
        request = refresh_request(members.identities, "m", authority.identifier, now=NOW)
        return authority.refresh(request, now=NOW).credentials[0].hash

    before = [refresh() for _ in range(1, limits.MAX_LIVE_CREDENTIALS_PER_MEMBER)]
    assert refresh() == before[-1]  # at the bound: answered again
    authority.identities.rotate("acme", now=NOW)
    assert refresh() not in before
