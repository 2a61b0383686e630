"""Review 58d (secrets): the secrets broker and its leases, as an attacker.

1. `Broker.validate_token(token, audience=, now=)` — "anyone"'s check in docs/secrets.md, what
   a service that asks the broker gets — moved the broker's clock (its high-water mark, stored
   in `secret_meta`) to the `now` it was given, before it read the token. A relying party whose
   clock ran ahead (or that passed any `now` it was handed), with any string for a token, ended
   every lease of the broker (its tokens refused EXPIRED, renewals refused) and had every later
   lease dated from that time, for good: the mark survived a restart. docs/secrets.md, "The
   broker's clock", says only the broker's own calls move it, never a relying party's `now`.
   Two calls with times in the past (0, then the mark less a second) moved it by half the mark,
   some 28 years: behind the mark the broker's time goes on at half the pace of the `now`
   values it is given (review 54l), and a jump from 0 counted as 56 years gone by (fixed with
   3 below). One call with
   `now` 2**63 left the mark in memory past SQLite's integers: every issue, renewal and sweep
   then failed with OverflowError (expired leases never swept, a postgres role living on) until
   the broker restarted.
   Fixed by the lead: judged at max(now, the mark), moving nothing, as `Broker.jwks` does;
   review 54e's and 54l's tests now move the broker's clock with its sweep, as a served
   broker's does every 5 s, instead of through `broker.validate_token`.

2. An operator's `revoke_identity` (`troth lease revoke --holder IDENTITY`, the served broker's
   `revoke-identity`) revoked the leases the identity holds, not those its delegates hold under
   chains it signed. docs/secrets.md ("A rotation is not a revocation") names it as the way to
   end at once what a thief of a rotated-out key obtained, a delegator's included; but a thief
   of a member's (or orchestrator's) key mints delegates offline, and their leases — filed under
   the member's account, their chains through its key — stayed live, their identities unknown
   to the operator (no command lists them). A feed's revocation of the same identity ends them
   (every lease whose chain has it as a link's issuer or subject). The operator's revocation
   now ends the same set: the identity's own leases and every lease whose chain it is a member
   of (within the authorities a remote operator acts for).

3. The same decades from the node's own clock: behind its mark, the broker's time went on at
   half the pace of the `now` values the node gave it, a jump counted as time gone by. A clock
   once ahead (a sweep an hour ahead), then reset near 1970 (a device without a real-time clock
   rebooting) and corrected by NTP to the true time, still behind the mark, moved the mark by
   half of 56 years: every lease ended, every later token dated decades ahead (refused by
   every relying party), and the mark stored. A forward jump of the clock larger than
   `limits.BROKER_CLOCK_JUMP` (an hour; the served broker calls it every few seconds) while
   behind the mark now counts as a new set back, not as time gone by.

Each test asserts the correct behaviour; a strict xfail is a finding not fixed here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world
from tests.support.secret_checks import lease_state, token_broker
from troth.errors import SecretError, SecretFailure
from troth.secrets import Broker
from troth.secrets.lease import LeaseState

AUDIENCE = "payments"
TTL = 120
CONFIG: dict[str, object] = {
    "scopes": ["refunds"],
    "ttl": TTL,
    "max_ttl": 600,
    "audience": AUDIENCE,
}
AHEAD = 10**7  # a relying party's clock some four months ahead


def _broker(path: Path, world: LeaseWorld, now: int = NOW) -> Broker:
    return token_broker(path, [world.agent_a.identifier], CONFIG, now=now)


def test_a_relying_partys_now_given_to_the_broker_moves_not_its_clock(tmp_path: Path) -> None:
    """Review 58d, secrets 1: `broker.validate_token` with a `now` far ahead (and a token that
    is not even one) left the broker's mark there: every lease ended, and a restarted broker
    still read it. The mark stays; what the broker judged stays judged at its own time."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    token = str(issued.credential.reveal()["token"])
    with pytest.raises(SecretError) as caught:
        broker.validate_token("not.a.token", audience=AUDIENCE, now=NOW + AHEAD)
    assert caught.value.reason is SecretFailure.JWT_MALFORMED
    with pytest.raises(SecretError) as caught:  # the token, at the relying party's clock
        broker.validate_token(token, audience=AUDIENCE, now=NOW + AHEAD)
    assert caught.value.reason is SecretFailure.EXPIRED
    assert broker.clock.seen() < NOW + AHEAD
    assert broker.validate_token(token, audience=AUDIENCE, now=NOW + 2).jti == str(
        issued.lease.handle
    )
    lease, _made = broker.renew(world.credential_a(), issued.lease_id, now=NOW + 3)
    assert lease.expires_at == NOW + 3 + TTL
    broker.close()
    again = _broker(tmp_path / "node.db", world, now=NOW + 4)
    assert again.clock.seen() < NOW + AHEAD
    again.close()


