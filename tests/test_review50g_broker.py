"""Review 50g, broker 1 (closed by review 51d, rollback 2: the rollback guard beside node.db,
docs/storage.md "Rollback guard"; the restored broker's open leases are revoked): a secrets
broker's node.db restored from a copy taken before a lease was revoked holds that lease open
again: the broker validates its token again (and may renew it) until the lease's expiry (at most
its secret's `max_ttl`), though it was revoked and its upstream credential withdrawn. The broker
could not tell a restored store from its current one (a fix needs a record the copy cannot roll
back; troth/secrets is another helper's area). Its operator revokes again what was revoked after
the copy (docs/storage.md, "Restoring a backup")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, restore_db
from tests.support.leases import make_world, open_broker
from troth.errors import SecretError
from troth.secrets import AllowListPolicy


def test_a_restored_broker_keeps_a_revoked_lease_revoked(tmp_path: Path) -> None:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    db, broker = open_broker(path, now=NOW, policy=policy)
    config = {"scopes": ["read"], "ttl": 300, "audience": "x"}
    broker.put_secret("api", "token", config, b"", now=NOW)
    issued = broker.issue(world.credential_a(), "api", now=NOW, scope=["read"])
    token = str(issued.credential.reveal()["token"])
    broker.close()
    db.close()
    copy_db(path, copy)
    db, broker = open_broker(path, now=NOW, policy=policy)
    broker.revoke(world.credential_a(), issued.lease_id, now=NOW + 1)
    with pytest.raises(SecretError):
        broker.validate_token(token, audience="x", now=NOW + 2)
    broker.close()
    db.close()
    restore_db(path, copy)
    db, broker = open_broker(path, now=NOW, policy=policy)
    try:
        with pytest.raises(SecretError):
            broker.validate_token(token, audience="x", now=NOW + 3)
    finally:
        broker.close()
        db.close()
