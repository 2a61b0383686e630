"""Review 75q, pglast4: 75o's stored members in `revoke_members` (troth.secrets.engines.
postgres_locks; PostgreSQL tests: TROTH_REQUIRE_PG=1, server 15).

75q pglast4 1: the stored members were not walked again, and the ending after the REVOKEs'
commit ended the list read before them: a role granted a member's role (an application's
admin, WITH ADMIN OPTION on it) while the REVOKEs' transaction ran could `SET ROLE` to the
lease through it until their commit (the deleted membership is the server's until then), and
neither the ending after the commit nor any retry named it: its session acting as the lease
prepared a transaction just before `DROP ROLE`, left owned by no role (75b pglast 3's orphan).

75q pglast4 2: the note stored oids alone, and read back any role holding one: a stored member
dropped meanwhile (an application's role) and its oid given to a role made later (the oid
counter wraps, and a broker makes lease roles all the time) had that role's sessions, another
lease's or an application's, ended at every retry until `DROP ROLE`.

75q pglast4 3: two brokers (two nodes) revoking the lease at once: the second read its members
before the first's REVOKEs, a role was granted a member's role in between, and the first stored
it; the second, committing last, wrote its own list over the first's (a lost update: the note
is one comment), and no retry named that role, whose session acted as the lease before the
first's commit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from psycopg import sql

from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _FIRST, _REVOKED, _SECOND, _roles
from troth.errors import SecretError, SecretFailure
from troth.secrets.engines import postgres_locks as locks


@contextmanager
def stored_member(pg_server: PgServer) -> Iterator[tuple[Any, str]]:
    """`_roles`, and a role of its own (no login, an application's) granted `_REVOKED`: the
    superuser's session and that role's name."""
    member = f"m75q_{uuid.uuid4().hex[:8]}"
    with _roles(pg_server) as su:
        su.execute(f"CREATE ROLE {member}; GRANT {_REVOKED} TO {member}")
        try:
            yield su, member
        finally:
            su.execute(f"DROP ROLE IF EXISTS {member}")


class _ReadFirst:
    """A broker's admin connection running `then` once its first statement (the members'
    read) has run: its transaction open, nothing revoked yet."""

    def __init__(self, conn: Any, then: Callable[[], None]) -> None:
        self.conn, self.then, self.sent = conn, then, 0

    def transaction(self) -> Any:
        return self.conn.transaction()

    def execute(self, statement: Any, params: Any = None) -> Any:
        result = self.conn.execute(statement, params)
        self.sent += 1
        if self.sent == 1:
            self.then()
        return result


def comment(role: str, text: str) -> sql.Composed:
    """`COMMENT ON ROLE role IS text`."""
    return sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(role), sql.Literal(text))


def note(su: Any) -> str:
    """`_REVOKED`'s comment."""
    query = "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s"
    return str(su.execute(query, (_REVOKED,)).fetchone()[0])


def oid(su: Any, role: str) -> str:
    return str(su.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0])


def test_a_member_of_a_stored_member_joining_in_the_revokes_transaction_is_ended(
    pg_server: PgServer,
) -> None:
    """75q pglast4 1: as the member's sessions are first ended (in the REVOKEs' transaction),
    the member's role is granted to `_SECOND`, whose session sets its role to `_REVOKED`: the
    ending after the commit, and the retry, end `_SECOND`'s sessions."""
    with stored_member(pg_server) as (su, member), pg_server.connect() as admin:
        ended: list[str] = []
        acting: list[Any] = []

        def end(role: str) -> None:
            if not acting:
                su.execute(f"GRANT {member} TO {_SECOND}")
                acting.append(pg_server.connect(user=_SECOND, password="x"))
                acting[0].execute(f"SET ROLE {_REVOKED}")  # the REVOKE is not committed yet
            ended.append(role)

        try:
            locks.revoke_members(admin, _REVOKED, end)
            assert acting[0].execute("SELECT current_user").fetchone() == (_REVOKED,)
        finally:
            acting[0].close()
        assert _SECOND in ended  # after the commit: its session acts as the lease
        again: list[str] = []
        locks.revoke_members(su, _REVOKED, again.append)
        assert _SECOND in again


def test_a_stored_oid_given_to_another_role_does_not_name_it(pg_server: PgServer) -> None:
    """75q pglast4 2: the member's second ending fails (stored in the note); the member dropped
    and its oid now `_FIRST`'s (another lease's role: the note rewritten as the oid's reuse
    leaves it): the retry ends no session of `_FIRST`."""
    with stored_member(pg_server) as (su, member), pg_server.connect() as admin:
        ended: list[str] = []

        def end(role: str) -> None:
            if ended.count(role) == 1:
                raise SecretError(SecretFailure.ENGINE_FAILED, "a session did not end")
            ended.append(role)

        with pytest.raises(SecretError):
            locks.revoke_members(admin, _REVOKED, end)
        stored, reused = oid(su, member), oid(su, _FIRST)
        su.execute(f"DROP ROLE {member}")
        text = re.sub(rf"\b{stored}\b", reused, note(su))
        su.execute(comment(_REVOKED, text))
        again: list[str] = []
        locks.revoke_members(su, _REVOKED, again.append)
        assert _FIRST not in again


def test_two_brokers_revoking_at_once_lose_no_stored_member(pg_server: PgServer) -> None:
    """75q pglast4 3: broker B reads the members; the member's role is granted to `_SECOND`
    and broker A revokes the members whole (storing `_SECOND` with the member); B goes on and
    commits its list last: the retry ends `_SECOND`'s sessions."""
    with (
        stored_member(pg_server) as (su, member),
        pg_server.connect() as first,
        pg_server.connect() as second,
    ):
        by_first: list[str] = []

        def first_revokes() -> None:
            su.execute(f"GRANT {member} TO {_SECOND}")
            locks.revoke_members(first, _REVOKED, by_first.append)

        locks.revoke_members(_ReadFirst(second, first_revokes), _REVOKED, lambda _role: None)
        assert _SECOND in by_first
        again: list[str] = []
        locks.revoke_members(su, _REVOKED, again.append)
        assert _SECOND in again
