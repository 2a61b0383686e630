"""Review 75i, refuted: attacks on 75b's `revoke_members` that did not work (PostgreSQL tests:
TROTH_REQUIRE_PG=1). Memberships a lease's own session grants on PostgreSQL 14 and older are
granted as the superuser (the server here is 15).

Refuted 1: a lease that granted its role to an application role having another lease's
revocation (its holder's, or another agent's) end that application's sessions: only the
revocation of the lease whose role it is a member of names it (docs/secrets.md: once per
revocation of that lease, as often as its holder may have leases issued and revoke them).

Refuted 2: a membership cycle to make the walk run for ever (PostgreSQL refuses one), and a
deep chain (the walk is one recursive query, bounded by the roles there are: a lease creates
none; 300 here): every role of the chain is named.

Refuted 3: a lease hiding a role behind a CREATEROLE one (whose members the walk does not
follow): adding a member to another role needs ADMIN OPTION on it, which a lease's role has on
no role (on 14 and older only on itself), and a member of a CREATEROLE role may `SET ROLE` to
it, an administrator already. Nor behind `pg_database_owner`, whose member (the database's owner)
is no row of pg_auth_members: it may be a member of no role.

Refuted 4: the re-grant after a failed second ending granting more than was revoked (review
75o, pglast3: there is no re-grant any more, the members ended are stored with the REVOKEs for
the retry): no role is a member again, and the retry ends the members' sessions anew.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _REVOKED, _SECOND, _roles
from tests.test_review75b_pglast import app, grant_chain, scene
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    OrdersDb,
    login,
    now,
    orders,
    world,
)
from troth.errors import SecretError, SecretFailure
from troth.secrets import LeaseState
from troth.secrets.engines import postgres_locks as locks

_MEMBERS = (
    "SELECT r.rolname, a.admin_option FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.member"
    " WHERE a.roleid = %s::regrole ORDER BY 1"
)


def test_another_leases_revocation_leaves_the_members_sessions(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Refuted 1: lease 1's role granted to an application role with an open session; lease 2
    (the same holder's) revoked: the session lives on (lease 1's revocation alone ends it)."""
    with scene(tmp_path, world, orders, 2, app()) as made:
        name = made.apps[0]
        grant_chain(orders, [made.user(0), name])
        with login(orders, made.credential(name)) as session:
            revoked = made.broker.revoke(made.agent, made.leases[1].lease_id, now=now())
            assert revoked.state is LeaseState.REVOKED
            assert session.execute("SELECT 1").fetchone() == (1,)


def test_no_cycle_and_a_deep_chain_is_walked_whole(pg_server: PgServer) -> None:
    """Refuted 2: `_REVOKED` granted to `_SECOND`, and `_SECOND` to `_REVOKED` refused; a chain
    of 300 roles below `_SECOND`: `revoke_members` ends `_SECOND`'s sessions and those of all
    300, twice each (in the REVOKE's transaction and after its commit)."""
    chain = [f"r75i_{index:03d}" for index in range(300)]
    with _roles(pg_server) as su:
        su.execute(f"GRANT {_REVOKED} TO {_SECOND}")
        with pytest.raises(psycopg.errors.InvalidGrantOperation):
            su.execute(f"GRANT {_SECOND} TO {_REVOKED}")
        su.execute("".join(f"CREATE ROLE {role};" for role in chain))
        try:
            grants = [f"GRANT {a} TO {b};" for a, b in zip([_SECOND, *chain], chain, strict=False)]
            su.execute("".join(grants))
            ended: list[str] = []
            locks.revoke_members(su, _REVOKED, ended.append)
            assert sorted(ended) == sorted([_SECOND, *chain] * 2)  # in the REVOKE's transaction
        finally:
            su.execute("".join(f"DROP ROLE {role};" for role in chain))


def test_a_lease_adds_no_member_to_another_role(pg_server: PgServer) -> None:
    """Refuted 3: lease `_FIRST`'s session grants the admin's role (CREATEROLE) and
    `_SECOND`'s to `_SECOND` and `_FIRST`: both refused (no ADMIN OPTION on them); and
    `_REVOKED` granted to `pg_database_owner` is refused to the superuser too."""
    with _roles(pg_server) as su, pg_server.connect(user=_FIRST, password="x") as lease:
        for role, member in ((_ADMIN, _SECOND), (_SECOND, _FIRST)):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                lease.execute(f"GRANT {role} TO {member}")
        with pytest.raises(psycopg.errors.InternalError, match="cannot be a member"):
            su.execute(f"GRANT {_REVOKED} TO pg_database_owner")


def test_a_failed_second_ending_grants_nothing_and_the_retry_ends_the_members(
    pg_server: PgServer,
) -> None:
    """Refuted 4 (review 75o, pglast3: no re-grant, the members stored for the retry instead):
    `_REVOKED` granted to `_FIRST` WITH ADMIN OPTION and to `_SECOND`; the second ending of
    `_SECOND`'s sessions fails: no role is a member again, and the retry ends both anew."""
    with _roles(pg_server) as su:
        su.execute(f"GRANT {_REVOKED} TO {_FIRST} WITH ADMIN OPTION; GRANT {_REVOKED} TO {_SECOND}")
        ended: list[str] = []

        def end(member: str) -> None:
            if ended.count(member) == 1 and member == _SECOND:
                raise SecretError(SecretFailure.ENGINE_FAILED, "a session did not end")
            ended.append(member)

        with pytest.raises(SecretError):
            locks.revoke_members(su, _REVOKED, end)
        assert su.execute(_MEMBERS, (_REVOKED,)).fetchall() == []
        again: list[str] = []
        locks.revoke_members(su, _REVOKED, again.append)
        assert sorted(again) == sorted([_FIRST, _SECOND] * 2)
