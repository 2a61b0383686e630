"""Review 36d, feed age: the re-review of review 36b's bound on how old a revocation feed a
verifier may be told to accept (`limits.MAX_FEED_STALENESS_SECONDS`, `OutOfRange`)."""

from __future__ import annotations

import pytest

from tests.support.parties import empty_feed, make_party
from troth import limits
from troth.credentials import verify_feed
from troth.credentials.revocation import feed_checkpoints
from troth.errors import CredentialError, CredentialFailure, OutOfRange
from troth.vault import SoftwareVault

T = 1_780_000_000
YEAR = 365 * 86_400
BOUND = f"must be 1-{limits.MAX_FEED_STALENESS_SECONDS}, not "


def test_the_feed_functions_take_no_staleness_past_the_bound() -> None:
    """Feed age 1: review 36b bounded `max_feed_age` where a `Verifier`, a `TrustPolicy`, the
    CLI and `Sources` take it, but not the public feed functions every one of them ends in:
    `troth.credentials.verify_feed(..., max_staleness=10**12)` (and `VerifiedFeed.check_fresh`,
    `Wallet.feed`, `feed_checkpoints`, `Wallet.checkpoints`) still took a feed ten years old
    as current, so whoever verifies feeds with them directly got the verdict of review 36b's
    verify 1 (every chain revoked since the copy was taken accepted, for good). Each takes
    `max_staleness` within the same bound now: OutOfRange naming it, else the feed is judged
    as before (a fresh one taken, a ten-year-old one STALE_FEED at the bound). Was a strict
    xfail until `check_fresh` and `feed_checkpoints` checked it (`check_feed_age`)."""
    authority = make_party(SoftwareVault(), now=T)
    page = empty_feed(authority, now=T)
    later = T + 10 * YEAR
    for age in (0, -1, limits.MAX_FEED_STALENESS_SECONDS + 1, 10**12):
        with pytest.raises(OutOfRange, match="max_staleness " + BOUND + str(age)):
            verify_feed(page, authority=authority.identifier, now=later, max_staleness=age)
        with pytest.raises(OutOfRange, match="max_staleness " + BOUND + str(age)):
            feed_checkpoints({}, now=later, max_staleness=age)
    with pytest.raises(CredentialError) as stale:
        verify_feed(
            page,
            authority=authority.identifier,
            now=later,
            max_staleness=limits.MAX_FEED_STALENESS_SECONDS,
        )
    assert stale.value.reason is CredentialFailure.STALE_FEED
    feed = verify_feed(page, authority=authority.identifier, now=T + 5, max_staleness=60)
    assert feed.complete
