"""Review 63a: attacks on the authority's budgets, enrollment and revocation feed that did not
work. Each test is a real attempt; it fails if the defence it names breaks."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth.authority import Authority, Ticket
from troth.authority.client import enroll_request, refresh_request, revoke_request, rotated_request
from troth.credentials import (
    Attributes,
    CredentialChain,
    RevocationEntry,
    RevocationKind,
    build_page,
    delegate,
    feed_genesis,
    issue_credential,
    next_head,
    verify_page,
)
from troth.errors import AuthorityError, AuthorityFailure, CredentialError, CredentialFailure
from troth.identity import IdentityService
from troth.node import init_node, open_node

TEAM = Attributes({"agents.team": "support"})


def _ticket(authority: Authority, uses: int = 1) -> Ticket:
    return authority.create_ticket(
        creator=authority.identifier, attributes=TEAM, address="node:auth", now=NOW, uses=uses
    )


def test_two_redeemers_of_a_one_time_ticket_at_once_make_one_member(troth_home: Path) -> None:
    """Enrollment: two identities redeem one one-use ticket in two threads at once; the
    redemption is one conditional write in a BEGIN IMMEDIATE transaction, so one wins and the
    other is TICKET_UNKNOWN."""
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=NOW)
        ticket = _ticket(authority)
        ids = agents.identities
        requests = []
        for name in ("alice", "bob"):
            ids.create(now=NOW, name=name)
            requests.append(enroll_request(ids, name, ticket, now=NOW))
        start = threading.Barrier(2)
        outcomes: list[object] = []

        def redeem(request: bytes) -> None:
            start.wait()
            try:
                outcomes.append(authority.enroll(request, now=NOW))
            except AuthorityError as exc:
                outcomes.append(exc.reason)

        threads = [threading.Thread(target=redeem, args=(r,)) for r in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(map(type, outcomes), key=str) == sorted(
            [CredentialChain, AuthorityFailure], key=str
        )
        assert AuthorityFailure.TICKET_UNKNOWN in outcomes
        assert len(authority.members()) == 1


def _delegated(authority: Authority, ids: IdentityService) -> CredentialChain:
    """alice enrolled, and a link she delegates to carol."""
    ids.create(now=NOW, name="alice")
    carol = ids.create(now=NOW, name="carol").identifier
    root = authority.enroll(enroll_request(ids, "alice", _ticket(authority), now=NOW), now=NOW)
    return delegate(
        ids.signer("alice", now=NOW),
        root,
        subject=carol,
        attributes=TEAM,
        now=NOW,
        ttl=600,
        purpose="job",
    )


def test_a_revoke_request_sent_10000_times_appends_one_entry(troth_home: Path) -> None:
    """Flood: one signed revoke request repeated 10,000 times is answered from the answered
    requests' memory with the same entry; the feed grows by one, the quota is charged once."""
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=NOW, revocation_quota=2)
        chain = _delegated(authority, agents.identities)
        request = revoke_request(
            agents.identities,
            "alice",
            authority.identifier,
            credential_hash=chain.credentials[-1].hash,
            chain=chain.encode(),
            reason="",
            now=NOW,
        )
        before = authority.held_feed(now=NOW).count
        seqs = {authority.revoke_link(request, now=NOW + i % 100) for i in range(10_000)}
        assert len(seqs) == 1
        assert authority.held_feed(now=NOW + 100).count == before + 1
        alice = agents.identities.get("alice", now=NOW).identifier
        assert len(authority.store.charged_since(alice.digest, 0)) == 1


def test_a_request_from_a_stolen_backup_is_refused_after_the_rotation(troth_home: Path) -> None:
    """Stolen backup: a refresh request alice signed before her rotation (a thief replays it, or
    signs one with the backup's key) is refused once the authority stored her rotated history
    (a rollback of its copy), and nothing is issued."""
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=NOW)
        ids = agents.identities
        ids.create(now=NOW, name="alice")
        authority.enroll(enroll_request(ids, "alice", _ticket(authority), now=NOW), now=NOW)
        stolen = refresh_request(ids, "alice", authority.identifier, now=NOW + 1)
        ids.rotate("alice", now=NOW + 2)
        authority.rotated(
            rotated_request(ids, "alice", authority.identifier, now=NOW + 3), now=NOW + 3
        )
        alice = ids.get("alice", now=NOW).identifier.digest
        issued = authority.store.unexpired_issued(alice, NOW)
        with pytest.raises(AuthorityError) as caught:
            authority.refresh(stolen, now=NOW + 4)
        assert caught.value.reason is AuthorityFailure.REQUEST_INVALID
        assert "older than the stored copy" in str(caught.value)
        assert authority.store.unexpired_issued(alice, NOW) == issued


