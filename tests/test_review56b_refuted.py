"""Review 56b, secrets: attacks on the broker that did not work (each would fail if its
defence broke)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world, open_broker
from tests.test_secrets_postgres import SECRET, OrdersDb, login, now, orders, setup  # noqa: F401
from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker, LeaseState, validate_token
from troth.secrets.lease import LeaseRequest

F = SecretFailure
TOKEN = {"scopes": ["read"], "ttl": 60, "max_ttl": 600, "audience": "svc"}
PG = {
    "scopes": ["read"],
    "ttl": 60,
    "max_ttl": 600,
    "dbname": "orders",
    "user": "admin",
    "templates": {"read": "reader"},
}


@pytest.fixture
def world() -> LeaseWorld:
    return make_world(NOW)


def broker_for(tmp_path: Path, world: LeaseWorld) -> Broker:
    both = {"svc": None, "db": None}
    policy = AllowListPolicy({world.agent_a.identifier: both, world.agent_b.identifier: both})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("svc", "token", TOKEN, b"", now=NOW)
    return broker


@pytest.mark.parametrize(
    "change",
    [
        {"templates": {"read": 'reader"; DROP ROLE admin; --'}},
        {"templates": {"read": "reader WITH SUPERUSER"}},
        {"dbname": "orders; DROP DATABASE orders"},
        {"user": 'admin" SUPERUSER --'},
        {"databases": ["orders", "x' OR '1'='1"]},
        {"host": "127.0.0.1 options='-c search_path=evil'"},
        {"templates": {"read": "r" * 64}},  # past NAMEDATALEN: truncated, another role
    ],
)
def test_sql_in_a_postgres_configuration_is_refused_before_any_connection(
    tmp_path: Path, world: LeaseWorld, change: dict[str, Any]
) -> None:
    """Every identifier of a postgres secret reaches SQL through `sql.Identifier` and is a
    plain identifier besides: a configuration smuggling SQL, or a name PostgreSQL would
    truncate to another role's, is CONFIG_INVALID and nothing is stored (no server needed)."""
    broker = broker_for(tmp_path, world)
    with pytest.raises(SecretError) as caught:
        broker.put_secret("db", "postgres", {**PG, **change}, b"pw", now=NOW)
    assert caught.value.reason is F.CONFIG_INVALID
    assert [spec.name for spec in broker.secrets()] == ["svc"]


def test_another_agents_request_id_supersedes_none_of_its_leases(
    tmp_path: Path, world: LeaseWorld
) -> None:
    """B replays A's lease request id (it travels in the clear to the node only inside A's
    channel, but ids may be guessed or leaked) with a later attempt, hoping the broker revokes
    A's lease as the lost answer of an earlier attempt: a request is keyed by its agent."""
    broker = broker_for(tmp_path, world)
    request = LeaseRequest(b"\x07" * 16, 1)
    a = broker.issue(world.credential_a(), "svc", now=NOW, request=request)
    b = broker.issue(world.credential_b(), "svc", now=NOW, request=LeaseRequest(request.id, 2))
    assert broker.book.lease(a.lease.handle).state is LeaseState.ACTIVE  # type: ignore[union-attr]
    assert b.lease.identity == world.agent_b.identifier
    with pytest.raises(SecretError) as caught:  # and A's own replay of attempt 1 is refused
        broker.issue(world.credential_a(), "svc", now=NOW, request=request)
    assert caught.value.reason is F.BAD_REQUEST


def test_a_relying_partys_leeway_revives_no_revoked_lease(
    tmp_path: Path, world: LeaseWorld
) -> None:
    """A relying party that validates with a generous leeway still refuses the token of a
    revoked lease at once, and that of an ended (renewed for less) lease from its end plus the
    leeway only, never past the token's own `exp` plus it."""
    broker = broker_for(tmp_path, world)
    issued = broker.issue(world.credential_a(), "svc", now=NOW)
    token = str(issued.credential.reveal()["token"])
    keys = broker.jwks(NOW)
    broker.renew(world.credential_a(), issued.lease_id, now=NOW + 1, ttl=5)  # ends at NOW + 6
    states = broker.revoked_leases()
    validate_token(token, keys, audience="svc", now=NOW + 10, revoked=states, leeway=5)
    with pytest.raises(SecretError) as ended:
        validate_token(token, keys, audience="svc", now=NOW + 11, revoked=states, leeway=5)
    assert ended.value.reason is F.EXPIRED
    broker.revoke(world.credential_a(), issued.lease_id, now=NOW + 2)
    most = limits.MAX_TOKEN_LEEWAY_SECONDS  # 3600 until review 70i (leftovers 1) bounded it
    with pytest.raises(SecretError) as revoked:
        validate_token(token, keys, audience="svc", now=NOW + 2, revoked=states, leeway=most)
    assert revoked.value.reason is F.REVOKED


def test_a_lease_cannot_make_a_template_a_member_of_its_role(
    tmp_path: Path,
    orders: OrdersDb,  # noqa: F811 - the fixture
) -> None:
    """A lease grants its own role to the reader template (PostgreSQL before 16 let a session
    grant membership in its session user): the template would then reach the lease's role,
    which owns objects, and every other issue of the template be refused. The server refuses
    the grant, and another agent is issued a lease."""
    import psycopg

    world = make_world(now())
    broker = setup(tmp_path, world, orders)
    a = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    session = login(orders, a.credential.reveal())
    session.execute("CREATE TEMP TABLE t (x int)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        session.execute(f"GRANT {a.credential.reveal()['user']} TO {orders.reader}")
    other = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    assert other.lease.state is LeaseState.ACTIVE
    broker.close()
