"""Review 69i (delegation caveats and scoped tokens): attacks that worked on main before their
fix.

caveats 1 (low): `validate_token(..., leeway=)` took any value. A relying party whose leeway
came from a configuration read as JSON or YAML (`NaN`, `.inf`, `1e9`) or was a bool passed it
on, and every time comparison with NaN is false: a token expired a year ago, one not yet valid
and one whose lease had ended (renewed for less) all validated; `inf` kept every token valid
for ever. The credential side bounds its skew (`TrustPolicy.max_clock_skew`: an int, not a
bool, 0-`MAX_CLOCK_SKEW_SECONDS`); the token side now refuses a leeway that is not a whole
number of seconds >= 0 (an `ArgumentError`) before it reads the token.

caveats 2 (low): `ChainVerifier.verify(..., now=)` took any value too. Once a chain's bytes
were checked (cached), a call at `now=float("nan")` skipped every window check (each
comparison false) and the feed's freshness: a chain expired long ago, or under a stale feed,
verified. A whole number of seconds (an int, not a bool) is now required of `verify` and
`verify_structure` (an `ArgumentError`), as `TrustPolicy` requires of its skew, and of
`VerifiedFeed.check_fresh`, which every other reader of a feed's age calls (a VC's
verification, a bundle's, the node's): at NaN any feed, however old, was fresh.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from tests.support.parties import verified_feed
from troth.credentials import ChainVerifier, TrustPolicy
from troth.errors import ArgumentError
from troth.secrets import AllowListPolicy, Broker, validate_token

TOKEN = {"scopes": ["read"], "ttl": 60, "max_ttl": 600, "audience": "svc"}
YEAR = 365 * 86_400


def _issued(tmp_path: Path) -> tuple[Broker, str]:
    """A broker (node.db in `tmp_path`) and the token of a lease of `svc` it issued at NOW."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"svc": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("svc", "token", TOKEN, b"", now=NOW)
    issued = broker.issue(world.credential_a(), "svc", now=NOW)
    return broker, str(issued.credential.reveal()["token"])


@pytest.mark.parametrize("leeway", [math.nan, math.inf, 1e9, True, -1, "60"])
def test_a_leeway_that_is_no_whole_number_of_seconds_is_refused(
    tmp_path: Path, leeway: object
) -> None:
    """caveats 1: a token a year past its `exp` validated with `leeway=float("nan")` (every
    comparison false) or `inf`; now any leeway but an int >= 0 is an ArgumentError."""
    broker, token = _issued(tmp_path)
    keys = broker.jwks(NOW)
    with pytest.raises(ArgumentError) as caught:
        validate_token(token, keys, audience="svc", now=NOW + YEAR, leeway=leeway)  # type: ignore[arg-type]
    assert caught.value.parameter == "leeway"


@pytest.mark.parametrize("now", [math.nan, math.inf, float(NOW), True])
def test_a_now_that_is_no_whole_number_of_seconds_is_refused(tmp_path: Path, now: object) -> None:
    """caveats 1: `now=float("nan")` made every time comparison false as well (with the
    broker's `revoked_leases()`, `max(nan, seen)` is NaN): the expired token validated."""
    broker, token = _issued(tmp_path)
    with pytest.raises(ArgumentError) as caught:
        validate_token(
            token,
            broker.jwks(NOW),
            audience="svc",
            now=now,  # type: ignore[arg-type]
            revoked=broker.revoked_leases(),
        )
    assert caught.value.parameter == "now"


@pytest.mark.parametrize("now", [math.nan, math.inf, float(NOW), True])
def test_a_chain_verified_at_a_now_that_is_no_whole_number_is_refused(now: object) -> None:
    """caveats 2: a chain checked once at NOW (its bytes cached), then verified at NaN, passed
    every time check (its links' windows, its issuers' keys, the feed's age), so at any time
    whatever its window: NaN compares false with each bound."""
    world = make_world(NOW)
    verifier = ChainVerifier(TrustPolicy(frozenset({world.authority.identifier})))
    presenter, feeds = world.agent_a.identifier, world.feeds()
    verifier.verify(world.chain_a, presenter=presenter, feeds=feeds, now=NOW)
    with pytest.raises(ArgumentError) as caught:
        verifier.verify(world.chain_a, presenter=presenter, feeds=feeds, now=now)  # type: ignore[arg-type]
    assert caught.value.parameter == "now"
    with pytest.raises(ArgumentError):
        verifier.verify_structure(world.chain_a, now=now)  # type: ignore[arg-type]


@pytest.mark.parametrize("now", [math.nan, float(NOW + YEAR), True])
def test_a_feed_is_not_fresh_at_a_now_that_is_no_whole_number(now: object) -> None:
    """caveats 2: `check_fresh(now=nan)` passed a feed of any age (here one a year old at
    NOW + YEAR, which the int time refuses STALE_FEED)."""
    world = make_world(NOW)
    feed = verified_feed(world.authority, now=NOW)
    with pytest.raises(ArgumentError) as caught:
        feed.check_fresh(now=now, max_staleness=60)  # type: ignore[arg-type]
    assert caught.value.parameter == "now"
