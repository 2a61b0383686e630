"""Re-storing or removing a secret that has open leases (docs/secrets.md, "Operators"): what a
lease created upstream is revoked under the configuration it was issued with. Another engine or
another location (`Engine.location`) first revokes the open leases; the same location keeps
them; an upstream revocation that fails changes nothing (the leases stay revoked, REVOKING, and
the sweep retries them under the configuration still stored)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, RemoteStub, make_world, open_broker
from tests.test_secrets_leases import rejects
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker, LeaseState
from troth.secrets.engine import SecretSpec
from troth.secrets.lease import SecretValue

SECRET = "upstream-db"
CONFIG = {"scopes": ["read"], "ttl": 60, "max_ttl": 600, "server": "db-1"}


class FailingStub(RemoteStub):
    """A remote engine whose server refuses revocations while `down`."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        if self.down:
            raise SecretError(SecretFailure.ENGINE_FAILED, "the server is unreachable")
        super().revoke(spec, ref, upstream)


@pytest.fixture
def world() -> LeaseWorld:
    return make_world(NOW)


def _broker(tmp_path: Path, world: LeaseWorld) -> tuple[Broker, FailingStub]:
    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    engine = FailingStub()
    broker.engines[engine.kind] = engine
    broker.put_secret(SECRET, engine.kind, CONFIG, b"admin", now=NOW)
    return broker, engine


def _state(broker: Broker, lease_handle: object) -> LeaseState:
    (lease,) = [x for x in broker.store.leases_in(list(LeaseState)) if x.handle == lease_handle]
    return lease.state


def test_the_same_location_keeps_the_open_leases(tmp_path: Path, world: LeaseWorld) -> None:
    broker, engine = _broker(tmp_path, world)
    issued = broker.issue(world.credential_a(), SECRET, now=NOW)
    broker.put_secret(SECRET, engine.kind, {**CONFIG, "ttl": 30}, b"new-admin", now=NOW + 1)
    assert _state(broker, issued.lease.handle) is LeaseState.ACTIVE
    assert engine.revoked == []


def test_another_location_revokes_the_open_leases_first(tmp_path: Path, world: LeaseWorld) -> None:
    broker, engine = _broker(tmp_path, world)
    issued = broker.issue(world.credential_a(), SECRET, now=NOW)
    broker.put_secret(SECRET, engine.kind, {**CONFIG, "server": "db-2"}, b"admin", now=NOW + 1)
    assert _state(broker, issued.lease.handle) is LeaseState.REVOKED
    assert engine.revoked == [issued.lease.engine_ref]
    assert broker.spec(SECRET).settings["server"] == "db-2"


def test_another_engine_revokes_the_open_leases_first(tmp_path: Path, world: LeaseWorld) -> None:
    broker, engine = _broker(tmp_path, world)
    issued = broker.issue(world.credential_a(), SECRET, now=NOW)
    token = {"scopes": ["read"], "ttl": 60, "audience": "db"}
    broker.put_secret(SECRET, "token", token, b"", now=NOW + 1)
    assert _state(broker, issued.lease.handle) is LeaseState.REVOKED
    assert engine.revoked == [issued.lease.engine_ref]


def test_a_failed_upstream_revocation_changes_nothing(tmp_path: Path, world: LeaseWorld) -> None:
    """The server is down: the move and the removal are refused, the secret stays as stored
    (the configuration the lease's role is revoked under), the lease stays revoked (REVOKING)
    and the sweep finishes it once the server answers; then the move goes through."""
    broker, engine = _broker(tmp_path, world)
    issued = broker.issue(world.credential_a(), SECRET, now=NOW)
    engine.down = True
    moved = {**CONFIG, "server": "db-2"}
    rejects(lambda: broker.put_secret(SECRET, engine.kind, moved, b"a", now=NOW + 1), _ENGINE)
    rejects(lambda: broker.remove_secret(SECRET, now=NOW + 2), _ENGINE)
    assert broker.spec(SECRET).settings["server"] == "db-1"
    assert _state(broker, issued.lease.handle) is LeaseState.REVOKING
    engine.down = False
    broker.sweep(NOW + 3)  # its retry is not due yet (backoff: review 45b, revocations 1)
    assert _state(broker, issued.lease.handle) is LeaseState.REVOKING
    broker.sweep(NOW + 30)
    assert _state(broker, issued.lease.handle) is LeaseState.REVOKED
    assert engine.revoked == [issued.lease.engine_ref]
    broker.put_secret(SECRET, engine.kind, moved, b"admin", now=NOW + 31)
    assert broker.spec(SECRET).settings["server"] == "db-2"


_ENGINE = SecretFailure.ENGINE_FAILED