def test_past_times_given_to_the_broker_move_its_clock_not_decades_ahead(tmp_path: Path) -> None:
    """Review 58d, secrets 1 and 3: `now` 0, then the mark less a second: neither is ahead of
    the mark, yet the broker's time went on by half the distance between them (~28 years).
    Fixed with secrets 3 (a jump forward behind the mark is a correction)."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    token = str(issued.credential.reveal()["token"])
    for when in (0, NOW - 1):
        with pytest.raises(SecretError):
            broker.validate_token("not.a.token", audience=AUDIENCE, now=when)
    assert broker.clock.seen() <= NOW + 1
    assert broker.validate_token(token, audience=AUDIENCE, now=NOW + 2).jti
    broker.close()


def test_an_absurd_now_given_to_the_broker_stops_no_sweep(tmp_path: Path) -> None:
    """Review 58d, secrets 1: one `validate_token` at `now` 2**63 (any token) and every
    issue, renewal and sweep failed with OverflowError until a restart: the expired lease was
    never swept."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    with pytest.raises(Exception):  # noqa: B017, PT011 (any refusal: it must move nothing)
        broker.validate_token("not.a.token", audience=AUDIENCE, now=2**63)
    broker.sweep(NOW + TTL + 1)
    assert lease_state(broker, issued.lease.handle) is not LeaseState.ACTIVE
    assert broker.issue(world.credential_a(), "payments", now=NOW + TTL + 2).lease
    broker.close()


def test_an_operators_revocation_of_a_delegator_ends_its_delegates_leases(tmp_path: Path) -> None:
    """Review 58d, secrets 2: agent a leases under user -> orchestrator -> a. The operator
    revokes the user (its key stolen), then the orchestrator: a's lease must end with either,
    as a feed revoking either ends it; b's lease (no chain through them) stays."""
    world = make_world(NOW)
    holders = [world.agent_a.identifier, world.agent_b.identifier]
    broker = token_broker(tmp_path / "node.db", holders, CONFIG, now=NOW)
    for delegator in (world.user, world.orchestrator):
        by_a = broker.issue(world.credential_a(), "payments", now=NOW)
        by_b = broker.issue(world.credential_b(), "payments", now=NOW)
        token = str(by_a.credential.reveal()["token"])
        revoked = broker.revoke_identity(delegator.identifier, now=NOW + 1)
        assert [lease.handle for lease in revoked] == [by_a.lease.handle]
        with pytest.raises(SecretError) as caught:
            broker.validate_token(token, audience=AUDIENCE, now=NOW + 2)
        assert caught.value.reason is SecretFailure.REVOKED
        with pytest.raises(SecretError) as caught:
            broker.renew(world.credential_a(), by_a.lease_id, now=NOW + 2)
        assert caught.value.reason is SecretFailure.REVOKED
        assert lease_state(broker, by_b.lease.handle) is LeaseState.ACTIVE
        broker.revoke_lease(by_b.lease.handle, now=NOW + 2)
    # a remote operator acting for another authority ends nothing of this authority's chains
    by_a = broker.issue(world.credential_a(), "payments", now=NOW + 3)
    other = frozenset({world.agent_b.identifier})
    assert broker.revoke_identity(world.user.identifier, now=NOW + 4, authorities=other) == []
    assert lease_state(broker, by_a.lease.handle) is LeaseState.ACTIVE
    broker.close()


def test_a_clock_reset_near_1970_then_corrected_moves_no_mark_decades_ahead(
    tmp_path: Path,
) -> None:
    """Review 58d, secrets 3: the node's clock an hour ahead once, then near 1970 (a reboot
    without a real-time clock), then the true time again (NTP), still behind the mark: the
    broker's time stays within the hour it was ahead, and a lease issued then lives its term."""
    world = make_world(NOW)
    broker = _broker(tmp_path / "node.db", world)
    broker.sweep(NOW + 3600)
    broker.sweep(1_000)
    broker.sweep(NOW)
    assert broker.clock.seen() <= NOW + 3600 + 5
    issued = broker.issue(world.credential_a(), "payments", now=NOW + 5)
    assert issued.lease.expires_at <= NOW + 3600 + 5 + TTL
    broker.close()
