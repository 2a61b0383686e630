"""Review 36d, feed age: the re-review of review 36b's bound on how old a revocation feed a
verifier may be told to accept (`limits.MAX_FEED_STALENESS_SECONDS`, `OutOfRange`)."""

from __future__ import annotations

import pytest

from tests.support.parties import empty_feed, make_party
from troth import limits
from troth.credentials import TrustPolicy, verify_feed
from troth.credentials.revocation_held import feed_checkpoints
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


def test_the_clock_skew_is_a_whole_number_of_seconds_as_the_feed_age_is() -> None:
    """Feed age 2: review 36b made `max_feed_age` refuse what is not an int (a bool, a float,
    text) with a TypeError naming it, but its neighbour `max_clock_skew` took `True` as 1 s
    and 1.5 as given (only its range was checked), and text failed inside the comparison with
    a TypeError naming no setting. Both are typed the same now; 0 and the bound are taken.
    Was a strict xfail until `TrustPolicy` checked the skew's type."""
    anchors = frozenset({make_party(SoftwareVault(), now=T).identifier})
    for value in (True, 1.5, "5"):
        with pytest.raises(TypeError, match="max_clock_skew is a number of seconds, not "):
            TrustPolicy(anchors, max_clock_skew=value)  # type: ignore[arg-type]
    for skew in (0, limits.MAX_CLOCK_SKEW_SECONDS):
        assert TrustPolicy(anchors, max_clock_skew=skew).max_clock_skew == skew
