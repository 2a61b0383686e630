"""Review 69w, wave4b: the reach of a postgres lease's revocation (PostgreSQL tests:
TROTH_REQUIRE_PG=1).

wave4b 1: a lease's revocation rolled back another role's prepared transaction: an
application's (or an administrator's XA transaction manager's) committed-to-be work, destroyed
because an agent's lease was revoked. Review 69r (leases 3, 5) rolls back every prepared
transaction holding a lock on the lease's role or on a relation `DROP OWNED BY` the lease's
role needs, whoever prepared it. An application that grants a lease's role a privilege in the
same transaction as its own writes (`ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO
<lease role>; INSERT ...`, prepared by its transaction manager: the grant locks the role), or
that reads a table a lease created and let PUBLIC read, lost the whole transaction (its INSERT
never landed) on the lease's revocation; the sessions of such roles were terminated alike,
their open transactions lost. Only lease roles' transactions and sessions are ended now (the
pattern of any troth broker's roles, which only brokers create): another role's lock fails
the step it blocks (`lock_timeout`), after the lease's role was shut out (NOLOGIN, its
sessions ended, its privileges taken), and the sweep retries the revocation once that
transaction ended. A lease can bring this about itself: with TRIGGER on the application's
table (its template's, as `GRANT ALL` gives), its trigger there made `DROP OWNED` alter that
table, and its revocation (which it may ask for) rolled back every prepared transaction of the
application that had written to it (a template holding TRIGGER is refused since review 70c,
leases 1: that case is gone).

wave4b 2: the same trigger let a lease end every other agent's lease session on the template's
table, at will (issue, create the trigger, revoke itself, again). `LOCK_HOLDERS` ends the
sessions locking a relation one of the lease's triggers is on; review 44b left out a foreign
key's internal triggers on the table it references for this reason ("a lease must not end the
sessions reading that table"), not the lease's own triggers. Ending no session for a table the
lease does not own lets another lease keep the revocation failing while its transaction stays
open (the revoked role already NOLOGIN with no privilege; its trigger firing on until then);
refusing templates with TRIGGER (as those owning objects are) is the other way, the lead's
call: a template holding TRIGGER (or REFERENCES, or CREATE on a database) on what it does not
own is refused at issue (review 70c, leases 1-3: the trigger's function also ran with the
rights of every session writing there).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.support.leases import LeaseWorld
from tests.support.postgres import assert_commits_then_revoked
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    _admin_sql,
    login,
    now,
    orders,
    setup,
    world,
)
from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.secrets import LeaseState


def _trigger_on_orders(session: Any) -> None:
    """A lease's trigger on `orders` (possible while its template held TRIGGER there)."""
    session.execute(
        "CREATE FUNCTION seen() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$"
    )
    session.execute(
        "CREATE TRIGGER seen BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION seen()"
    )


@pytest.mark.parametrize("lock", ["grant", "read"])
def test_an_applications_prepared_transaction_survives_a_leases_revocation(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    lock: str,
) -> None:
    """wave4b 1: the application (here the cluster's superuser, as an XA manager's) grants the
    lease's role default privileges, or reads the lease's table, and writes, in a transaction it
    prepares; the lease is revoked: the transaction is still prepared, its write lands once
    committed, and the revocation then completes."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)  # the step it blocks fails fast
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    role = str(issued.lease.engine_ref)
    with login(orders, issued.credential.reveal()) as session:
        session.execute("CREATE TABLE shared (x int); GRANT SELECT ON shared TO PUBLIC")
    gid = f"app'; DROP TABLE orders; --{uuid.uuid4().hex[:8]}"
    app = orders.server.connect(dbname=orders.dbname, autocommit=False)
    if lock == "grant":
        app.execute(f'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO "{role}"')
    else:
        app.execute(f'SELECT * FROM "{role}".shared').fetchall()  # noqa: S608 - its own schema
    app.execute("INSERT INTO orders VALUES (7777, 1)")
    app.execute(sql.SQL("PREPARE TRANSACTION {}").format(sql.Literal(gid)))
    app.close()
    try:
        first = broker.revoke(agent, issued.lease_id, now=now())
        assert orders.server.prepared(
            orders.dbname, gid
        )  # the application's transaction was not touched
        assert first.state is LeaseState.REVOKING  # and the lease is retried, shut out
        with orders.server.connect() as admin:
            login_of = admin.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,))
            assert login_of.fetchone() == (False,)
        orders.server.end_prepared(orders.dbname, gid, "COMMIT")
        with orders.server.connect(dbname=orders.dbname) as admin:
            landed = admin.execute("SELECT count(*) FROM orders WHERE id = 7777")
            assert landed.fetchone() == (1,)
        broker.sweep(now() + 3600)
        assert broker.book.lease(issued.lease.handle).state is LeaseState.REVOKED  # type: ignore[union-attr]
        assert role not in orders.lease_roles()
    finally:
        orders.server.end_prepared(orders.dbname, gid, "ROLLBACK")
        broker.sweep(now() + 7200)
        broker.close()


def test_an_applications_open_transaction_survives_a_leases_revocation(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """wave4b 1: the application's session reads the lease's table and writes in a transaction
    it keeps open; the lease is revoked: the session lives, its write commits, and the
    revocation then completes."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    with login(orders, issued.credential.reveal()) as session:
        session.execute("CREATE TABLE shared (x int); GRANT SELECT ON shared TO PUBLIC")
    app = orders.server.connect(dbname=orders.dbname, autocommit=False)
    try:
        shared = f'"{issued.lease.engine_ref}".shared'  # in the lease's own schema
        app.execute(f"SELECT * FROM {shared}").fetchall()  # noqa: S608 - a test's name
        app.execute("INSERT INTO orders VALUES (7778, 1)")
        assert broker.revoke(agent, issued.lease_id, now=now()).state is LeaseState.REVOKING
        assert_commits_then_revoked(app, orders, broker, issued.lease.handle, 7778, at=now())
    finally:
        app.close()
        broker.close()


def test_a_leases_trigger_on_a_templates_table_ends_no_other_leases_session(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """wave4b 2: agent a's lease would put a trigger on `orders` (its template holds TRIGGER
    there): the issue is refused (CONFIG_INVALID, no role made). Once the operator took
    TRIGGER from the template, a's lease may not make one; agent b's lease reads `orders` in a
    transaction it keeps open; a revokes its own lease: b's session lives on."""
    monkeypatch.setattr(limits, "POSTGRES_LOCK_TIMEOUT_MS", 300)
    _admin_sql(orders, f"GRANT TRIGGER ON orders TO {orders.writer}")
    broker = setup(tmp_path, world, orders)
    with pytest.raises(SecretError) as caught:
        broker.issue(world.credential_a(), SECRET, scope=["orders:write"], now=now())
    assert caught.value.reason is SecretFailure.CONFIG_INVALID
    assert "TRIGGER on table public.orders" in caught.value.detail
    assert orders.lease_roles() == set()
    _admin_sql(orders, f"REVOKE TRIGGER ON orders FROM {orders.writer}")
    attacker = broker.issue(world.credential_a(), SECRET, scope=["orders:write"], now=now())
    other = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    denied = pytest.raises(psycopg.errors.InsufficientPrivilege, match="orders")
    with login(orders, attacker.credential.reveal()) as session, denied:
        _trigger_on_orders(session)
    reader = login(orders, other.credential.reveal())
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT * FROM orders").fetchall()
        broker.revoke(world.credential_a(), attacker.lease_id, now=now())
        assert reader.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    finally:
        reader.close()
        broker.sweep(now() + 3600)
        broker.close()
