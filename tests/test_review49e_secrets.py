"""Review 49e, secrets broker.

Orphans 1: the orphan sweep (upstream objects with the broker's prefix that no open lease
names) ran at every sweep, outside every budget of the sweep: each sweep (every 5 s on a served
broker) connected to every remote secret's server and listed its roles, and removed every
orphan found, however long that took. The retries and the first revocations each have a budget
of engine time (review 45i, secrets 1; review 46d, secrets 2), so a stuck revocation costs the
broker's thread at most ~10% of its time; but one secret whose server stopped answering cost a
connect timeout (10 s by default, up to 60 s) of the broker's single thread at every sweep, each
secret on such a server as much again, and every agent's issue and every feed's revocation
(of leases on servers that do answer) queued behind it. The orphan sweep now has its own
budget of engine time and attempts, a secret's listing that fails backs off, and a secret is
listed at most every `ORPHAN_SWEEP_SECONDS`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.broker import Broker
from troth.secrets.engine import Grant, SecretSpec
from troth.secrets.lease import LeaseCredential, SecretValue
from troth.secrets.sweep import MAX_SWEEP_ORPHANS, ORPHAN_SWEEP_SECONDS, SWEEP_ORPHAN_SECONDS

CONNECT_TIMEOUT = 10.0  # the postgres engine's default connect_timeout


class _Clock:
    """A monotonic clock the engine advances (no real time passes in these tests)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Upstream(RemoteStub):
    """A remote engine whose servers are named by each secret's `server` setting: listing the
    roles of one in `down` costs `CONNECT_TIMEOUT` of `clock` and fails; `roles` are the
    objects each server holds (the orphans), each removal counted."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock
        self.down: set[str] = set()
        self.roles: dict[str, set[str]] = {}
        self.listings: list[str] = []

    def upstream_refs(self, spec: SecretSpec, upstream: SecretValue) -> set[str]:
        server = spec.settings["server"]
        self.listings.append(server)
        if server in self.down:
            self.clock.now += CONNECT_TIMEOUT
            raise OSError("connection timed out")
        return set(self.roles.get(server, set()))

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        super().revoke(spec, ref, upstream)
        self.roles.get(spec.settings["server"], set()).discard(ref or "")


def _broker(tmp_path: Path, servers: list[str]) -> tuple[Broker, _Upstream, _Clock]:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"s0": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    clock = _Clock()
    broker.monotonic = clock
    engine = _Upstream(clock)
    engine.local = False
    broker.engines[engine.kind] = engine
    for n, server in enumerate(servers):
        config = {"scopes": ["x"], "server": server}
        broker.put_secret(f"s{n}", engine.kind, config, b"admin", now=NOW)
    return broker, engine, clock


def test_a_server_that_stopped_answering_costs_the_sweep_a_bounded_share(
    tmp_path: Path,
) -> None:
    """Four secrets on a server that no longer answers (each listing a connect timeout of
    10 s): over 200 sweeps (5 s apart, as the served broker's) their listings take at most the
    orphan budget a sweep on average, not 4 connect timeouts at every sweep."""
    broker, engine, clock = _broker(tmp_path, ["dead", "dead", "dead", "dead"])
    engine.down.add("dead")
    sweeps = 200
    for n in range(sweeps):
        broker.sweep(NOW + 5 * n)
    assert clock.now <= sweeps * SWEEP_ORPHAN_SECONDS + CONNECT_TIMEOUT, clock.now


def test_a_dead_server_does_not_starve_the_orphans_of_another(tmp_path: Path) -> None:
    """One secret's server is down, another's holds orphans (a power loss undid their lease
    rows): the orphans are removed within the first sweeps, whatever the dead one costs."""
    broker, engine, _clock = _broker(tmp_path, ["dead", "live"])
    engine.down.add("dead")
    prefix = "role_"
    engine.roles["live"] = {f"{prefix}{n}" for n in range(3)}
    for n in range(40):
        broker.sweep(NOW + 5 * n)
    assert engine.roles["live"] == set()


def test_many_orphans_are_removed_within_a_budget_a_sweep_and_all_in_the_end(
    tmp_path: Path,
) -> None:
    """A restored backup left 1,000 orphans on one server: one sweep removes at most
    `MAX_SWEEP_ORPHANS` of them (each a round trip or a lock timeout), the next sweeps the
    rest, without waiting `ORPHAN_SWEEP_SECONDS` between."""
    broker, engine, _clock = _broker(tmp_path, ["live"])
    engine.roles["live"] = {f"role_{n:04}" for n in range(1000)}
    report = broker.sweep(NOW)
    assert report.orphans <= MAX_SWEEP_ORPHANS, report.orphans
    sweeps = 1000 // MAX_SWEEP_ORPHANS + 2
    for n in range(1, sweeps + 1):
        broker.sweep(NOW + 5 * n)
    assert engine.roles["live"] == set()
    assert 5 * sweeps < ORPHAN_SWEEP_SECONDS * 4  # (not one listing per ORPHAN_SWEEP_SECONDS)


def test_a_healthy_server_is_listed_once_per_period_not_at_every_sweep(tmp_path: Path) -> None:
    """A server with nothing to sweep is listed at the first sweep (after a restart: what a
    crash left), then once every `ORPHAN_SWEEP_SECONDS`."""
    broker, engine, _clock = _broker(tmp_path, ["live"])
    for n in range(ORPHAN_SWEEP_SECONDS // 5 * 3):
        broker.sweep(NOW + 5 * n)
    assert 2 <= len(engine.listings) <= 4, engine.listings


# -- renewals 1 -----------------------------------------------------------------------------------


def write_locked(path: Path) -> bool:
    """Whether another connection holds node.db's write lock (a write transaction open)."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        said = str(exc)
    else:
        said = ""
    finally:
        other.close()
    assert not said or "locked" in said or "busy" in said, said
    return bool(said)


class _SlowRenewals(RemoteStub):
    """A remote engine whose renewal talks to its server (a connect timeout, a lock wait:
    `during_renew` runs where the real one would), as postgres's does."""

    def __init__(self) -> None:
        super().__init__()
        self.during_renew: Callable[[], None] = lambda: None
        self.renewed = 0

    def renew(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        self.during_renew()
        self.renewed += 1
        return LeaseCredential({"user": grant.engine_ref or ""}, b"password")


def test_a_remote_renewal_holds_no_write_lock_of_the_node_database(tmp_path: Path) -> None:
    """While a postgres renewal waits on its server (up to a connect timeout, 60 s, or a
    lock timeout an agent's own session can make it wait, at each renewal it asks for), the
    node's database is free for every other writer: the identity service, the trust store,
    a CLI's `troth revoke link` (which would fail `database is locked`), other brokers."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"s": None}})
    path = tmp_path / "node.db"
    _db, broker = open_broker(path, now=NOW, policy=policy)
    engine = _SlowRenewals()
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    credential = world.credential_a()
    issued = broker.issue(credential, "s", now=NOW)
    locked: list[bool] = []
    engine.during_renew = lambda: locked.append(write_locked(path))
    lease, _made = broker.renew(credential, issued.lease_id, now=NOW + 10)
    assert engine.renewed == 1
    assert lease.expires_at > issued.lease.expires_at
    assert locked == [False]


def test_a_remote_renewal_of_a_lease_revoked_meanwhile_is_refused(tmp_path: Path) -> None:
    """The lease is revoked (a feed, an operator, another broker over the database) while its
    engine renews it: the renewal is refused and the lease stays revoked, its upstream object
    revoked (never extended past the revocation)."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"s": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    engine = _SlowRenewals()
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    credential = world.credential_a()
    issued = broker.issue(credential, "s", now=NOW)
    handle = issued.lease.handle

    def revoke_meanwhile() -> None:
        if not broker.store.db.in_transaction:  # (never, now: no renewal's transaction is open)
            broker.revoke_lease(handle, now=NOW + 10)

    engine.during_renew = revoke_meanwhile
    with pytest.raises(SecretError) as caught:
        broker.renew(credential, issued.lease_id, now=NOW + 10)
    assert caught.value.reason in (SecretFailure.REVOKED, SecretFailure.EXPIRED)
    after = broker.book.lease(handle)
    assert after is not None
    assert after.state is LeaseState.REVOKED
    assert after.expires_at == issued.lease.expires_at
    assert engine.revoked.count(issued.lease.engine_ref) >= 1
