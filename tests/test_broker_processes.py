"""Brokers of several processes over one node database (review 9): the daemon (`troth node
start`) and each CLI command's transient runtime when no daemon answers each open a broker over
node.db and recover it at start. Recovery must not abort a lease another live broker is issuing
(docs/secrets.md, "Crash safety")."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.leases import RemoteStub, make_world, open_broker
from troth.secrets import AllowListPolicy
from troth.secrets.lease import LeaseState


def _now() -> int:
    return int(time.time())


@pytest.mark.xfail(
    strict=True,
    reason="Broker.recover (run by every broker that starts: the daemon, and each CLI command's "
    "transient runtime when no daemon runs) aborts every PENDING lease, assuming no issue is "
    "in flight, though another process's may be",
)
def test_a_broker_starting_over_the_node_does_not_abort_another_processs_issue(
    tmp_path: Path,
) -> None:
    start = _now()
    world = make_world(start)
    engine = RemoteStub()
    policy = AllowListPolicy({world.agent_b.identifier: {"orders-db": None}})
    _db, serving = open_broker(tmp_path / "node.db", now=start, policy=policy)
    serving.engines[engine.kind] = engine
    serving.put_secret("orders-db", engine.kind, {"scopes": ["read"]}, b"admin-pw", now=start)

    def another_process_starts_a_broker() -> None:
        # `troth secret lease list` with no daemon running (a transient runtime), or
        # `troth node start`: a broker over the same node.db, started the way a node starts it
        _other_db, other = open_broker(tmp_path / "node.db", now=start, policy=policy)
        other.engines[engine.kind] = RemoteStub()
        other.recover(start)
        other.close()

    engine.during_issue = another_process_starts_a_broker
    issued = serving.issue(world.credential_b(), "orders-db", now=start)
    assert issued.lease.state is LeaseState.ACTIVE
