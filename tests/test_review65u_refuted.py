"""Review 65u, refuted: attacks on the authority as its members meet it (tickets, members, the
feed they make it write, its pages) that the defences named in each test held off.

1. A ticket voided before its expiry redeems nothing, for anyone (`void_ticket`).
2. Another authority's ticket sent to this one redeems nothing (the request is addressed to
   the ticket's authority, refused here; its code is unknown here when re-addressed).
3. A ticket made by an enroller since removed makes no member, and its use is given back.
4. A redeemer cannot widen its ticket's attributes: an enroll request takes the code only.
5. A removed member re-enrolled keeps none of its old attributes, and its credentials revoked
   at its removal stay revoked.
6. A member refreshing 80 times holds at most MAX_LIVE_CREDENTIALS_PER_MEMBER live ones and
   adds nothing to the feed.
7. One member spending its request budget leaves every other member's, and strangers spending
   theirs leave the members' (`RequestBudgets`: per source, classes apart).
8. A page of another authority's feed, a stale page, or one cut short is refused by the peer
   syncing it (`verify_page`).
9. A member of another (co-trusted) authority, rotated, makes this one write nothing: its
   `rotated` is NOT_A_MEMBER, and its revoke request with a chain rooted at its own authority
   is refused before any issuer history is kept or published (`TrustPolicy` of this authority
   only).
10. One identity redeeming a one-use ticket from 8 threads at once (each its own signed request)
   gets one credential, the same in every answer: the redemption, its lookup of an earlier one
   and its record are one write transaction (no second use, no second credential).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.test_authority import ORDERS, A, Setup
from tests.test_authority import setup as setup  # the fixture, shared
from troth import limits
from troth.authority import ENROLLER
from troth.authority.budgets import RequestBudgets
from troth.authority.client import (
    enroll_request,
    refresh_request,
    revoke_request,
    rotated_request,
)
from troth.authority.requests import make_request
from troth.credentials import Attributes, CredentialChain, RevocationKind, verify_page
from troth.encoding import cbor
from troth.errors import AuthorityError, CredentialError, CredentialFailure
from troth.node import init_node, open_node


def test_1_a_voided_ticket_redeems_nothing(setup: Setup) -> None:
    ticket = setup.ticket(uses=5)
    setup.enroll("alice", ticket)
    assert setup.authority.void_ticket(ticket, now=NOW + 1)
    for name in ("bob", "carol"):
        with pytest.raises(AuthorityError) as caught:
            setup.enroll(name, ticket, now=NOW + 2)
        assert caught.value.reason is A.TICKET_UNKNOWN
    assert [m.identifier for m in setup.authority.members()] == [setup.id("alice")]


def test_2_another_authoritys_ticket_redeems_nothing(setup: Setup, troth_home: Path) -> None:
    init_node("other")
    with open_node("other") as other_node:
        other = other_node.create_authority("other", now=NOW)
        ticket = other.create_ticket(
            creator=other.identifier, attributes=ORDERS, address="node:other", now=NOW
        )
        setup.agents.identities.create(now=NOW, name="mallory")
        request = enroll_request(setup.agents.identities, "mallory", ticket, now=NOW)
        with pytest.raises(AuthorityError) as caught:
            setup.authority.enroll(request, now=NOW)
        assert caught.value.reason is A.REQUEST_INVALID  # addressed to `other`
        signer = setup.agents.identities.signer("mallory", now=NOW)
        readdressed = make_request(
            signer, "enroll", setup.authority.identifier, [ticket.code], now=NOW
        )
        with pytest.raises(AuthorityError) as caught:
            setup.authority.enroll(readdressed, now=NOW)
        assert caught.value.reason is A.TICKET_UNKNOWN
        assert setup.authority.members() == []
        other.enroll(request, now=NOW)  # its use was not taken by the refusals here


def test_3_a_removed_enrollers_ticket_makes_no_member(setup: Setup) -> None:
    setup.enroll("enroller", setup.ticket(role=ENROLLER, attributes=Attributes()))
    ticket = setup.authority.create_ticket(
        creator=setup.id("enroller"), attributes=ORDERS, address="node:auth", now=NOW
    )
    setup.authority.remove_member(setup.id("enroller"), now=NOW + 1)
    with pytest.raises(AuthorityError) as caught:
        setup.enroll("sock", ticket, now=NOW + 2)
    assert caught.value.reason is A.TICKET_UNKNOWN
    assert setup.authority.members() == []
    # re-enrolled an enroller again, its ticket's one use is still there (rolled back)
    setup.enroll("enroller", setup.ticket(role=ENROLLER, attributes=Attributes()), now=NOW + 3)
    setup.enroll("sock", ticket, now=NOW + 4)


def test_4_a_redeemer_cannot_widen_its_tickets_attributes(setup: Setup) -> None:
    ticket = setup.ticket()
    setup.agents.identities.create(now=NOW, name="alice")
    signer = setup.agents.identities.signer("alice", now=NOW)
    wider = cbor.encode(Attributes({"troth.role": "admin"}).to_cbor())
    for arguments in ([ticket.code, wider], [ticket.code, "admin"]):
        request = make_request(signer, "enroll", setup.authority.identifier, arguments, now=NOW)
        with pytest.raises(AuthorityError) as caught:
            setup.authority.enroll(request, now=NOW)
        assert caught.value.reason is A.REQUEST_INVALID
    setup.enroll("alice", ticket)  # the refusals took no use
    assert setup.authority.member(setup.id("alice")).attributes == ORDERS


def test_5_a_reenrolled_member_keeps_neither_old_attributes_nor_unrevoked_credentials(
    setup: Setup,
) -> None:
    first = setup.enroll("alice", setup.ticket(attributes=Attributes({"team.name": "red"})))
    setup.authority.remove_member(setup.id("alice"), now=NOW + 1)
    again = setup.enroll("alice", setup.ticket(), now=NOW + 2)
    assert setup.authority.member(setup.id("alice")).attributes == ORDERS
    store = setup.authority.store
    kind = int(RevocationKind.CREDENTIAL)
    assert store.find_revocation(kind, first.credentials[0].hash) is not None
    assert store.find_revocation(kind, again.credentials[0].hash) is None


def test_6_a_refresh_flood_is_bounded(setup: Setup) -> None:
    setup.enroll("alice", setup.ticket())
    before = setup.feed_length()
    issued = set()
    for n in range(80):
        request = refresh_request(
            setup.agents.identities, "alice", setup.authority.identifier, now=NOW + n
        )
        issued.add(setup.authority.refresh(request, now=NOW + n).credentials[0].hash)
    assert len(issued) <= limits.MAX_LIVE_CREDENTIALS_PER_MEMBER
    assert setup.feed_length() == before
    live = setup.authority.store.unexpired_issued(setup.id("alice").digest, NOW + 80)
    assert len(live) <= limits.MAX_LIVE_CREDENTIALS_PER_MEMBER


def test_7_one_members_budget_is_its_own() -> None:
    budgets = RequestBudgets()
    for _ in range(limits.ENROLL_REQUESTS_BURST):
        budgets.charge(b"alice", member=True, now=NOW)
    with pytest.raises(AuthorityError) as caught:
        budgets.charge(b"alice", member=True, now=NOW)
    assert caught.value.reason is A.RATE_LIMITED
    for n in range(limits.MAX_ENROLL_REQUEST_SOURCES + 10):  # strangers, each new and spent
        budgets.charge(n.to_bytes(4, "big"), member=False, now=NOW)
    budgets.charge(b"bob", member=True, now=NOW)  # another member: untouched
    with pytest.raises(AuthorityError):  # and alice's spent budget was not forgotten
        budgets.charge(b"alice", member=True, now=NOW)


def test_8_pages_another_authoritys_stale_or_cut_short_are_refused(
    setup: Setup, troth_home: Path
) -> None:
    authority = setup.authority
    me = authority.identifier
    stale = authority.feed(now=NOW)
    for n in range(3):
        authority.revoke_credential(bytes([n + 1]) * 32, now=NOW + 1)
    held = verify_page(authority.feed(now=NOW + 2), authority=me, now=NOW + 2)
    with pytest.raises(CredentialError) as caught:  # issued before the feed held
        verify_page(stale, authority=me, now=NOW + 3, previous=held)
    assert caught.value.reason in (CredentialFailure.FEED_ROLLBACK, CredentialFailure.FEED_INVALID)
    page = authority.feed(now=NOW + 3)
    for cut in (len(page) - 1, len(page) // 2):
        with pytest.raises((CredentialError,)):
            verify_page(page[:cut], authority=me, now=NOW + 3)
    init_node("other")
    with open_node("other") as other_node:
        other = other_node.create_authority("other", now=NOW)
        with pytest.raises(CredentialError):
            verify_page(other.feed(now=NOW + 3), authority=me, now=NOW + 3)


def test_9_a_cotrusted_authoritys_member_makes_this_one_write_nothing(
    setup: Setup, troth_home: Path
) -> None:
    init_node("other")
    with open_node("other") as other_node:
        other = other_node.create_authority("other", now=NOW)
        ticket = other.create_ticket(
            creator=other.identifier, attributes=ORDERS, address="node:other", now=NOW
        )
        agents = setup.agents
        agents.identities.create(now=NOW, name="outsider")
        agents.identities.create(now=NOW, name="outsider-sub")
        held = other.enroll(enroll_request(agents.identities, "outsider", ticket, now=NOW), now=NOW)
        agents.wallet.hold("outsider", held.encode(), now=NOW)
        agents.identities.rotate("outsider", now=NOW + 1)
        chain = agents.wallet.delegate(
            "outsider",
            to=agents.identities.get("outsider-sub", now=NOW).identifier,
            attributes=ORDERS,
            now=NOW + 1,
            ttl=600,
            purpose="job",
        )
        target = CredentialChain.decode(chain).credentials[-1].hash
        me = setup.authority.identifier
        before = setup.feed_length()
        request = revoke_request(
            agents.identities,
            "outsider",
            me,
            credential_hash=target,
            chain=chain,
            reason="",
            now=NOW + 2,
        )
        with pytest.raises(AuthorityError) as caught:
            setup.authority.revoke_link(request, now=NOW + 2)
        assert caught.value.reason is A.REQUEST_INVALID
        with pytest.raises(AuthorityError) as caught:
            setup.authority.rotated(
                rotated_request(agents.identities, "outsider", me, now=NOW + 2), now=NOW + 2
            )
        assert caught.value.reason is A.NOT_A_MEMBER
        assert setup.feed_length() == before
        outsider = agents.identities.get("outsider", now=NOW + 2).identifier
        assert setup.authority_node.identities.stored_changes(outsider) is None


def test_10_one_identity_redeeming_at_once_from_many_threads_gets_one_credential(
    setup: Setup,
) -> None:
    ticket = setup.ticket()
    setup.agents.identities.create(now=NOW, name="alice")
    requests = [
        enroll_request(setup.agents.identities, "alice", ticket, now=NOW + n) for n in range(8)
    ]
    barrier = threading.Barrier(len(requests))
    answers: list[object] = []

    def redeem(request: bytes) -> None:
        barrier.wait()
        try:
            answers.append(setup.authority.enroll(request, now=NOW + 1).credentials[0].hash)
        except AuthorityError as exc:
            answers.append(exc.reason)

    threads = [threading.Thread(target=redeem, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == len(requests)
    assert len(set(answers)) == 1
    assert len(setup.authority.store.unexpired_issued(setup.id("alice").digest, NOW)) == 1
