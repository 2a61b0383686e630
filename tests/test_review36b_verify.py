"""Review 36b, verify: how old a revocation feed a verifier may be told to accept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import troth
from troth import limits
from troth.clock import FixedClock
from troth.credentials import TrustPolicy
from troth.node.verify import Sources

TOO_OLD = (0, -1, limits.MAX_FEED_STALENESS_SECONDS + 1, 10**12) if hasattr(
    limits, "MAX_FEED_STALENESS_SECONDS"
) else (0, -1, 10**12)


@pytest.fixture
def acme(clock: FixedClock) -> Iterator[troth.Authority]:
    with troth.Node.open("acme", clock=clock) as hub:
        yield hub.create_authority()


@pytest.mark.xfail(strict=True, reason="review 36b, verify 1: max_feed_age has no bound")
def test_a_feed_age_out_of_its_bounds_is_refused(acme: troth.Authority, tmp_path: Path) -> None:
    """Verify 1: `Verifier(max_feed_age=10**12)` (or `--max-feed-age` of `troth credential
    verify`, or a `TrustPolicy`) was taken as given: a feed thirty thousand years old was
    current, so a verifier fed a stale copy accepted every chain revoked since it was
    taken, for good; 0 and negative ages made a verifier that refused every feed not issued
    that very second, found only at its first verification. Each is refused where it is given,
    with an error naming the bound."""
    for age in TOO_OLD:
        with pytest.raises(troth.ConfigError, match="max_feed_age must be 1-") as refused:
            troth.Verifier(trust=[acme.identifier], feeds=acme, max_feed_age=age)
        assert str(age) in str(refused.value)
        with pytest.raises(troth.ConfigError, match="max_feed_age must be 1-"):
            Sources(frozenset({acme.identifier}), tmp_path, max_feed_age=age)
        with pytest.raises(troth.ConfigError, match="max_feed_age must be 1-"):
            TrustPolicy(frozenset({acme.identifier}), max_feed_staleness=age)
