"""Review 57g (identity rotation), authority: a member's stolen pre-rotation key against the
authority's requests, the request itself carrying her rotated history.

Authority 1: a thief holding a member's pre-rotation keys (a copy of her node) signs a revoke
request for a link she delegated AFTER her rotation. The request carries her rotated history
(the chain's issuer history of that link, which the authority verifies) and the thief's
requester history, her older one. An authority that has not stored her rotation yet (her
announcement pending: it was away when she rotated) takes the thief's older history as the
requester and writes the revocation: it verified the newer history in the very request and
neither stored it (`Revoking._check_issuers` only checks) nor judged the requester by it.

Authority 2: the same unstored word, by an honest request. Her delegate revokes a link it made
below her, the chain carrying her rotated history (verified, not stored); the thief's refresh
as her right after, with her older history, is answered with a fresh credential for her
identifier: the authority verified her rotation and forgot it (the lesson of the first review:
store every history when it is verified).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth.authority import Authority
from troth.authority.client import enroll_request, refresh_request, revoke_request
from troth.credentials import (
    Attributes,
    CredentialChain,
    RevocationKind,
    delegate,
    issue_credential,
)
from troth.errors import AuthorityError, AuthorityFailure
from troth.identity import Identifier
from troth.node import Node, init_node, open_node

ORDERS = Attributes({"orders.access": "read"})


@dataclass
class Member:
    authority: Authority
    member: Node  # her node, rotated after the copy was taken
    thief: Node  # the copy of her node (her pre-rotation keys)
    sub: Identifier
    below: Identifier


@pytest.fixture
def member(troth_home: Path) -> Iterator[Member]:
    """acme's authority (on node auth) has stored member's history (as her enrollment does);
    thief is a copy of member's node taken then; member rotates (acme not told)."""
    for name in ("auth", "agents"):
        init_node(name)
    with open_node("auth") as node:
        node.create_authority("acme", now=NOW)
        authority = node.authority()
        assert authority is not None
        ticket = authority.create_ticket(
            creator=authority.identifier, attributes=ORDERS, address="node:auth", now=NOW
        )
    with open_node("agents") as agents:
        agents.identities.create(now=NOW, name="member")
        sub = agents.identities.create(now=NOW, name="sub").identifier
        below = agents.identities.create(now=NOW, name="below").identifier
        request = enroll_request(agents.identities, "member", ticket, now=NOW)
    with open_node("auth") as node:
        authority = node.authority()
        assert authority is not None
        authority.enroll(request, now=NOW)  # acme stores her history (one change)
    shutil.copytree(troth_home / "nodes" / "agents", troth_home / "nodes" / "thief")
    with open_node("auth") as node, open_node("agents") as agents, open_node("thief") as thief:
        agents.identities.rotate("member", now=NOW + 10)  # acme is away: not announced
        authority = node.authority()
        assert authority is not None
        yield Member(authority, agents, thief, sub, below)


def _link_after_rotation(member: Member, now: int) -> CredentialChain:
    """acme's root for member, and a link she delegates to sub under her rotated history."""
    signer = member.authority.signer(now)
    identifier = member.member.identities.find("member").identifier
    root = issue_credential(
        signer, subject=Identifier(identifier), attributes=ORDERS, now=now, ttl=3600, depth=4
    )
    return delegate(
        member.member.identities.signer("member", now=now),
        CredentialChain((root,), (signer.identity.history,)),
        subject=member.sub,
        attributes=ORDERS,
        now=now,
        ttl=600,
        purpose="job",
    )


def _revoke_as(
    node: Node, member: Member, link: CredentialChain, now: int, ref: str = "member"
) -> bytes:
    """`ref` of `node` asks acme to revoke the last link of `link`."""
    return revoke_request(
        node.identities,
        ref,
        member.authority.identifier,
        credential_hash=link.credentials[-1].hash,
        chain=link.encode(),
        reason="",
        now=now,
    )


def test_a_pre_rotation_key_cannot_revoke_a_link_delegated_after_the_rotation(
    member: Member,
) -> None:
    now = NOW + 20
    link = _link_after_rotation(member, now)
    request = _revoke_as(member.thief, member, link, now)
    with pytest.raises(AuthorityError) as refused:
        member.authority.revoke_link(request, now=now)
    assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
    assert not _revoked(member, link)


def test_her_own_key_revokes_it(member: Member) -> None:
    """The control: the same revocation signed by her (rotated) node is written."""
    now = NOW + 20
    link = _link_after_rotation(member, now)
    member.authority.revoke_link(_revoke_as(member.member, member, link, now), now=now)
    assert _revoked(member, link)


def _revoked(member: Member, link: CredentialChain) -> bool:
    kind = int(RevocationKind.CREDENTIAL)
    return member.authority.store.find_revocation(kind, link.credentials[-1].hash) is not None


def test_a_rotation_a_revoke_request_showed_is_kept(member: Member) -> None:
    now = NOW + 20
    link = _link_after_rotation(member, now)
    below = delegate(
        member.member.identities.signer("sub", now=now),
        link,
        subject=member.below,
        attributes=ORDERS,
        now=now,
        ttl=300,
        purpose="job",
    )
    request = _revoke_as(member.member, member, below, now, ref="sub")
    member.authority.revoke_link(request, now=now)  # her delegate's: written
    stale = refresh_request(member.thief.identities, "member", member.authority.identifier, now=now)
    with pytest.raises(AuthorityError) as refused:
        member.authority.refresh(stale, now=now)
    assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
    identifier = Identifier(member.member.identities.find("member").identifier)
    assert member.authority.identities.stored_changes(identifier) == 2
