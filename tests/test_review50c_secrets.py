"""Review 50c, secrets broker.

- Batches 1: a feed's (or an operator's) revocation batch tried every lease's upstream
  revocation in turn, however long that took: a server that stopped answering cost the
  broker's single thread a connect timeout per lease (N leases x 10 s), every agent's issue
  queued behind it. A batch now has a budget of engine time; the leases it did not try stay
  REVOKING (committed before any engine call), due for the sweep's first attempts.
- Not before 1: the broker never read a credential's `not_before`, so a delegation dated
  ahead leased up to the verifier's clock skew early. The broker judges the window as it does
  the expiry: a chain valid only thanks to the skew (`VerifiedCredential.within_skew`) is
  refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, RemoteStub, make_world, open_broker
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.broker import Broker
from troth.secrets.engine import SecretSpec
from troth.secrets.lease import Lease, SecretValue
from troth.secrets.sweep import BATCH_REVOKE_SECONDS

CONNECT_TIMEOUT = 10.0  # the postgres engine's default connect_timeout


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Dead(RemoteStub):
    """A remote engine whose server stops answering when `down`: each revocation then costs
    `CONNECT_TIMEOUT` of `clock` and fails."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock
        self.down = False
        self.attempts = 0

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        self.attempts += 1
        if self.down:
            self.clock.now += CONNECT_TIMEOUT
            raise OSError("connection timed out")
        super().revoke(spec, ref, upstream)


def _leases(tmp_path: Path, count: int) -> tuple[Broker, _Dead, _Clock, LeaseWorld, list[Lease]]:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"s": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    clock = _Clock()
    broker.monotonic = clock
    engine = _Dead(clock)
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    agent = world.credential_a()
    leases = [broker.issue(agent, "s", now=NOW).lease for _ in range(count)]
    return broker, engine, clock, world, leases


def _state(broker: Broker, lease: Lease) -> LeaseState | None:
    found = broker.book.lease(lease.handle)
    return None if found is None else found.state


@pytest.mark.parametrize("by", ["feed", "operator"])
def test_a_revocation_batch_against_a_dead_server_is_bounded_and_nothing_is_lost(
    tmp_path: Path, by: str
) -> None:
    """Batches 1: 40 leases on a server that stopped answering are revoked by the feed (or an
    operator): the batch spends at most its budget and one connect timeout, not 40 of them;
    every lease is REVOKING (none live), and once the server answers the sweeps revoke each
    one, those the batch never tried included."""
    broker, engine, clock, world, leases = _leases(tmp_path, 40)
    engine.down = True
    if by == "feed":
        feed = world.feed_revoking([(2, world.agent_a.identifier.digest)], now=NOW + 1)
        ended = broker.revoke_for_feed(feed, now=NOW + 1)
    else:
        ended = broker.revoke_identity(world.agent_a.identifier, now=NOW + 1)
    assert len(ended) == 40
    assert clock.now <= BATCH_REVOKE_SECONDS + CONNECT_TIMEOUT, clock.now
    assert {lease.state for lease in ended} == {LeaseState.REVOKING}
    engine.down = False
    for n in range(2, 200):
        broker.sweep(NOW + 3600 * n)
        if all(_state(broker, lease) is LeaseState.REVOKED for lease in leases):
            break
    assert sorted(map(str, engine.revoked)) == sorted(str(lease.engine_ref) for lease in leases)


def test_the_leases_a_batch_left_are_due_after_a_restart(tmp_path: Path) -> None:
    """Batches 1, crash safety: the leases a batch did not try are REVOKING in node.db before
    any engine call, so a broker opened afresh (the process killed after the batch) revokes
    them at its first sweeps."""
    broker, engine, _clock, world, leases = _leases(tmp_path, 20)
    engine.down = True
    broker.revoke_identity(world.agent_a.identifier, now=NOW + 1)
    assert engine.attempts < 20
    broker.close()
    _db, again = open_broker(tmp_path / "node.db", now=NOW + 2)
    fresh = _Dead(_Clock())
    again.engines[fresh.kind] = fresh
    again.recover(NOW + 2)
    for n in range(3, 100):
        if not again.sweep(NOW + 3600 * n).deferred:
            break
    for lease in leases:
        assert _state(again, lease) is LeaseState.REVOKED


def test_a_chain_dated_ahead_leases_nothing_before_its_not_before(tmp_path: Path) -> None:
    """Not before 1: a delegation valid from NOW + 30 verifies at NOW (within the verifier's
    60 s skew); the broker refuses it a lease until NOW + 30, as it refuses one past its
    expiry."""
    world = make_world(NOW + 30)
    policy = AllowListPolicy({world.agent_a.identifier: {"s": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.engines[RemoteStub.kind] = RemoteStub()
    broker.put_secret("s", RemoteStub.kind, {"scopes": ["x"]}, b"admin", now=NOW)
    early = world.credential_a(now=NOW)
    assert early.not_before == NOW + 30
    with pytest.raises(SecretError) as refused:
        broker.issue(early, "s", now=NOW)
    assert refused.value.reason is SecretFailure.DENIED
    assert "not valid before" in refused.value.detail
    assert broker.leases(early) == []
    issued = broker.issue(early, "s", now=NOW + 30)
    assert issued.lease.issued_at == NOW + 30
