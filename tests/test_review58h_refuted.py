"""Review 58h: attacks on this session's trace and broker changes that the product stops, each
a real attempt that fails if the defence breaks."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.conftest import NOW
from tests.support.cli import run, run_json
from tests.support.leases import make_world
from tests.support.secret_checks import lease_state, token_broker
from tests.support.traces import record_on_node
from troth.node import troth_home
from troth.secrets.lease import LeaseState

CONFIG: dict[str, object] = {"scopes": ["refunds"], "ttl": 120, "max_ttl": 600, "audience": "p"}


def _put_back(copy: Path, path: Path) -> None:
    for name in ("", "-wal", "-shm"):
        Path(f"{path}{name}").unlink(missing_ok=True)
    shutil.copyfile(copy, path)


def test_a_node_db_put_back_under_a_current_log_bricks_nothing(tmp_path: Path) -> None:
    """node.db put back to a copy taken after its log was made (its accepted checkpoint older
    than the log's newest, which a verify with no kept file moved on since: review 58h, trace
    1), trace.db current: the log is the node's (no `trace log damaged`), verifies `valid`
    against the copy's accepted checkpoint, and grows on."""
    run("identity", "create", "support")
    record_on_node(troth_home(), 1)
    run("trace", "checkpoint")
    run("trace", "verify", "--checkpoint", str(tmp_path / "kept.note"))
    node_db = troth_home() / "nodes" / "default" / "node.db"
    copy = tmp_path / "node.db"
    with closing(sqlite3.connect(node_db)) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)  # what was committed, its WAL included
    record_on_node(troth_home(), 2)
    run("trace", "checkpoint")
    assert run_json("trace", "verify")["records"] == 3
    _put_back(copy, node_db)
    verified = run_json("trace", "verify")
    assert (verified["status"], verified["records"]) == ("valid", 3)
    record_on_node(troth_home(), 1)
    assert run_json("trace", "verify")["records"] == 4


def test_revoking_the_lowest_delegate_ends_not_its_delegators_or_others_leases(
    tmp_path: Path,
) -> None:
    """`revoke_identity` of agent a (user -> orchestrator -> a) ends a's lease only: the user's
    own lease under its member credential (a chain that names not a), and agent b's, stay;
    a lease renewed is found under its one chain (renewal keeps it)."""
    world = make_world(NOW)
    holders = [world.agent_a.identifier, world.agent_b.identifier, world.user.identifier]
    broker = token_broker(tmp_path / "node.db", holders, CONFIG, now=NOW)
    by_a = broker.issue(world.credential_a(), "payments", now=NOW)
    by_b = broker.issue(world.credential_b(), "payments", now=NOW)
    by_user = broker.issue(world.member_credential(world.user), "payments", now=NOW)
    broker.renew(world.credential_a(), by_a.lease_id, now=NOW + 1)
    revoked = broker.revoke_identity(world.agent_a.identifier, now=NOW + 2)
    assert [lease.handle for lease in revoked] == [by_a.lease.handle]
    assert lease_state(broker, by_b.lease.handle) is LeaseState.ACTIVE
    assert lease_state(broker, by_user.lease.handle) is LeaseState.ACTIVE
    # the orchestrator (a's delegator, in no other chain) ends nothing more: a's is over
    assert broker.revoke_identity(world.orchestrator.identifier, now=NOW + 3) == []
    assert lease_state(broker, by_user.lease.handle) is LeaseState.ACTIVE
    broker.close()
