"""Review 75b, pglast: the members of a revoked PostgreSQL lease role after 74u's
`revoke_members` and 74v last 2 (troth.secrets.engines.postgres, postgres_locks; PostgreSQL
tests: TROTH_REQUIRE_PG=1). The memberships are granted as the superuser: PostgreSQL 14 and
older let the lease's own session grant them, 15 (the server here) asks ADMIN OPTION.

75b pglast 1: `revoke_members` ended the sessions of the lease's direct members only, but
membership is transitive for `SET ROLE`: a session of a member of a member (another lease's, or
an application's) that set its role to the revoked lease kept acting as it after the
membership in between was revoked, and a transaction it prepared just before `DROP ROLE` was
left owned by no role, the lease reported REVOKED (74u pgwatch8 2 through a chain).

75b pglast 2: `revoke_members`' REVOKE was committed before the members' sessions were ended;
one that did not end within `terminate_wait_ms` failed the revocation, and its retry, the
membership gone, no longer knew that role's sessions could act as the lease: the one still
acting as it prepared a transaction before `DROP ROLE`, left owned by no role, the lease
REVOKED.

75b pglast 3 (in 75b's own fix of pglast 2): the members' sessions are ended in the REVOKE's
transaction and once more after its commit, for one that logged in meanwhile and set its role
to the lease (the membership still there for it until the commit); that second ending failing,
the retry again no longer knew that role's sessions could act as the lease: the session that
logged in in between prepared its transaction before `DROP ROLE`, left owned by no role.

75b pglast 4 (left: strict xfail): a membership revoked before the revocation leaves no trace.
On PostgreSQL 14 and older the lease's own session grants its role to an application role
whose session sets its role to the lease, then revokes that membership itself: nothing in the
catalogs then says the session may be acting as the lease (pg_stat_activity names its session
user only), and a transaction it prepares before `DROP ROLE` is left owned by no role. On 15
and later only an administrator may grant or revoke it. A fix needs PostgreSQL to show a
session's current role, or troth to keep each dropped lease role's oid and roll back the
prepared transactions it owns for good (a sweep of `pg_prepared_xact()`'s dangling owners).

75b pglast 5 (in 75b's own fix): another broker's admin (a CREATEROLE role, no superuser) that
holds the lease's role for one statement (`roll_back_prepared`, rolling back the lease's
prepared transaction holding a lock its own revocation needs) was named as a member by this
broker's revocation, all its sessions ended: its connections, its revocation in flight. A role
that may grant itself the lease's role at will (CREATEROLE, as a superuser may set any role)
is an administrator, as the admin itself: never named, nor its members.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.leases import LeaseWorld
from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _REVOKED, _SECOND, _roles
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
from troth.errors import SecretError, SecretFailure
from troth.secrets import Broker, IssuedLease, LeaseState
from troth.secrets.book import REVOKE_RETRY_FIRST
from troth.secrets.engines import postgres
from troth.secrets.engines import postgres_locks as locks

_APP_PASSWORD = "app-secret"


@contextmanager
def app_roles(db: OrdersDb, *names: str) -> Iterator[None]:
    """Application roles `names` (LOGIN, password `_APP_PASSWORD`), dropped at the end."""
    quoted = ['"' + name.replace('"', '""') + '"' for name in names]
    with db.server.connect(dbname=db.dbname) as su:
        for name in quoted:
            su.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{_APP_PASSWORD}'")
    try:
        yield
    finally:
        with db.server.connect(dbname=db.dbname) as su:
            for name in quoted:
                su.execute(f"DROP ROLE IF EXISTS {name}")


def grant_chain(db: OrdersDb, chain: list[str]) -> None:
    """Each role of `chain` granted to the next (as the superuser: PostgreSQL 14 and older let
    each lease's own session grant its role)."""
    with db.server.connect(dbname=db.dbname) as su:
        for role, member in itertools.pairwise(chain):
            su.execute(
                psycopg.sql.SQL("GRANT {} TO {}").format(
                    psycopg.sql.Identifier(role), psycopg.sql.Identifier(member)
                )
            )


def acting_as(db: OrdersDb, credential: dict[str, Any], role: str) -> Any:
    """A session logged in with `credential` that set its role to `role` and wrote a row in an
    open transaction."""
    session = login(db, credential)
    session.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))
    session.execute("BEGIN")
    session.execute("INSERT INTO orders VALUES (9996, 1)")
    return session


