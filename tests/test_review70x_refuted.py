"""Review 70x (area: wave3): attacks on 70s, 70t and 70v that did not work, kept as tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from tests import test_authority
from tests.conftest import NOW
from tests.test_authority import A, Setup
from tests.test_authority_feed import delegations
from tests.test_review70s_collector import appended, signed_again
from tests.test_trace_service import Service, service  # noqa: F401
from troth import limits
from troth.authority.client import refresh_request
from troth.credentials import RevocationEntry
from troth.errors import AuthorityError
from troth.trace import collect, signing
from troth.trace.signing import VerifiedRecord
from troth.trace.submit import Status, SubmittedRecord

setup = test_authority.setup  # the fixture, shared

OVER = "x" * (limits.MAX_MEMBER_REVOCATION_REASON_BYTES + 1)


def _reason_of(setup: Setup, seq: int) -> str:
    (row,) = setup.authority.store.revocation_page(seq, 1 << 20, len)
    return RevocationEntry.decode(row).reason


def test_a_link_revoked_between_the_lookup_and_the_write_takes_no_long_reason(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """70v's "already revoked?" lookup is read outside the write: the authority revokes the
    link (as itself) right after the member's lookup found it unrevoked. The member's request
    with a reason past the bound is refused (request invalid), and the feed's entry is the
    authority's, with its reason: a member writes no long reason through the race. Within
    the bound, the same race answers the authority's entry, nothing written."""
    ((target, chain),) = delegations(setup, 1)
    authority = setup.authority
    looked = authority._over_member_bound

    def racing(reason: str, link: bytes) -> bool:
        over = looked(reason, link)
        authority.revoke_credential(link, now=NOW, reason="by the authority")
        return over

    monkeypatch.setattr(authority, "_over_member_bound", racing)
    length = setup.feed_length()
    with pytest.raises(AuthorityError) as caught:
        setup.revoke_link("customer", target, chain, reason=OVER)
    assert caught.value.reason is A.REQUEST_INVALID
    assert setup.feed_length() == length + 1
    assert _reason_of(setup, length) == "by the authority"
    assert setup.revoke_link("customer", target, chain, reason="short", now=NOW + 1) == length
    assert setup.feed_length() == length + 1


@pytest.mark.parametrize("path", ["refresh", "credential", "feed", "enroll", "late repeat"])
def test_a_held_authority_answers_from_its_stored_state_on_no_path(setup: Setup, path: str) -> None:
    """70t's check on other answer paths: a held authority (a restore's hold) answers a
    member's refresh, an issue of a member's credential, a feed page, a new enrollment (its
    ticket's use given back) and a repeat after the enrollment's window RESTORED, each."""
    ticket = setup.ticket(ttl=60)
    setup.enroll("customer", ticket)
    fresh = setup.ticket()
    authority = setup.authority
    authority.store.hold(NOW)
    later = NOW + 60 + limits.MAX_CLOCK_SKEW_SECONDS + 1  # past the ticket's window
    calls: dict[str, Callable[[], object]] = {
        "refresh": lambda: authority.refresh(
            refresh_request(setup.agents.identities, "customer", authority.identifier, now=NOW),
            now=NOW,
        ),
        "credential": lambda: authority.issue_member_credential(setup.id("customer"), now=NOW),
        "feed": lambda: authority.feed(now=NOW),
        "enroll": lambda: setup.enroll("newcomer", fresh),
        "late repeat": lambda: setup.enroll("customer", ticket, now=later),
    }
    with pytest.raises(AuthorityError) as caught:
        calls[path]()
    assert caught.value.reason is A.RESTORED
    authority.release_restored()
    if path == "enroll":  # its use was given back
        assert setup.enroll("newcomer", fresh).credentials


def test_a_batch_of_records_signed_again_verifies_each_once(
    service: Service,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """70s's check costs a peer's request no more than its appends: the log's record signed
    again, sent MAX_TRACE_SUBMIT_RECORDS times in one batch, is verified once a copy (one
    signature each, as many as the batch's bound), each answered ALREADY at the first index."""
    world = service.world
    submission, first = appended(service)
    item, _record, again = signed_again(service, submission)
    copies = (SubmittedRecord(again.envelope, item.disclosures),) * limits.MAX_TRACE_SUBMIT_RECORDS
    counted: list[bytes] = []
    verify = signing.verify_envelope

    def counting(data: bytes, **kwargs: Any) -> VerifiedRecord:
        counted.append(data)
        return verify(data, **kwargs)

    monkeypatch.setattr(collect, "verify_envelope", counting)
    receipts = service.submit(dataclasses.replace(submission, records=copies), world.support)
    assert {(r.status, r.index) for r in receipts.results} == {
        (Status.ALREADY, first.results[0].index)
    }
    assert len(counted) == limits.MAX_TRACE_SUBMIT_RECORDS
