"""Review 70q, the revocation feed and its sync: attacks tried that did not work (each passes
on the code it was tried on, and pins what holds)."""

from __future__ import annotations

import os

import pytest

from tests import test_authority
from tests.conftest import NOW
from tests.support.feeds import entries, pages
from tests.support.parties import Party, make_party
from tests.test_authority import A, Setup
from tests.test_authority_feed import delegations
from troth.credentials import RevocationKind, VerifiedFeed, verify_page, verify_pages
from troth.credentials.revocation_held import newest_copy
from troth.errors import AuthorityError, CredentialError, CredentialFailure
from troth.vault import SoftwareVault

setup = test_authority.setup  # the fixture, shared

F = CredentialFailure
C = RevocationKind.CREDENTIAL
T = 1_780_000_000


@pytest.fixture
def party() -> Party:
    return make_party(SoftwareVault(), now=T)


def _targets(count: int, tag: int) -> list[tuple[int, bytes]]:
    return [(C, bytes([tag, n]) * 16) for n in range(count)]


def _held(party: Party, targets: list[tuple[int, bytes]], *, now: int) -> VerifiedFeed:
    line = entries(party, targets, at=now)
    return verify_pages(
        pages(party, line, now=now, per_page=2), authority=party.identifier, now=now
    )


def test_a_restored_authority_cannot_take_revocations_back_from_a_holder(party: Party) -> None:
    """70q refuted 1: the authority restored from a backup (one entry where the holder held
    three), then grown past the holder's count on another line: its page from where the holder
    ends does not hash from the held head, its page from the start is not where the holder
    ends, both FEED_INVALID; the held feed still revokes what the backup lost."""
    held_line = _targets(3, 1)
    held = _held(party, held_line, now=T)
    restored = entries(party, held_line[:1] + _targets(4, 2), at=T + 60)
    for start in (3, 0):
        (page, *_) = pages(party, restored, now=T + 60, per_page=8, start=start)
        with pytest.raises(CredentialError) as refused:
            verify_page(page, authority=party.identifier, now=T + 60, previous=held)
        assert refused.value.reason is F.FEED_INVALID
    assert all(held.credential_revoked(target) for _, target in held_line)


def test_a_page_signed_before_the_one_held_is_not_taken_again(party: Party) -> None:
    """70q refuted 2: replaying the page that said "up to date" before the holder's newest
    (signed earlier, the same entries): FEED_ROLLBACK, the holder's date stands."""
    line = entries(party, _targets(2, 3), at=T)
    (old_tip,) = pages(party, line, now=T, per_page=2, start=2)
    held = verify_pages(
        pages(party, line, now=T + 100, per_page=2), authority=party.identifier, now=T + 100
    )
    with pytest.raises(CredentialError) as refused:
        verify_page(old_tip, authority=party.identifier, now=T + 120, previous=held)
    assert refused.value.reason is F.FEED_ROLLBACK


def test_two_copies_disagreeing_at_one_position_hide_no_revocation(party: Party) -> None:
    """70q refuted 3: a longer copy of another line (a restored authority's) beside the one
    holding a revocation: `newest_copy` refuses both (FEED_INVALID), never picks the longer
    one that lacks it."""
    shorter = _held(party, _targets(2, 4), now=T)
    longer = _held(party, _targets(1, 4) + _targets(3, 5), now=T + 10)
    for copies in ([shorter, longer], [longer, shorter]):
        with pytest.raises(CredentialError) as refused:
            newest_copy(copies)
        assert refused.value.reason is F.FEED_INVALID


def test_a_page_far_ahead_or_behind_the_feed_is_refused(setup: Setup) -> None:
    """70q refuted 4: pages asked from past the feed's end, at a huge number or before its
    start: REQUEST_INVALID, nothing signed; from the end, a page of no entries."""
    setup.authority.revoke_credential(os.urandom(32), now=NOW)
    for since in (2, 1 << 70, -1):
        with pytest.raises(AuthorityError) as refused:
            setup.authority.feed_page(now=NOW, since=since)
        assert refused.value.reason is A.REQUEST_INVALID
    assert setup.authority.feed_page(now=NOW, since=1)[1] == 1


def test_a_revocation_made_while_a_sync_is_under_way_is_in_the_feed_it_ends_with(
    setup: Setup,
) -> None:
    """70q refuted 5: a feed of several pages (long reasons: the authority's own) synced by a
    member's node, the authority revoking a link after the first page was signed: the sync
    goes on to the feed's new end (the page's `latest` grows) and ends holding it."""
    ((late, _),) = delegations(setup, 1)
    setup.authority.revoke_credentials(
        [os.urandom(32) for _ in range(4_000)], now=NOW, reason="r" * 250
    )
    asked: list[int] = []

    def fetch(since: int) -> bytes:
        page, _ = setup.authority.feed_page(now=NOW, since=since)
        if not asked:
            setup.authority.revoke_credential(late, now=NOW)
        asked.append(since)
        return page

    wallet = setup.agents.wallet
    feed = wallet.sync_feed(setup.authority.identifier, fetch, now=NOW)
    assert len(asked) > 2
    assert feed.complete
    assert feed.credential_revoked(late)
    assert feed.count == setup.feed_length()
