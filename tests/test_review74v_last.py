"""Review 74v, last: a last look at 74s's shared check of a record's values and 74u's
revoke_members.

74v last 1: `TraceBatcher.add` (the in-memory `TraceClient`'s queue) checks a record's values
(`signable_values`) but not the rest of what signing refuses: a value named outside
REDACTABLE ("v"), a content id that is not 32 lowercase hex digits. `add` queues the record
and `record()` returns as if recorded; signing refuses it (TraceRecord's ValueError, MALFORMED)
only once its batch is made (`Queued.error`, which a caller failing closed on `record()` never
reads), where the node's durable outbox, signing at `add`, refuses it at once: records3 1-2's
disagreement for the other fields. Fixed by review 75c (batcher 1: `signing.check_content`,
run by `sign_record` and `add` alike; tests/test_review75c_batcher.py has the rest).

74v last 2: 74u pgwatch8 2's orphaned prepared transaction, through an application's role:
`revoke_members` removes every membership in the lease's role but ends the sessions of lease
members only, and a session of an application role the lease granted itself to (PostgreSQL 14
and older) that `SET ROLE` to the lease keeps acting as it; a transaction it prepares after the
revocation's last look, before `DROP ROLE`, is left owned by no role, the lease reported
REVOKED (the commit names such sessions as left, but not that its invariant breaks through
them). Left (report only); PostgreSQL test. Fixed by review 75b (pglast): every session of a
role that may act as the lease (a member, a member's member) is ended, but a superuser's and
the admin's.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.traces import NOW, Held
from tests.test_review74u_pgwatch8 import _prepare_before_drop
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.errors import TraceError, TraceFailure
from troth.secrets import LeaseState
from troth.trace import Kind, RecordContent, ToolCall
from troth.trace.batcher import TraceBatcher


@pytest.mark.parametrize(
    "fields",
    [{"values": {"v": 1}}, {"values": {"args": 1}, "id": "zz"}],
    ids=["name-not-redactable", "id-not-hex"],
)
def test_the_batcher_refuses_at_add_a_record_signing_refuses(fields: dict[str, Any]) -> None:
    """74v last 1: a record whose value is named "v" (no REDACTABLE field), or whose id is
    "zz", is queued by `add` and fails only when its batch is signed (MALFORMED, set aside);
    it is refused at add (TraceError MALFORMED, nothing queued), as the outbox does (75c)."""
    batcher = TraceBatcher(Held().signer)
    batcher.set_head(None)
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), **fields)
    with pytest.raises(TraceError) as refused:
        batcher.add(content, now=NOW)
    assert refused.value.reason is TraceFailure.MALFORMED
    assert batcher.pending() == 0


def test_an_application_member_of_the_revoked_role_keeps_no_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """74v last 2: pgwatch8 2 through an application's role: the lease grants its role to an
    application role (PostgreSQL 14 and older let its own session; the test grants it as the
    superuser), whose session sets role to it and, just before `DROP ROLE`, prepares a
    transaction as the lease: `revoke_members` removes the membership but ends only lease
    roles' sessions, so the lease is reported REVOKED and the transaction is left owned by no
    role, as pgwatch8 2 was for a lease member."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    lease = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    credential = lease.credential.reveal()
    role = str(credential["user"])
    app = f"app_{uuid.uuid4().hex[:12]}"
    gid = f"app_{uuid.uuid4().hex[:8]}"
    try:
        with orders.server.connect(dbname=orders.dbname) as su:
            su.execute(f"CREATE ROLE \"{app}\" LOGIN PASSWORD 'app-secret'")
            su.execute(f'GRANT "{role}" TO "{app}"')
        with login(orders, {**credential, "user": app, "password": "app-secret"}) as member:
            member.execute(f'SET ROLE "{role}"')
            member.execute("BEGIN")
            member.execute("INSERT INTO orders VALUES (9997, 1)")
            with monkeypatch.context() as patched:
                patched.setattr(
                    psycopg.Connection, "execute", _prepare_before_drop(role, member, gid)
                )
                state = broker.revoke(agent, lease.lease_id, now=now()).state
        assert not (state is LeaseState.REVOKED and orders.server.prepared(orders.dbname, gid))
    finally:
        orders.server.end_prepared(orders.dbname, gid)
        with orders.server.connect(dbname=orders.dbname) as su:
            su.execute(f'DROP ROLE IF EXISTS "{app}"')
        broker.close()
