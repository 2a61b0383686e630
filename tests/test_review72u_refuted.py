"""Review 72u, refuted: attacks on the lock-wait watcher of a postgres revocation (review 72q,
savepoint 1; troth.secrets.engines.postgres_waits) that did not work."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import assert_commits_then_revoked
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth import limits
from troth.secrets import LeaseState
from troth.secrets.engines import postgres_waits as waits


class _Idle:
    """An admin connection whose session `pid` never waits (the watcher's cheap look finds
    nothing); it records that it was closed."""

    def __init__(self) -> None:
        self.closed = False
        self.looked = threading.Event()

    def execute(self, query: str, params: Any = None) -> Any:
        self.looked.set()
        return self

    def fetchone(self) -> Any:
        return None

    def close(self) -> None:
        self.closed = True


def test_a_step_that_raises_leaves_no_watcher_nor_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried: a revocation step failing (its lock timeout, a cancelled statement, an interrupt
    raised in the broker's thread) while the watcher runs, to leave its thread looking and its
    second admin session open. The block's end sets the watcher done and joins it; the thread
    closes its connection on the way out."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 20)  # watched from 1 ms on
    conn = _Idle()
    with pytest.raises(KeyboardInterrupt), waits.watching(lambda: conn, 1, "^tl_", 100):
        assert conn.looked.wait(5)
        raise KeyboardInterrupt
    assert conn.closed
    assert not [t for t in threading.enumerate() if t.name == "troth-pg-waits"]


def test_an_admins_session_acting_as_a_lease_role_is_left(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried: an administrator's session `SET ROLE` to the second lease's role (its
    `current_user` a lease's), making 72q's held change (the second lease's GRANT on the first's
    schema, in a savepoint released) and an application write in one open transaction, to have
    the first lease's revocation end it as a lease's. The watcher judges a session by the user
    it logged in as (`usename`), not the role it acts as: it is left, its write commits, the
    sweep completes the revocation."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)  # it fails: no race to lose
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = (broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in "12")
    role, other = str(first.lease.engine_ref), str(second.lease.engine_ref)
    with login(orders, first.credential.reveal()) as session:
        session.execute(f'GRANT USAGE ON SCHEMA "{role}" TO "{other}" WITH GRANT OPTION')
    app = orders.server.connect(dbname=orders.dbname, autocommit=False)
    try:
        app.execute("INSERT INTO orders VALUES (7773, 1)")
        app.execute(f'SET ROLE "{other}"')
        app.execute("SAVEPOINT s")
        app.execute(f'GRANT USAGE ON SCHEMA "{role}" TO PUBLIC')
        app.execute("RELEASE SAVEPOINT s")
        app.execute("RESET ROLE")
        assert broker.revoke(agent, first.lease_id, now=now()).state is LeaseState.REVOKING
        assert_commits_then_revoked(app, orders, broker, first.lease.handle, 7773, at=now())
    finally:
        app.close()
        broker.sweep(now() + 3600)
        broker.close()
