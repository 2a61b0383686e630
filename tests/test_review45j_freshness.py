"""Review 45j, feed freshness: a revocation feed page may be dated up to MAX_CLOCK_SKEW_SECONDS
ahead of the verifier's clock (the authority's clock may run ahead), but its freshness was
measured from that date, so a page dated 300 s ahead stayed "fresh" 300 s past the staleness
limit as the verifier's own clock measures it (`VerifiedFeed.check_fresh`, `feed_checkpoints`).
A page is now taken as issued no later than when the verifier accepted it
(`issued_at = min(signed date, now)`), so it is stale at most `max_staleness` after that."""

from __future__ import annotations

import pytest

from tests.support.parties import make_party
from troth import limits
from troth.credentials import (
    RevocationEntry,
    RevocationKind,
    Supersession,
    build_feed,
    build_page,
    feed_genesis,
    next_head,
    verify_page,
)
from troth.credentials.revocation_held import feed_checkpoints
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Checkpoint
from troth.vault import SoftwareVault

T = 1_780_000_000
SKEW = limits.MAX_CLOCK_SKEW_SECONDS
STALENESS = 60


def test_a_page_dated_ahead_is_stale_max_staleness_after_it_was_first_accepted() -> None:
    """A page signed at T + 300 s and accepted at T (its date within the skew): fresh up to
    T + max_staleness, stale one second later (it was fresh until T + 300 + max_staleness),
    both for `check_fresh` and for the checkpoints `feed_checkpoints` attests; a later page,
    also dated ahead, is measured from when it was accepted in turn and is no rollback."""
    authority = make_party(SoftwareVault(), now=T)
    target, change = bytes(range(32)), b"c" * 32
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        target,
        authority.identifier,
        T,
        "",
        Supersession(5, change),
    ).encode()
    head = next_head(feed_genesis(authority.identifier), entry)
    page = build_feed(authority.signer, [entry], head, now=T + SKEW)
    feed = verify_page(page, authority=authority.identifier, now=T)
    feed.check_fresh(now=T + STALENESS, max_staleness=STALENESS)
    with pytest.raises(CredentialError) as stale:
        feed.check_fresh(now=T + STALENESS + 1, max_staleness=STALENESS)
    assert stale.value.reason is CredentialFailure.STALE_FEED
    assert feed.issued_at == T
    checkpoint = Checkpoint(target, authority.identifier.digest, 4)
    feeds = {authority.identifier: feed}
    assert feed_checkpoints(feeds, now=T + STALENESS, max_staleness=STALENESS)(checkpoint, change)
    late = feed_checkpoints(feeds, now=T + STALENESS + 1, max_staleness=STALENESS)
    assert not late(checkpoint, change)

    # the next page, dated T + 2 * SKEW and accepted at T + SKEW: not before the held one
    # (its signed date is compared), and measured from T + SKEW
    again = build_page(authority.signer, [], start=1, head=head, latest=1, now=T + 2 * SKEW)
    later = verify_page(again, authority=authority.identifier, now=T + SKEW, previous=feed)
    assert later.issued_at == T + SKEW
    with pytest.raises(CredentialError):
        later.check_fresh(now=T + SKEW + STALENESS + 1, max_staleness=STALENESS)


def test_a_page_dated_in_the_past_keeps_its_date() -> None:
    """A page dated before the verifier's clock is measured from its own date, as before."""
    authority = make_party(SoftwareVault(), now=T)
    page = build_feed(authority.signer, [], feed_genesis(authority.identifier), now=T - 10)
    feed = verify_page(page, authority=authority.identifier, now=T)
    assert feed.issued_at == T - 10
    feed.check_fresh(now=T - 10 + STALENESS, max_staleness=STALENESS)
    with pytest.raises(CredentialError):
        feed.check_fresh(now=T - 9 + STALENESS, max_staleness=STALENESS)
