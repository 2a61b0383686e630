"""Review 70z, updaters: attacks on 70w's `updaters` that did not work (PostgreSQL tests:
TROTH_REQUIRE_PG=1).

- A lease locking a catalog row (`SELECT ... FOR KEY SHARE`/`FOR UPDATE` on pg_class) would
  leave a locker's xid (or a multixact id, a different number space, matching some live xid)
  in `xmax`: a lease may not lock catalog rows at all (every locking clause needs UPDATE).
  Whatever `xmax` matches, only lease roles' sessions and prepared transactions are ended.
- An application's open transaction widening a grant to the lease's role (the ACL row 70z,
  updaters 1 now reads) is matched by `xmax` but left alone (review 69w, wave4b 1): its
  session lives, its write commits, the revocation completes on the sweep after.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
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


@pytest.mark.parametrize("clause", ["FOR KEY SHARE", "FOR SHARE", "FOR UPDATE"])
def test_a_lease_cannot_lock_a_catalog_row(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    clause: str,
) -> None:
    """70z refuted: a lease locking its own schema's pg_namespace row (a locker's xid or a
    multixact id in `xmax`) is refused."""
    broker = setup(tmp_path, world, orders)
    try:
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:write"], now=now())
        role = str(issued.lease.engine_ref)
        with (
            login(orders, issued.credential.reveal()) as session,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            session.execute(
                f"SELECT oid FROM pg_namespace WHERE nspname = %s {clause}",  # noqa: S608
                (role,),
            )
    finally:
        broker.close()


def test_an_applications_open_grant_to_the_lease_survives_its_revocation(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """70z refuted: the application granted the lease SELECT on its table, then in an open
    transaction grants it INSERT and writes: the revocation stays REVOKING, the application's
    write commits, the sweep completes the revocation."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    role = str(issued.lease.engine_ref)
    with orders.server.connect(dbname=orders.dbname, autocommit=True) as admin:
        admin.execute(f'CREATE TABLE app70z (x int); GRANT SELECT ON app70z TO "{role}"')
    app = orders.server.connect(dbname=orders.dbname, autocommit=False)
    try:
        app.execute(f'GRANT INSERT ON app70z TO "{role}"')
        app.execute("INSERT INTO orders VALUES (7779, 1)")
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKING
        assert_commits_then_revoked(app, orders, broker, issued.lease.handle, 7779, at=now())
    finally:
        app.close()
        broker.close()
