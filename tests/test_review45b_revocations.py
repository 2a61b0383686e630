"""Review 45b, lease revocations (the broker's sweep).

1. A revocation an engine keeps failing (a postgres lock held by a session the admin may not
   signal, a prepared transaction, a holder that takes it again at once: review 44b, postgres 1's
   residuals) was retried at every sweep, each attempt costing the broker's thread up to the
   engine's lock timeout (5 s): one stuck lease took that much of the thread every SWEEP_SECONDS,
   for good. The retries now back off per lease (`REVOKE_RETRY_FIRST` doubling up to
   `REVOKE_RETRY_MAX`), the schedule stored with the lease (a restart does not reset it); the
   lease stays REVOKING (counted in its quota) and is reported (`Broker.stuck_revocations`).

2. Ended leases (REVOKED: revoked, expired, aborted) stayed in `secret_leases` for good. The
   served broker's maintenance now prunes those ended more than `ENDED_LEASE_RETENTION` ago
   (`Broker.prune`); never a live or REVOKING one.

Both tests were strict xfails until the fixes.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.book import ENDED_LEASE_RETENTION, REVOKE_RETRY_FIRST, REVOKE_RETRY_MAX
from troth.secrets.broker import Broker
from troth.secrets.engine import SecretSpec
from troth.secrets.lease import LeaseHandle, SecretValue

SWEEP = 5  # the served broker's SWEEP_SECONDS


class _Stuck(RemoteStub):
    """A remote engine whose revocations fail until `stuck` is cleared (each attempt counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.stuck = True
        self.attempts = 0

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        self.attempts += 1
        if self.stuck:
            raise OSError("lock timeout")
        super().revoke(spec, ref, upstream)


def _stuck_lease(tmp_path: Path) -> tuple[Broker, _Stuck, LeaseHandle]:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"stuck": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    engine = _Stuck()
    broker.engines[engine.kind] = engine
    broker.put_secret("stuck", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    agent = world.credential_b()
    issued = broker.issue(agent, "stuck", now=NOW)
    assert broker.revoke(agent, issued.lease_id, now=NOW).state is LeaseState.REVOKING
    return broker, engine, issued.lease.handle


def test_a_stuck_revocation_is_retried_with_backoff_not_at_every_sweep(tmp_path: Path) -> None:
    """1: 2,000 sweeps (~2.8 hours) retry the stuck lease a logarithmic number of times (plus
    the cap's few), not 2,000; it stays REVOKING and reported; once the engine recovers, a
    later sweep finishes it."""
    broker, engine, handle = _stuck_lease(tmp_path)
    for n in range(1, 2001):
        broker.sweep(NOW + n * SWEEP)
    doublings = (REVOKE_RETRY_MAX // REVOKE_RETRY_FIRST).bit_length()  # to reach the cap
    at_cap = 2000 * SWEEP // REVOKE_RETRY_MAX  # then one per cap
    assert engine.attempts <= 1 + doublings + at_cap + 1, engine.attempts
    assert engine.attempts < 2000 // 50
    assert broker.book.lease(handle).state is LeaseState.REVOKING  # type: ignore[union-attr]
    assert [lease.handle for lease, _attempts, _retry in broker.stuck_revocations()] == [handle]
    engine.stuck = False
    later = NOW + 2001 * SWEEP + 3600
    broker.sweep(later)
    assert broker.book.lease(handle).state is LeaseState.REVOKED  # type: ignore[union-attr]
    assert broker.stuck_revocations() == []


def test_an_agent_revoking_its_stuck_lease_again_does_not_retry_it_early(tmp_path: Path) -> None:
    """1: the agent's own `revoke` of a REVOKING lease waits for its retry time too (each call
    cost the broker's thread the engine's lock timeout)."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"stuck": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    engine = _Stuck()
    broker.engines[engine.kind] = engine
    broker.put_secret("stuck", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    agent = world.credential_b()
    issued = broker.issue(agent, "stuck", now=NOW)
    for _ in range(100):
        assert broker.revoke(agent, issued.lease_id, now=NOW).state is LeaseState.REVOKING
    assert engine.attempts == 1


def test_the_backoff_survives_a_restart(tmp_path: Path) -> None:
    """1: the schedule is stored: a broker opened again (the node restarted) does not retry the
    stuck lease before its time."""
    broker, engine, _handle = _stuck_lease(tmp_path)
    for n in range(1, 400):
        broker.sweep(NOW + n * SWEEP)
    before = engine.attempts
    broker.close()
    broker.store.db.close()
    _db, again = open_broker(tmp_path / "node.db", now=NOW + 400 * SWEEP)
    again.engines[engine.kind] = engine
    again.recover(NOW + 400 * SWEEP)
    for n in range(401, 420):
        again.sweep(NOW + n * SWEEP)
    assert engine.attempts == before


# -- 2. ended leases are pruned ----------------------------------------------------------------


def _rows(broker: Broker) -> int:
    row = broker.store.db.fetch_one("SELECT COUNT(*) FROM secret_leases")
    assert row is not None
    return int(row[0])


def test_ended_leases_are_pruned_after_the_retention_live_and_revoking_ones_never(
    tmp_path: Path,
) -> None:
    """2: REVOKED (and expired) lease rows stayed in the broker's table for good. `prune(now)`
    (the served broker's maintenance) deletes those ended more than `ENDED_LEASE_RETENTION`
    ago; an ACTIVE lease (even past its expiry, not yet swept), a REVOKING one (its role may
    still exist) and a recently ended one stay."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"stuck": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    engine = _Stuck()
    engine.stuck = False
    broker.engines[engine.kind] = engine
    broker.put_secret("stuck", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    agent = world.credential_b()
    old = broker.issue(agent, "stuck", now=NOW)
    broker.revoke(agent, old.lease_id, now=NOW)
    expired = broker.issue(agent, "stuck", now=NOW, ttl=10)
    broker.sweep(NOW + 20)  # expired -> REVOKED
    live = broker.issue(agent, "stuck", now=NOW)
    engine.stuck = True
    stuck = broker.issue(agent, "stuck", now=NOW)
    broker.revoke(agent, stuck.lease_id, now=NOW)
    engine.stuck = False
    later = NOW + ENDED_LEASE_RETENTION - 5
    recent = broker.issue(agent, "stuck", now=NOW)
    broker.revoke(agent.actor, recent.lease_id, now=later)  # by its identity (no credential)
    assert _rows(broker) == 5
    assert broker.prune(NOW + ENDED_LEASE_RETENTION + 30) == 2
    assert broker.book.lease(old.lease.handle) is None
    assert broker.book.lease(expired.lease.handle) is None
    for kept, state in (
        (live, LeaseState.ACTIVE),
        (stuck, LeaseState.REVOKING),
        (recent, LeaseState.REVOKED),
    ):
        lease = broker.book.lease(kept.lease.handle)
        assert lease is not None
        assert lease.state is state
    assert broker.prune(NOW + ENDED_LEASE_RETENTION + 30) == 0
