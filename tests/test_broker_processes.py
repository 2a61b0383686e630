"""Brokers of several processes over one node database (review 9): the daemon (`troth node
start`) and each CLI command's transient runtime when no daemon answers each open a broker over
node.db and recover it at start. Recovery aborts every PENDING lease only when no other broker
has the database open; otherwise only those older than the grace (docs/secrets.md, "Crash
safety"). A broker killed by SIGKILL holds nothing: the next one aborts its lease at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.leases import LeaseWorld, RemoteStub, make_world, open_broker
from tests.support.pending_worker import SECRET
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker
from troth.secrets.lease import EndReason, Lease, LeaseState

ROOT = Path(__file__).resolve().parent.parent


def _now() -> int:
    return int(time.time())


def _broker(path: Path, world: LeaseWorld, now: int) -> tuple[Broker, RemoteStub]:
    """A broker over node.db at `path` with the remote engine; agent B may lease SECRET."""
    policy = AllowListPolicy({world.agent_b.identifier: {SECRET: None}})
    _db, broker = open_broker(path, now=now, policy=policy)
    engine = RemoteStub()
    broker.engines[engine.kind] = engine
    return broker, engine


def _another_starts(path: Path, world: LeaseWorld, recover_at: int) -> Callable[[], None]:
    """Another process starts a broker over the same node.db, the way a node starts it (`troth
    secret lease list` with no daemon running: a transient runtime; or `troth node start`)."""

    def start() -> None:
        other, _engine = _broker(path, world, recover_at)
        other.recover(recover_at)
        other.close()

    return start


def _only_lease(broker: Broker) -> Lease:
    (lease,) = broker.store.leases_in(list(LeaseState))
    return lease


def test_a_broker_starting_over_the_node_does_not_abort_another_processs_issue(
    tmp_path: Path,
) -> None:
    start = _now()
    world = make_world(start)
    serving, engine = _broker(tmp_path / "node.db", world, start)
    serving.put_secret(SECRET, engine.kind, {"scopes": ["read"]}, b"admin-pw", now=start)
    engine.during_issue = _another_starts(tmp_path / "node.db", world, start)
    issued = serving.issue(world.credential_b(), SECRET, now=start)
    assert issued.lease.state is LeaseState.ACTIVE
    assert engine.revoked == []
    serving.close()


def test_an_issue_in_flight_past_the_grace_is_aborted_and_its_role_dropped(
    tmp_path: Path,
) -> None:
    """With another broker open, recovery aborts the PENDING leases the periodic sweep would:
    those older than the grace; the issuer then refuses the lease and revokes what it made."""
    start = _now()
    world = make_world(start)
    serving, engine = _broker(tmp_path / "node.db", world, start)
    serving.put_secret(SECRET, engine.kind, {"scopes": ["read"]}, b"admin-pw", now=start)
    late = start + serving.book.pending_grace + 1
    engine.during_issue = _another_starts(tmp_path / "node.db", world, late)
    with pytest.raises(SecretError) as refused:
        serving.issue(world.credential_b(), SECRET, now=start)
    assert refused.value.reason is SecretFailure.REVOKED
    lease = _only_lease(serving)
    assert (lease.state, lease.end_reason) == (LeaseState.REVOKED, EndReason.ABORTED)
    assert engine.revoked == [lease.engine_ref]
    serving.close()


def test_a_broker_restarted_after_a_sigkilled_one_aborts_its_pending_lease_at_once(
    tmp_path: Path,
) -> None:
    """The killed process's lock went with it: alone, the next broker aborts the PENDING lease
    without waiting for the grace (while another broker is open, it waits for the grace)."""
    path = tmp_path / "node.db"
    worker = subprocess.run(
        [sys.executable, "-m", "tests.support.pending_worker", str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT)))},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == -signal.SIGKILL, worker.stderr
    assert worker.stdout == "pending\n"
    now = _now()
    world = make_world(now)
    other, _other_engine = _broker(path, world, now)  # another broker is open: the grace holds
    restarted, engine = _broker(path, world, now)
    assert restarted.recover(now).revoked == 0
    assert _only_lease(restarted).state is LeaseState.PENDING
    other.close()
    report = restarted.recover(now)  # alone: at once
    assert (report.revoked, report.failed) == (1, 0)
    lease = _only_lease(restarted)
    assert (lease.state, lease.end_reason) == (LeaseState.REVOKED, EndReason.ABORTED)
    assert engine.revoked == [lease.engine_ref]
    restarted.close()
