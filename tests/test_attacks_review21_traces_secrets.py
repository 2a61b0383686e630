"""Review 21's attacks on the newest trace and secrets code (the durable trace outbox, the
postgres engine's privilege copy, the forward pool and http-inject, the broker's token checks):

1. a postgres lease's role owns what it makes in a database the secret does not list (any
   role may create a large object in any database it may connect to, `postgres` and
   `template1` included: PUBLIC holds CONNECT): revocation runs DROP OWNED in the configured
   databases only, so DROP ROLE fails for good — the lease stays REVOKING at every sweep, the
   role is never dropped, and `remove_secret` (or moving the secret) fails until an operator
   cleans up by hand;
2. the trace outbox keeps a refused record's detail as the trace service sent it: the bound on
   what the outbox holds (TRACE_OUTBOX_BYTES) counts the record, not the detail, so a
   malicious or broken service that refuses each record with a detail of about a service
   message (1 MiB) grows the node's database by up to TRACE_OUTBOX_RECORDS MiB (64 GiB).

Each test asserts the secure behaviour and is marked xfail (strict) while main has the bug.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.leases import LeaseWorld
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    world,
)
from tests.test_secrets_postgres import setup as pg_setup
from tests.test_trace_outbox import Outboxes
from tests.test_trace_service import NOW, Service, service, tool  # noqa: F401 - a fixture
from troth import limits
from troth.secrets import LeaseState
from troth.trace.submit import RECEIPTS_TYPE, VERSION, Receipts

# -- 1. a postgres lease's objects in a database the secret does not list ---------------------


def test_a_lease_cannot_keep_its_role_with_an_object_in_an_unlisted_database(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """The secret lists only the orders database. The lease logs in to the cluster's main
    database instead (PUBLIC may connect) and creates a large object there (no privilege
    needed) and grants it to PUBLIC. Its revocation must still drop the role: the lease ends
    REVOKED, and the secret can be removed."""
    broker = pg_setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    role = issued.lease.engine_ref
    credential = issued.credential.reveal()
    with login(orders, {**credential, "dbname": orders.server.dbname}) as session:
        (made,) = session.execute("SELECT lo_create(0)").fetchone()
        session.execute(f"GRANT SELECT ON LARGE OBJECT {int(made)} TO PUBLIC")
    lease = broker.revoke(agent, issued.lease_id, now=now())
    if lease.state is not LeaseState.REVOKED:
        broker.sweep(now() + 1)
    assert role not in orders.roles("tl_")
    assert broker.book.lease(issued.lease.handle).state is LeaseState.REVOKED  # type: ignore[union-attr]
    broker.remove_secret(SECRET, now=now())
    with orders.server.connect() as admin:
        left = admin.execute(
            "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = %s", (made,)
        ).fetchone()
    assert left == (0,)  # dropped with the role, not handed to anyone
    broker.close()


# -- 2. a refusal's detail is stored as the trace service sent it ----------------------------


def test_a_refusals_detail_cannot_grow_the_outbox_past_its_bound(
    tmp_path: Path,
    service: Service,  # noqa: F811 - the fixture imported above
) -> None:
    """The service answers a batch with a refusal whose detail is 900 kB (it fits a service
    message; an honest collector cuts its details to MAX_TRACE_REFUSAL_DETAIL characters). The
    record is set aside, and what the outbox keeps of the detail is no longer than that."""
    outboxes = Outboxes(tmp_path / "node.db", service.world.support)
    outbox = outboxes.open()
    outbox.add(tool("refund"), now=NOW)
    batch = outbox.next_batch(NOW)
    assert batch is not None
    wire = [RECEIPTS_TYPE, VERSION, [[2, "malformed", "x" * 900_000]], None, None]
    outbox.answered(Receipts.from_cbor(wire, expected=1), now=NOW)
    (kept,) = outbox.store.refused()
    assert kept.reason == "malformed"
    assert len(kept.detail) <= limits.MAX_TRACE_REFUSAL_DETAIL
    outboxes.close()
