"""Review 23a, authority: what a stolen pre-rotation backup of the authority's node can still
make the (rotated) authority do."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth import limits
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
from troth.node import Node, init_node, open_node

ORDERS = Attributes({"orders.access": "read"})


@dataclass
class Stolen:
    authority: Authority  # the real one, rotated after the backup was taken
    thief: Node  # the stolen backup of the authority's node (the old key)
    agents: Node  # identities the thief makes up

    def forged_revocation(self, n: int, now: int) -> bytes:
        """A fresh identity, a root credential for it forged with the stolen (pre-rotation)
        authority key, a link it delegates, and its signed request to revoke that link."""
        name, sub = f"throwaway-{n}", f"throwaway-{n}-sub"
        member = self.agents.identities.create(now=NOW, name=name).identifier
        below = self.agents.identities.create(now=NOW, name=sub).identifier
        old = self.thief.identities.signer("acme", now=now)
        root = issue_credential(old, subject=member, attributes=ORDERS, now=now, ttl=3600, depth=4)
        chain = CredentialChain((root,), (old.identity.history,))
        link = delegate(
            self.agents.identities.signer(name, now=now),
            chain,
            subject=below,
            attributes=ORDERS,
            now=now,
            ttl=600,
            purpose="throwaway",
        )
        target = link.credentials[-1].hash
        return revoke_request(
            self.agents.identities,
            name,
            self.authority.identifier,
            credential_hash=target,
            chain=link.encode(),
            reason="",
            now=now,
        )


@pytest.fixture
def stolen(troth_home: Path) -> Iterator[Stolen]:
    init_node("auth")
    init_node("agents")
    with open_node("auth") as node:
        node.create_authority("acme", now=NOW, revocation_quota=3)
    # the thief's copy: the authority's node home before its rotation (key and all)
    shutil.copytree(troth_home / "nodes" / "auth", troth_home / "nodes" / "thief")
    with open_node("auth") as node, open_node("thief") as thief, open_node("agents") as agents:
        node.identities.rotate("acme", now=NOW + 10)  # the owner rotates the stolen key away
        authority = node.authority()
        assert authority is not None
        yield Stolen(authority, thief, agents)


def test_a_stolen_pre_rotation_authority_key_cannot_write_the_feed(stolen: Stolen) -> None:
    """After the authority rotated, its old key from a stolen backup forges member roots for
    throwaway identities; each asks the real authority to revoke a link below it. The
    authority must refuse every such chain (issued under a history it retired) and write
    nothing: here 10 forged members against a quota of 3 each."""
    now = NOW + 20
    before = stolen.authority.store.revocation_tip()[0]
    for n in range(10):
        request = stolen.forged_revocation(n, now)
        with pytest.raises(AuthorityError) as caught:
            stolen.authority.revoke_link(request, now=now)
        assert caught.value.reason is AuthorityFailure.REQUEST_INVALID
        assert "older history of the authority" in caught.value.detail
    assert stolen.authority.store.revocation_tip()[0] == before


def test_the_rotated_authoritys_own_chains_still_revoke(stolen: Stolen) -> None:
    """The control: a chain the authority issues under its current history still lets its
    member revoke a link it delegated (charged to the member's quota)."""
    now = NOW + 20
    member = stolen.agents.identities.create(now=NOW, name="member").identifier
    below = stolen.agents.identities.create(now=NOW, name="member-sub").identifier
    signer = stolen.authority.signer(now)
    root = issue_credential(signer, subject=member, attributes=ORDERS, now=now, ttl=3600, depth=4)
    link = delegate(
        stolen.agents.identities.signer("member", now=now),
        CredentialChain((root,), (signer.identity.history,)),
        subject=below,
        attributes=ORDERS,
        now=now,
        ttl=600,
        purpose="job",
    )
    request = revoke_request(
        stolen.agents.identities,
        "member",
        stolen.authority.identifier,
        credential_hash=link.credentials[-1].hash,
        chain=link.encode(),
        reason="done",
        now=now,
    )
    before = stolen.authority.store.revocation_tip()[0]
    assert stolen.authority.revoke_link(request, now=now) == before
    assert stolen.authority.store.revocation_tip()[0] == before + 1


@pytest.fixture
def acme(troth_home: Path) -> Iterator[tuple[Authority, Node]]:
    init_node("acme-node")
    init_node("members")
    with open_node("acme-node") as node, open_node("members") as members:
        yield node.create_authority("acme", now=NOW), members


def test_a_members_refreshes_do_not_flood_the_feed_at_its_removal(
    acme: tuple[Authority, Node],
) -> None:
    """A member sends refresh requests at will within its credential's hour (a million would
    fill a quarter of the feed). Removing it must not write an entry for each: at its bound of
    live credentials a refresh is answered the newest again, nothing written (review 25,
    authority 2, which replaced review 24a's revocation of the newest charged to the member's
    quota), so its refreshes write nothing and its removal writes at most the bound."""
    authority, members = acme
    ticket = authority.create_ticket(
        creator=authority.identifier, attributes=ORDERS, address="node:acme-node", now=NOW
    )
    members.identities.create(now=NOW, name="m")
    authority.enroll(enroll_request(members.identities, "m", ticket, now=NOW), now=NOW)
    member = members.identities.get("m", now=NOW).identifier

    def refresh(at: int) -> None:
        request = refresh_request(members.identities, "m", authority.identifier, now=at)
        authority.refresh(request, now=at)

    live, quota = limits.MAX_LIVE_CREDENTIALS_PER_MEMBER, limits.DEFAULT_REVOCATION_QUOTA
    start = authority.store.revocation_tip()[0]
    sent = live - 1 + quota + 1  # the enrollment's credential is live too; past the quota
    for n in range(sent):
        refresh(NOW + n)
    assert authority.store.revocation_tip()[0] == start  # none written, none refused
    before = authority.store.revocation_tip()[0]
    authority.remove_member(member, now=NOW + sent)
    assert authority.store.revocation_tip()[0] - before == live  # its bound, no more


def test_a_refresh_at_the_bound_answers_the_newest_again_and_the_bound_renews(
    acme: tuple[Authority, Node],
) -> None:
    """At the bound a refresh is answered the newest live credential again (review 25,
    authority 2, which replaced review 24a's revocation of it): nothing is issued or revoked;
    one issued under an older history of the authority verifies nowhere and counts no more."""
    authority, members = acme
    ticket = authority.create_ticket(
        creator=authority.identifier, attributes=ORDERS, address="node:acme-node", now=NOW
    )
    members.identities.create(now=NOW, name="m")
    first = authority.enroll(enroll_request(members.identities, "m", ticket, now=NOW), now=NOW)

    def refresh(at: int) -> bytes:
        request = refresh_request(members.identities, "m", authority.identifier, now=at)
        return authority.refresh(request, now=at).credentials[0].hash

    issued = [refresh(NOW + 10 * n) for n in range(limits.MAX_LIVE_CREDENTIALS_PER_MEMBER - 1)]
    assert len(set(issued)) == len(issued)  # under the bound: each refresh issues
    start = authority.store.revocation_tip()[0]
    assert refresh(NOW + 200) == issued[-1]
    assert authority.store.revocation_tip()[0] == start
    held = first.credentials[0].hash  # the oldest: kept
    assert authority.store.find_revocation(RevocationKind.CREDENTIAL, held) is None
    assert authority.store.find_revocation(RevocationKind.CREDENTIAL, issued[-1]) is None
    # the authority rotates: what it issued before verifies nowhere and counts no more
    authority.identities.rotate("acme", now=NOW + 3601)
    tip = authority.store.revocation_tip()[0]
    assert refresh(NOW + 3602) not in issued
    assert authority.store.revocation_tip()[0] == tip
