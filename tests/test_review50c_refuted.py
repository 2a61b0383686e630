"""Review 50c, attacks that failed (the broker was right)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from tests.test_review49e_secrets import CONNECT_TIMEOUT
from tests.test_review50c_secrets import _leases
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, LeaseState


def test_a_lease_a_batch_left_untried_is_revoking_all_the_same(tmp_path: Path) -> None:
    """A lease the feed's batch did not get to upstream (its budget spent on a dead server)
    is REVOKING in node.db all the same, as its agent lists it (so neither renewed, used nor
    its tokens valid: `revoked_leases`); only its upstream object waits for the sweep."""
    broker, engine, clock, world, leases = _leases(tmp_path, 5)
    engine.down = True
    feed = world.feed_revoking([(2, world.agent_a.identifier.digest)], now=NOW + 1)
    broker.revoke_for_feed(feed, now=NOW + 1)
    assert clock.now >= CONNECT_TIMEOUT  # (the first lease's attempt spent the budget)
    assert engine.attempts < len(leases)
    agent = world.credential_a()
    for lease in leases:
        found = broker.book.lease(lease.handle)
        assert found is not None
        assert found.state is LeaseState.REVOKING
    assert {lease.state for lease in broker.leases(agent)} == {LeaseState.REVOKING}


def test_a_chain_valid_only_thanks_to_the_skew_past_its_expiry_leases_nothing(
    tmp_path: Path,
) -> None:
    """A chain whose links expire at NOW + 100 verifies at NOW + 130 (the verifier's 60 s
    skew): the broker refuses it EXPIRED, its expiry judged with no skew (it always was)."""
    world = make_world(NOW, chain_ttl=100)
    policy = AllowListPolicy({world.agent_a.identifier: {"s": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.engines[RemoteStub.kind] = RemoteStub()
    broker.put_secret("s", RemoteStub.kind, {"scopes": ["x"]}, b"admin", now=NOW)
    late = world.credential_a(now=NOW + 99)
    assert late.expires_at == NOW + 100
    with pytest.raises(SecretError) as refused:
        broker.issue(late, "s", now=NOW + 130)
    assert refused.value.reason is SecretFailure.EXPIRED