@dataclass
class Scene:
    """A broker with `leases` issued (the first revoked), application roles `apps` and the
    gid a session acting as the first lease prepares its transaction under."""

    db: OrdersDb
    broker: Broker
    agent: Any
    leases: list[IssuedLease]
    apps: list[str]
    gid: str

    def user(self, index: int) -> str:
        return str(self.leases[index].credential.reveal()["user"])

    def credential(self, user: str) -> dict[str, Any]:
        """The credential logging in as lease role or application role `user`."""
        leases = [lease.credential.reveal() for lease in self.leases]
        found = [credential for credential in leases if credential["user"] == user]
        return found[0] if found else {**leases[0], "user": user, "password": _APP_PASSWORD}

    def state(self) -> LeaseState:
        found = self.broker.book.lease(self.leases[0].lease.handle)
        assert found is not None
        return found.state

    def fails_ending(self, mp: pytest.MonkeyPatch, end: Callable[..., None]) -> None:
        """Revoke the first lease, `postgres._end_sessions` replaced by `end`: it fails."""
        with mp.context() as patched:
            patched.setattr(postgres, "_end_sessions", end)
            revoked = self.broker.revoke(self.agent, self.leases[0].lease_id, now=now())
            assert revoked.state is not LeaseState.REVOKED

    def keeps_no_orphan(self, session: Any, mp: pytest.MonkeyPatch) -> None:
        """Revoke the first lease (the sweep retries it when REVOKING), `session` preparing its
        transaction as `gid` just before the revocation's `DROP ROLE`: not both REVOKED and
        that transaction left."""
        role = self.user(0)
        with mp.context() as patched:
            patched.setattr(
                psycopg.Connection, "execute", _prepare_before_drop(role, session, self.gid)
            )
            if self.state() is LeaseState.REVOKING:
                self.broker.sweep(now() + 2 * REVOKE_RETRY_FIRST)  # the member lease unexpired
            else:
                self.broker.revoke(self.agent, self.leases[0].lease_id, now=now())
        assert not (
            self.state() is LeaseState.REVOKED and self.db.server.prepared(self.db.dbname, self.gid)
        )


@contextmanager
def scene(
    tmp_path: Path, made_world: LeaseWorld, db: OrdersDb, leases: int, *apps: str, **config: Any
) -> Iterator[Scene]:
    """A `Scene` (the secret's settings changed by `config`); its prepared transaction rolled
    back and its application roles dropped at the end."""
    broker = setup(tmp_path, made_world, db, **config)
    agent = made_world.credential_a()
    issued = [broker.issue(agent, SECRET, scope=["orders:write"], now=now()) for _ in range(leases)]
    made = Scene(db, broker, agent, issued, list(apps), f"g75b_{uuid.uuid4().hex[:8]}")
    try:
        with app_roles(db, *apps):
            yield made
    finally:
        db.server.end_prepared(db.dbname, made.gid)
        broker.close()


def ending(
    name: str, fails: Callable[[], bool], then: Callable[[], None] = lambda: None
) -> Callable[..., None]:
    """`postgres._end_sessions` failing for role `name` when `fails()` (a session of it takes
    no interrupt in time), else ending them, then calling `then()`."""
    end_sessions = postgres._end_sessions

    def end(conn: Any, role: str, wait_ms: int, *, strict: bool = True) -> None:
        if role == name and fails():
            raise SecretError(SecretFailure.ENGINE_FAILED, f"a session of {role} did not end")
        end_sessions(conn, role, wait_ms, strict=strict)
        if role == name:
            then()

    return end


def app(tag: str = "") -> str:
    """An application role's name (`tag` in it: quotes, spaces)."""
    return f"app{tag}_{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("through", ["lease", "application"])
