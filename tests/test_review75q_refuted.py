"""Review 75q, refuted: attacks on 75o's stored members (`revoke_members`' note, the lease
role's comment; troth.secrets.engines.postgres_locks; PostgreSQL tests: TROTH_REQUIRE_PG=1,
server 15) that did not work (after pglast4's fix).

Refuted 1: a lease role's own session (LOGIN, no CREATEROLE) writing its role's comment, or the
revoked lease's, before its revocation (a note naming the admin or another role): refused on
15 (COMMENT ON ROLE asks CREATEROLE; a role has no implicit ADMIN OPTION on itself there).

Refuted 2: a note troth did not write (an administrator's by hand): junk, an oid out of range,
tokens naming the superuser, the admin (CREATEROLE) or an oid with another name: no revocation
fails on it (compared as text, never cast), and no administrator's session is ended.

Refuted 3 (pglast4's hole argued): a role granted a stored member's role after the REVOKEs'
commit may not `SET ROLE` to the lease through it (the member is a member no more).
"""

from __future__ import annotations

import pytest
from psycopg import errors

from tests.support.postgres import PgServer
from tests.test_review73l_pgwatch import _ADMIN, _FIRST, _REVOKED, _SECOND, _roles
from tests.test_review75q_pglast4 import comment, oid, stored_member
from troth.secrets.engines import postgres_locks as locks


def test_a_lease_writes_no_note(pg_server: PgServer) -> None:
    """Refuted 1: lease `_FIRST`'s session comments on its own role and on `_REVOKED`
    (a note naming the admin): refused."""
    with _roles(pg_server) as su, pg_server.connect(user=_FIRST, password="x") as lease:
        text = locks.MEMBERS_NOTE + f"{oid(su, _ADMIN)}:{_ADMIN.encode().hex()}"
        for role in (_FIRST, _REVOKED):
            with pytest.raises(errors.InsufficientPrivilege):
                lease.execute(comment(role, text))


def test_a_hand_written_note_fails_nothing_and_names_no_administrator(
    pg_server: PgServer,
) -> None:
    """Refuted 2: `_REVOKED`'s comment written by hand (junk, an oid out of range, the
    superuser's and the admin's tokens, `_SECOND`'s oid under `_FIRST`'s name); the admin
    (CREATEROLE, no superuser) revokes: only `_REVOKED`'s member is ended, twice."""
    with stored_member(pg_server) as (su, member), pg_server.connect(user=_ADMIN) as admin:
        superuser = su.execute("SELECT current_user").fetchone()[0]
        tokens = [
            "{,}",
            "99999999999:00",
            f"{oid(su, superuser)}:{superuser.encode().hex()}",
            f"{oid(su, _ADMIN)}:{_ADMIN.encode().hex()}",
            f"{oid(su, _SECOND)}:{_FIRST.encode().hex()}",
            "",
        ]
        su.execute(comment(_REVOKED, locks.MEMBERS_NOTE + ",".join(tokens)))
        ended: list[str] = []
        locks.revoke_members(admin, _REVOKED, ended.append)
        assert ended == [member, member]


def test_a_member_joining_a_stored_member_after_the_commit_may_not_act_as_the_lease(
    pg_server: PgServer,
) -> None:
    """Refuted 3: `revoke_members` done; the stored member's role granted to `_SECOND`:
    `_SECOND`'s session may not set its role to `_REVOKED`."""
    with stored_member(pg_server) as (su, member):
        locks.revoke_members(su, _REVOKED, lambda _role: None)
        su.execute(f"GRANT {member} TO {_SECOND}")
        with pg_server.connect(user=_SECOND, password="x") as session:
            session.execute(f"SET ROLE {member}")
            with pytest.raises(errors.InsufficientPrivilege):
                session.execute(f"SET ROLE {_REVOKED}")
