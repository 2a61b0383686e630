"""Review 74u, pgwatch8: the PostgreSQL lease revocation path read again end to end after
reviews 74b, 74g, 74n and 74r (troth.secrets.engines.postgres), attacked (PostgreSQL tests:
TROTH_REQUIRE_PG=1).

pgwatch8 2: on PostgreSQL 14 and older a role may grant membership in itself from a session
it logged in as (no ADMIN OPTION needed; 15 removed it, so the test grants it as the
superuser): a lease grants its role to another role it holds (another lease), whose session
`SET ROLE`s to it and keeps that role after the revocation's NOLOGIN and ending of the lease's
own sessions (pg_stat_activity names the session user only).
Acting as the revoked role after the revocation's last look for its prepared transactions,
before `DROP ROLE`, it prepared a transaction owned by that role: `DROP ROLE` allows it, the
lease was reported REVOKED and the transaction (its writes and row locks) left owned by no
role for good (review 74n, pgwatch6 3's end, reached through a member). The revocation now
revokes every membership in the lease's role and ends the sessions of the lease roles that
were members, once the role is NOLOGIN, before anything is taken.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.secrets import LeaseState


def _prepare_before_drop(role: str, member: Any, gid: str) -> Any:
    """`psycopg.Connection.execute` that, before the `DROP ROLE` of `role`, has `member` (a
    session acting as `role`, which wrote a row in its open transaction) prepare it as `gid`."""
    execute = psycopg.Connection.execute

    def hooked(conn: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(conn)
        if conn is not member and text.startswith("DROP ROLE") and role in text:
            with contextlib.suppress(psycopg.Error):  # its session ended: nothing prepared
                execute(member, f"PREPARE TRANSACTION '{gid}'")
        return execute(conn, query, params, **kwargs)

    return hooked


def test_a_member_of_the_revoked_role_keeps_no_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """74u pgwatch8 2: lease 1 grants its role to lease 2's, whose session sets role to it and,
    just before `DROP ROLE`, prepares a transaction as lease 1: reported REVOKED, the
    transaction was left for good."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    first = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    second = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    role, other = (str(lease.credential.reveal()["user"]) for lease in (first, second))
    gid = f"member_{uuid.uuid4().hex[:8]}"
    try:
        # what PostgreSQL 14 and older let the lease's own session do (15 asks ADMIN OPTION)
        with orders.server.connect(dbname=orders.dbname) as su:
            su.execute(f'GRANT "{role}" TO "{other}"')
        with login(orders, second.credential.reveal()) as member:
            member.execute(f'SET ROLE "{role}"')
            member.execute("BEGIN")
            member.execute("INSERT INTO orders VALUES (9998, 1)")
            with monkeypatch.context() as patched:
                patched.setattr(
                    psycopg.Connection, "execute", _prepare_before_drop(role, member, gid)
                )
                state = broker.revoke(agent, first.lease_id, now=now()).state
        assert not (state is LeaseState.REVOKED and orders.server.prepared(orders.dbname, gid))
    finally:
        orders.server.end_prepared(orders.dbname, gid)
        broker.close()
