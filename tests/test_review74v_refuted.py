"""Review 74v, refuted: attacks on 74s's shared check of a record's values
(`signing.signable_values`, used by `sign_record` and `TraceBatcher.add`) and on 74u's
`postgres_locks.revoke_members` that did not work (PostgreSQL tests: TROTH_REQUIRE_PG=1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.traces import NOW, Held
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
from troth.trace import Kind, RecordContent, ToolCall, sign_record
from troth.trace.batcher import TraceBatcher


class Text(str):
    """A str subclass: not the ASCII shortcut's exact `str`."""


def _batched(values: dict[str, Any]) -> dict[str, bytes]:
    batcher = TraceBatcher(Held().signer)
    batcher.set_head(None)
    batcher.add(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), values=values), now=NOW)
    batch = batcher.next_batch(NOW)
    assert batch is not None
    (record,) = batch.submission.records
    return {name: d.value for name, d in record.disclosures.items()}


@pytest.mark.parametrize(
    "value",
    [1.0, -0.0, [1.0, -0.0], {"b": 1e21, "a": 1e-7}, Text("ab"), Text("\u00e9"), 2**53 - 1],
    ids=["float-int", "neg-zero", "list", "exponents", "str-sub", "str-sub-nonascii", "max-int"],
)
def test_the_batchers_kept_copy_signs_what_the_value_signs(value: Any) -> None:
    """Tried: a value whose JSON copy (the batcher keeps `json.loads` of its canonical JSON)
    differs from itself in Python (1.0 as 1, -0.0 as 0, a str subclass as str) signed to other
    bytes than `sign_record` of the value itself: the same canonical JSON both ways."""
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), values={"args": value})
    direct = sign_record(Held().signer(), content, seq=0, prev=None, time=NOW)
    assert _batched({"args": value}) == {"args": direct.disclosures["args"].value}


@pytest.mark.parametrize(
    "value",
    [2**53, -(2**53), 1e20, 2.0**53, float("nan")],
    ids=["int", "neg", "1e20", "2^53", "nan"],
)
def test_a_value_beyond_i_json_is_refused_both_at_add_and_at_signing(value: Any) -> None:
    """Tried: an integer at or past 2^53, or a float whose canonical JSON is such an integer
    (1e20), accepted by `add` and refused at signing or export: both refuse it (MALFORMED at
    add, ValueError from `sign_record`), none is signed."""
    content = RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("t"), values={"args": value})
    with pytest.raises(ValueError, match="args: "):
        sign_record(Held().signer(), content, seq=0, prev=None, time=NOW)
    batcher = TraceBatcher(Held().signer)
    with pytest.raises(TraceError) as refused:
        batcher.add(content, now=NOW)
    assert refused.value.reason is TraceFailure.MALFORMED
    assert batcher.pending() == 0


@pytest.mark.parametrize(
    "app",
    ['app "x"; DROP ROLE postgres; --', f"tl_{'a' * 8}_{'b' * 32}\n"],
    ids=["quoted", "lease-like-newline"],
)
def test_a_crafted_member_name_is_revoked_and_its_session_ended(
    app: str,
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Tried (74u's revoke_members): steering it by a member's name: one with quotes and a
    statement, and one that is a lease's name but for a trailing newline (PostgreSQL's `$`
    ends the string only). Each is revoked as one identifier (the lease REVOKED, the role and
    the superuser there, no membership left), and its session is ended as one of a role that
    may act as the lease (review 75b, pglast: left before, as no lease's: 74v last 2)."""
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    lease = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    credential = lease.credential.reveal()
    role = str(credential["user"])
    quoted = '"' + app.replace('"', '""') + '"'
    try:
        with orders.server.connect(dbname=orders.dbname) as su:
            su.execute(f"CREATE ROLE {quoted} LOGIN PASSWORD 'app-secret'")
            su.execute(f'GRANT "{role}" TO {quoted}')
        with login(orders, {**credential, "user": app, "password": "app-secret"}) as member:
            assert broker.revoke(agent, lease.lease_id, now=now()).state is LeaseState.REVOKED
            with pytest.raises(psycopg.OperationalError):  # it may have set its role to the lease
                member.execute("SELECT 1")
        with orders.server.connect(dbname=orders.dbname) as su:
            names = {row[0] for row in su.execute("SELECT rolname FROM pg_roles").fetchall()}
            assert {app, "postgres"} <= names
            assert role not in names
    finally:
        with orders.server.connect(dbname=orders.dbname) as su:
            su.execute(f"DROP ROLE IF EXISTS {quoted}")
        broker.close()
