"""Review 45i, secrets 1: stuck revocations add up.

The retries of failed upstream revocations backed off per lease (review 45b, revocations 1),
but a sweep still tried every due one: an agent with its whole quota of stuck leases (100)
cost the broker's thread 100 lock timeouts (5 s each) every 30 minutes (~28%), several such
agents all of it, and the due retries were tried in `retry_at` order, so one account's stuck
leases went before (and, with a budget, would starve) another account's revocation. A sweep
now spends at most `MAX_SWEEP_RETRIES` attempts and `SWEEP_RETRY_SECONDS` of engine time on
retries (an attempt that overran is charged to the next sweeps), taken in turn across accounts,
the accounts with the fewest due retries first.

Strict xfails until `troth.secrets.sweep` budgeted the sweep's retries.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.book import REVOKE_RETRY_MAX
from troth.secrets.broker import Broker
from troth.secrets.engine import SecretSpec
from troth.secrets.lease import LeaseHandle, SecretValue
from troth.secrets.sweep import MAX_SWEEP_RETRIES, SWEEP_RETRY_SECONDS

STUCK = 100  # the default quota: one account's whole share of leases


class _Clock:
    """A monotonic clock the engine advances (no real time passes in these tests)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Engine(RemoteStub):
    """Revocations of the refs in `stuck` fail, each after `cost` seconds of `clock`; every
    attempt is counted by ref."""

    def __init__(self, clock: _Clock, cost: float = 0.0) -> None:
        super().__init__()
        self.clock = clock
        self.cost = cost
        self.stuck: set[str] = set()
        self.attempts: list[str | None] = []

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        self.attempts.append(ref)
        if ref in self.stuck:
            self.clock.now += self.cost
            raise OSError("lock timeout")
        super().revoke(spec, ref, upstream)


def _world(tmp_path: Path, cost: float = 0.0) -> tuple[Broker, _Engine, list[str], LeaseHandle]:
    """Account A (agent a's member) with `STUCK` leases whose revocations keep failing, each
    already failed once (due again); account B (agent b) with one lease whose revocation
    failed once too, and now goes through. Returns the broker, the engine, A's refs, B's
    handle."""
    world = make_world(NOW)
    policy = AllowListPolicy(
        {world.agent_a.identifier: {"s": None}, world.agent_b.identifier: {"s": None}}
    )
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    clock = _Clock()
    broker.monotonic = clock
    engine = _Engine(clock)
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    a, b = world.credential_a(), world.credential_b()
    refs = []
    for _ in range(STUCK):
        issued = broker.issue(a, "s", now=NOW)
        ref = issued.lease.engine_ref
        assert ref is not None
        engine.stuck.add(ref)
        refs.append(ref)
        assert broker.revoke(a, issued.lease_id, now=NOW).state is LeaseState.REVOKING
    other = broker.issue(b, "s", now=NOW + 1)
    assert other.lease.engine_ref is not None
    engine.stuck.add(other.lease.engine_ref)
    assert broker.revoke(b, other.lease_id, now=NOW + 1).state is LeaseState.REVOKING
    engine.stuck.discard(other.lease.engine_ref)  # B's upstream is back
    engine.cost = cost
    engine.attempts.clear()
    return broker, engine, refs, other.lease.handle


def test_a_sweep_tries_a_bounded_number_of_retries_fairly_across_accounts(
    tmp_path: Path,
) -> None:
    """The first sweep after every retry is due tries at most `MAX_SWEEP_RETRIES` of A's
    stuck leases (not all 100), and B's revocation is done in it."""
    broker, engine, refs, other = _world(tmp_path)
    broker.sweep(NOW + REVOKE_RETRY_MAX)
    of_a = [ref for ref in engine.attempts if ref in refs]
    assert len(of_a) <= MAX_SWEEP_RETRIES, len(of_a)
    assert broker.book.lease(other).state is LeaseState.REVOKED  # type: ignore[union-attr]
    # the rest are tried by the next sweeps: every stuck lease gets its turn
    for n in range(1, STUCK // MAX_SWEEP_RETRIES + 2):
        broker.sweep(NOW + REVOKE_RETRY_MAX + n)
    assert set(engine.attempts) >= set(refs)


def test_the_engine_time_a_sweep_spends_on_retries_is_bounded(tmp_path: Path) -> None:
    """Each failed attempt costs 5 s of engine time (a lock timeout): the first sweep does
    B's revocation and then stops after one of A's; over the following sweeps the retries
    take at most `SWEEP_RETRY_SECONDS` a sweep on average (the overrun is paid back), not 100
    lock timeouts."""
    cost = 5.0
    broker, engine, refs, other = _world(tmp_path, cost=cost)
    broker.sweep(NOW + REVOKE_RETRY_MAX)
    assert broker.book.lease(other).state is LeaseState.REVOKED  # type: ignore[union-attr]
    assert len([ref for ref in engine.attempts if ref in refs]) == 1
    sweeps = 200
    for n in range(1, sweeps):
        broker.sweep(NOW + REVOKE_RETRY_MAX + n)
    spent = cost * len([ref for ref in engine.attempts if ref in refs])
    assert spent <= sweeps * SWEEP_RETRY_SECONDS + cost, spent