def test_a_member_of_a_member_of_the_revoked_role_keeps_no_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    through: str,
) -> None:
    """75b pglast 1: lease 1 granted to a second role (another lease's, or an application's
    whose name needs quoting), granted to a third (likewise), whose session sets role to
    lease 1 and prepares its transaction just before `DROP ROLE`: the third's session was not
    ended (a member of a member), the lease reported REVOKED and the transaction left owned by
    no role."""
    with scene(tmp_path, world, orders, 3, app(' "q'), app(" b")) as made:
        chain = [made.user(i) for i in range(3)] if through == "lease" else []
        chain = chain or [made.user(0), *made.apps]
        grant_chain(orders, chain)
        with acting_as(orders, made.credential(chain[2]), made.user(0)) as session:
            made.keeps_no_orphan(session, monkeypatch)


@pytest.mark.parametrize("member", ["lease", "application"])
def test_a_member_whose_session_outlived_a_failed_revocation_keeps_no_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    member: str,
) -> None:
    """75b pglast 2: lease 1 granted to a member role (another lease's, or an application's)
    whose session sets role to lease 1; the first revocation fails as ending that member's
    sessions does not finish in time, the second, the membership already revoked, did not end
    it: the transaction it prepared just before `DROP ROLE` was left owned by no role, the
    lease REVOKED."""
    with scene(tmp_path, world, orders, 2, app()) as made:
        name = made.user(1) if member == "lease" else made.apps[0]
        grant_chain(orders, [made.user(0), name])
        with acting_as(orders, made.credential(name), made.user(0)) as session:
            made.fails_ending(monkeypatch, ending(name, lambda: True))
            made.keeps_no_orphan(session, monkeypatch)


def test_a_member_that_logged_in_before_the_revokes_commit_keeps_no_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """75b pglast 3: an application member's session logs in and sets its role to lease 1
    after its role's sessions were ended in the REVOKE's transaction, before its commit;
    ending them again after the commit does not finish in time: the revocation fails, and
    the retry, the membership gone, did not end that session, whose transaction, prepared just
    before `DROP ROLE`, was left owned by no role, the lease REVOKED."""
    sessions = list[Any]()
    with scene(tmp_path, world, orders, 1, app()) as made:
        name = made.apps[0]

        def acts() -> None:  # logged in before the REVOKE's commit, after the first ending
            sessions.append(acting_as(orders, made.credential(name), made.user(0)))

        grant_chain(orders, [made.user(0), name])
        made.fails_ending(monkeypatch, ending(name, lambda: bool(sessions), acts))
        with sessions[0] as session:
            made.keeps_no_orphan(session, monkeypatch)


@pytest.mark.xfail(
    strict=True,
    reason="75b pglast 4: a membership in the lease's role revoked before its revocation "
    "(PostgreSQL 14 and older: by the lease itself) leaves a session that set its role to "
    "it untraceable; its prepared transaction outlives the REVOKED lease",
)
def test_a_former_member_acting_as_the_lease_keeps_no_prepared_transaction(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """75b pglast 4: the lease's role granted to an application role, whose session sets its
    role to it, the membership then revoked (as the superuser: on PostgreSQL 14 and older the
    lease's own session may do both): the revocation finds no member, and the transaction the
    session prepares just before `DROP ROLE` is left owned by no role, the lease REVOKED."""
    with scene(tmp_path, world, orders, 1, app()) as made:
        role, name = made.user(0), made.apps[0]
        grant_chain(orders, [role, name])
        with acting_as(orders, made.credential(name), role) as session:
            with orders.server.connect(dbname=orders.dbname) as su:
                su.execute(f'REVOKE "{role}" FROM "{name}"')
            made.keeps_no_orphan(session, monkeypatch)


def test_another_admins_membership_does_not_have_its_sessions_ended(pg_server: PgServer) -> None:
    """75b pglast 5: `_REVOKED` granted to `_ADMIN` (another broker's admin: CREATEROLE, no
    superuser, in its `roll_back_prepared`) and to lease `_SECOND`: `revoke_members` as the
    superuser named `_ADMIN` too, whose sessions the revocation ends."""
    with _roles(pg_server) as su:
        su.execute(f"GRANT {_REVOKED} TO {_ADMIN}; GRANT {_REVOKED} TO {_SECOND}")
        with pg_server.connect() as conn:
            ended: list[str] = []
            locks.revoke_members(conn, _REVOKED, ended.append)
            assert set(ended) == {_SECOND}