def test_revoking_a_link_under_a_root_the_authority_never_issued_is_refused(
    troth_home: Path,
) -> None:
    """Revocation: alice revokes a link of a chain whose root another authority (a made-up
    one) issued; the chain does not verify under this authority, nothing is appended."""
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=NOW)
        ids = agents.identities
        _delegated(authority, ids)
        ids.create(now=NOW, name="fake")
        fake = ids.signer("fake", now=NOW)
        root = issue_credential(
            fake,
            subject=ids.get("alice", now=NOW).identifier,
            attributes=TEAM,
            now=NOW,
            ttl=600,
            depth=2,
        )
        chain = CredentialChain((root,), (fake.identity.history,))
        request = revoke_request(
            ids,
            "alice",
            authority.identifier,
            credential_hash=root.hash,
            chain=chain.encode(),
            reason="",
            now=NOW,
        )
        before = authority.held_feed(now=NOW).count
        with pytest.raises(AuthorityError) as caught:
            authority.revoke_link(request, now=NOW)
        assert caught.value.reason is AuthorityFailure.REQUEST_INVALID
        assert "not a trust anchor" in str(caught.value)
        assert authority.held_feed(now=NOW).count == before


def test_a_feed_page_out_of_bounds_is_refused(troth_home: Path) -> None:
    """Pages: a page asked from before the first entry or past the last is REQUEST_INVALID."""
    init_node("auth")
    with open_node("auth") as auth_node:
        authority = auth_node.create_authority("acme", now=NOW)
        authority.revoke_credentials([os.urandom(32) for _ in range(3)], now=NOW)
        latest = authority.held_feed(now=NOW).count
        for since in (-1, latest + 1, 1 << 40):
            with pytest.raises(AuthorityError) as caught:
                authority.feed(now=NOW, since=since)
            assert caught.value.reason is AuthorityFailure.REQUEST_INVALID


def test_an_older_forked_or_gapped_page_is_refused_by_a_holder(troth_home: Path) -> None:
    """Pages: a holder with the feed's first entries refuses a page issued before it (rollback),
    a page from before its end or after it (an older feed, a gap), and a page whose authority
    signed another line (a fork: the entries do not hash from the head it holds)."""
    init_node("auth")
    with open_node("auth") as auth_node:
        authority = auth_node.create_authority("acme", now=NOW)
        authority.revoke_credentials([os.urandom(32) for _ in range(3)], now=NOW)
        who = authority.identifier
        held = verify_page(authority.feed(now=NOW + 10), authority=who, now=NOW + 10)
        older = authority.feed(now=NOW + 5)
        with pytest.raises(CredentialError) as caught:
            verify_page(older, authority=who, now=NOW + 20, previous=held)
        assert caught.value.reason is CredentialFailure.FEED_INVALID  # it starts at 0
        authority.revoke_credential(os.urandom(32), now=NOW + 11)
        late = authority.feed(now=NOW + 5, since=held.count)  # signed before `held`
        with pytest.raises(CredentialError) as caught:
            verify_page(late, authority=who, now=NOW + 20, previous=held)
        assert caught.value.reason is CredentialFailure.FEED_ROLLBACK
        gap = authority.feed(now=NOW + 20, since=held.count + 1)
        with pytest.raises(CredentialError) as caught:
            verify_page(gap, authority=who, now=NOW + 20, previous=held)
        assert "starts at entry" in str(caught.value)
        signer = authority.signer(NOW + 20)
        own = [
            RevocationEntry(s, RevocationKind.CREDENTIAL, os.urandom(32), who, NOW, "fork")
            for s in range(held.count + 1)
        ]
        head = feed_genesis(who)
        for entry in own:
            head = next_head(head, entry.encode())
        fork = build_page(
            signer,
            [own[-1].encode()],
            start=held.count,
            head=head,
            latest=held.count + 1,
            now=NOW + 20,
        )
        with pytest.raises(CredentialError) as caught:
            verify_page(fork, authority=who, now=NOW + 20, previous=held)
        assert "do not hash to the signed head" in str(caught.value)


def test_a_page_the_old_authority_key_signs_after_its_rotation_is_refused(
    tmp_path: Path,
) -> None:
    """Key rotation across the feed: the holder verifies the first page signed under the
    rotated history (it carries the authority's supersession); a page a thief signs with the
    pre-rotation key (a copy of the node from before it), snapshotting the same entries as
    fresh, is refused."""
    home, backup = tmp_path / "home", tmp_path / "backup"
    init_node("auth", home=home)
    with open_node("auth", home=home) as auth_node:
        authority = auth_node.create_authority("acme", now=NOW)
        authority.revoke_credentials([os.urandom(32) for _ in range(2)], now=NOW)
        who = authority.identifier
        held = verify_page(authority.feed(now=NOW), authority=who, now=NOW)
    shutil.copytree(home, backup)
    with open_node("auth", home=home) as auth_node:
        hosted = auth_node.hosted_authority()
        assert hosted is not None
        hosted.identities.rotate(hosted.config.name, now=NOW + 10)
        page = hosted.feed(now=NOW + 20, since=held.count)
    rotated = verify_page(page, authority=who, now=NOW + 20, previous=held)
    assert rotated.count == held.count + 1  # the supersession of its own history
    assert rotated.supersession(who) is not None
    with open_node("auth", home=backup) as thief_node:
        thief = thief_node.hosted_authority()
        assert thief is not None
        stolen = thief.signer(NOW + 30)
        forged = build_page(
            stolen, [], start=rotated.count, head=rotated.head, latest=rotated.count, now=NOW + 30
        )
    with pytest.raises(CredentialError) as caught:
        verify_page(forged, authority=who, now=NOW + 30, previous=rotated)
    assert caught.value.reason is CredentialFailure.FEED_INVALID
    assert "superseded history" in str(caught.value)
