"""Review 71j, pglease: attacks on the postgres engine's revocation that did not work
(PostgreSQL tests: TROTH_REQUIRE_PG=1; PostgreSQL 15 here).

- A session of the lease that logs in again between the first step's signal (not awaited:
  71b's pglease 4) and `ALTER ROLE ... NOLOGIN`, its password still valid: the step after
  NOLOGIN ends every session of the role, awaited; it is ended, the lease REVOKED.
- A large object of the lease it let another lease read, open in that lease's transaction:
  unlinked with the revoked lease (it is the revoked lease's object, which DROP OWNED dropped
  alike); the reader holds no lock the unlink waits on; REVOKED, the object gone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import two_leases
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    assert_session_ended,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.secrets import LeaseState
from troth.secrets.engines import postgres


def test_a_session_back_in_before_nologin_is_ended(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71j refuted: the lease logs in again right before NOLOGIN (after the signal): the
    session is ended, the lease REVOKED."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    back: list[Any] = []
    real = postgres._short_wait

    def log_in_first(conn: Any, statement: Any, wait_ms: int | None = None) -> None:
        if not back:
            back.append(login(orders, issued.credential.reveal()))
        real(conn, statement, wait_ms)

    monkeypatch.setattr(postgres, "_short_wait", log_in_first)
    try:
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKED
        assert_session_ended(back[0])
    finally:
        for session in back:
            session.close()
        broker.close()


def test_a_large_object_another_lease_reads_goes_with_its_owner(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """71j refuted: the second lease reads the first's large object in a transaction it keeps
    open: the first is REVOKED, its large object gone."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first, second = two_leases(broker, agent, SECRET, now(), "orders:read")
    reader = login(orders, second.credential.reveal())
    try:
        with login(orders, first.credential.reveal()) as session:
            (oid,) = session.execute("SELECT lo_from_bytea(0, 'shared')").fetchone()
            session.execute(f'GRANT SELECT ON LARGE OBJECT {oid} TO "{second.lease.engine_ref}"')
        reader.execute("BEGIN")
        assert reader.execute(f"SELECT lo_get({oid})").fetchone() == (b"shared",)
        assert broker.revoke(agent, first.lease_id, now=now()).state is LeaseState.REVOKED
        with orders.server.connect(dbname=orders.dbname) as admin:
            found = admin.execute("SELECT 1 FROM pg_largeobject_metadata WHERE oid = %s", (oid,))
            assert found.fetchone() is None
    finally:
        reader.close()
        broker.close()
