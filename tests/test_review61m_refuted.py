"""Review 61m: attempts against the issue path's cheaper forms (benchmarks/README.md "Pass
61m") that did not work; each would fail if its defence broke."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from tests.test_secrets_tokens import CONFIG
from troth.secrets import AllowListPolicy
from troth.secrets.members import lease_account
from troth.storage import SqliteDatabase


def test_a_data_version_asked_mid_read_does_not_cut_the_read_short(tmp_path: Path) -> None:
    # a vault signing while a caller reads a `run` result: the data version is asked on a
    # cursor of its own, not `run`'s (which would reset the statement being read)
    db = SqliteDatabase(tmp_path / "t.db")
    db.execute("CREATE TABLE t (v INTEGER)")
    db.execute("INSERT INTO t VALUES (1), (2), (3)")
    with db.transaction():
        reading = db.run("SELECT v FROM t ORDER BY v")
        assert reading.fetchone() == (1,)
        db.data_version()
        assert reading.fetchall() == [(2,), (3,)]
    db.close()


def test_another_members_leases_do_not_fill_this_ones_quota(tmp_path: Path) -> None:
    # every arm of the one count is a range of this member (account) only
    world = make_world(NOW)
    policy = AllowListPolicy(
        {world.agent_a.identifier: {"payments": None}, world.agent_b.identifier: {"payments": None}}
    )
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=2)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    other, mine = world.credential_b(), world.credential_a()
    assert lease_account(other) != lease_account(mine)
    for _ in range(2):
        broker.issue(other, "payments", ttl=5, now=NOW)
    with db.transaction():
        _, live = broker.store.config_and_live("payments", lease_account(mine), NOW, up_to=2)
    assert live == 0
    broker.issue(mine, "payments", ttl=5, now=NOW)
    broker.issue(mine, "payments", ttl=5, now=NOW)
