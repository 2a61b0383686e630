"""Review 60z (the lead, from CI stop 47's failure of review 54f's two-brokers test under load),
postgres 1: two brokers on one node's database (its daemon and a CLI command, or two nodes
leasing from one server) granting a lease's privileges on the same object at once failed one
issue with ENGINE_FAILED: PostgreSQL updates the object's ACL row without a lock on it, so two
sessions' GRANTs (or REVOKEs) on one table raise "tuple concurrently updated" (XX000). Now
the transaction of troth's GRANTs and REVOKEs is run again when it fails so (review 60l,
postgres 1: an advisory lock first, 60z's fix, let a lease's holder block every issue)"""

from __future__ import annotations

import threading
from typing import Any

from tests.support.postgres import PgServer
from tests.test_secrets_postgres import OrdersDb, orders  # noqa: F401 - a fixture
from troth.secrets.engines import postgres_grants
from troth.secrets.engines.postgres_grants import Privilege


def test_two_sessions_granting_on_one_table_at_once_both_succeed(
    orders: OrdersDb,  # noqa: F811
) -> None:
    server: PgServer = orders.server
    roles = [f"racer_{n}_{orders.dbname[-8:]}" for n in range(2)]
    with server.connect(autocommit=True) as admin:
        for role in roles:
            admin.execute(f'CREATE ROLE "{role}"')
    errors: list[str] = []
    start = threading.Barrier(2)

    def run(role: str) -> None:
        held = {Privilege("table", "public", "orders", None, (), "SELECT")}
        conn: Any = server.connect(dbname=orders.dbname, autocommit=True)
        with conn:
            start.wait()
            for _ in range(150):
                for verb in ("GRANT", "REVOKE"):
                    try:
                        postgres_grants.apply(conn, verb, role, held)
                    except Exception as exc:  # what one raised is the finding
                        errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(role,)) for role in roles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with server.connect(dbname=orders.dbname, autocommit=True) as admin:
        for role in roles:
            admin.execute(f'DROP OWNED BY "{role}"')  # what a failed REVOKE left
            admin.execute(f'DROP ROLE "{role}"')
    assert errors == []
