"""Review 36b, verify: how old a revocation feed a verifier may be told to accept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import troth
from tests.support.cli import run, run_json
from troth import limits
from troth.clock import FixedClock
from troth.credentials import TrustPolicy
from troth.errors import OutOfRange
from troth.node.verify import Sources

TOO_OLD = (0, -1, limits.MAX_FEED_STALENESS_SECONDS + 1, 10**12)


@pytest.fixture
def acme(clock: FixedClock) -> Iterator[troth.Authority]:
    with troth.Node.open("acme", clock=clock) as hub:
        yield hub.create_authority()


def test_a_feed_age_out_of_its_bounds_is_refused(acme: troth.Authority, tmp_path: Path) -> None:
    """Verify 1: `Verifier(max_feed_age=10**12)` (or `--max-feed-age` of `troth credential
    verify`, or a `TrustPolicy`) was taken as given: a feed thirty thousand years old was
    current, so a verifier fed a stale copy accepted every chain revoked since it was
    taken, for good; 0 and negative ages made a verifier that refused every feed not issued
    that very second, found only at its first verification. Each is refused where it is given,
    with an error naming the bound (`OutOfRange`, a ConfigError and a ValueError). Was a
    strict xfail until `check_feed_age` bounded it by `limits.MAX_FEED_STALENESS_SECONDS`."""
    bound = f"max_feed_age must be 1-{limits.MAX_FEED_STALENESS_SECONDS}, not "
    for age in TOO_OLD:
        with pytest.raises(troth.ConfigError, match=bound) as refused:
            troth.Verifier(trust=[acme.identifier], feeds=acme, max_feed_age=age)
        assert isinstance(refused.value, OutOfRange)
        assert isinstance(refused.value, ValueError)
        assert (refused.value.setting, refused.value.value) == ("max_feed_age", age)
        with pytest.raises(OutOfRange, match=bound + str(age)):
            Sources(frozenset({acme.identifier}), tmp_path, max_feed_age=age)
        with pytest.raises(OutOfRange, match=bound + str(age)):
            TrustPolicy(frozenset({acme.identifier}), max_feed_staleness=age)


def test_a_feed_age_at_its_bounds_is_taken(acme: troth.Authority, tmp_path: Path) -> None:
    """The control of verify 1: 1 s and the bound itself are taken."""
    for age in (1, limits.MAX_FEED_STALENESS_SECONDS):
        troth.Verifier(trust=[acme.identifier], feeds=acme, max_feed_age=age)
        assert Sources(frozenset({acme.identifier}), tmp_path, max_feed_age=age).max_feed_age == age


def test_a_clock_skew_out_of_its_bound_is_out_of_range(acme: troth.Authority) -> None:
    """`max_clock_skew` was bounded already (a bare ValueError): the same typed error now."""
    with pytest.raises(OutOfRange, match="max_clock_skew must be 0-300, not 301"):
        troth.Verifier(trust=[acme.identifier], feeds=acme, max_clock_skew=301)


def test_the_cli_refuses_a_feed_age_past_the_bound(troth_home: Path, tmp_path: Path) -> None:
    """Verify 1 at `troth credential verify --max-feed-age`: refused as a usage error (exit
    2: `OutOfRange` is a ValueError) naming the bound, before any file is read."""
    acme = run_json("authority", "create", "acme")["identifier"]
    chain = tmp_path / "chain"
    chain.write_bytes(b"not read")
    result = run(
        "credential", "verify", str(chain), "--trust", acme, "--max-feed-age", "100000d", code=2
    )
    assert f"max_feed_age must be 1-{limits.MAX_FEED_STALENESS_SECONDS}, not " in result.stderr
