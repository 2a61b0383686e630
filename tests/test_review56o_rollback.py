"""Review 56o, rollback 1 (review 56d, rollback 2's test: tests/test_review56d_rollback.py): a
broker store whose leases an older troth issued is armed when the upgraded broker opens it.
These check the other side: a broker with no lease arms nothing, so a fresh store with its
guard deleted (or never written) still opens as a fresh store, not as a restored copy."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import broker_at, make_world
from troth.secrets import AllowListPolicy
from troth.storage.rollback import guard_path, read_guard

CONFIG = {"scopes": ["read"], "ttl": 300, "audience": "x"}


def test_rollback1_a_broker_with_no_lease_arms_nothing_and_opens_fresh(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    with broker_at(path, now=NOW, policy=policy) as broker:
        broker.put_secret("api", "token", dict(CONFIG), b"", now=NOW)
    guard = read_guard(guard_path(path))
    assert guard is None or "broker" not in guard  # nothing to replay: nothing armed
    guard_path(path).unlink(missing_ok=True)
    with broker_at(path, now=NOW + 1, policy=policy) as broker:
        assert broker.restored is None  # a fresh store, not a restored copy
        broker.issue(world.credential_a(), "api", now=NOW + 1, scope=["read"])
    assert read_guard(guard_path(path)) == {"broker": 0}  # the first lease arms it (52c)
    with broker_at(path, now=NOW + 2, policy=policy) as broker:
        assert broker.restored is None
