"""Review 73v, prepared2: 73s's identity check of a lease's prepared transaction
(troth.secrets.engines.postgres_locks.roll_back_prepared) across a server restart
(PostgreSQL tests: TROTH_REQUIRE_PG=1).

prepared2 1: a prepared transaction's virtual transaction id is its backend's
(`<slot>/<local counter>`, cloned at PREPARE) until a restart, and the server counts the slots'
local transactions anew from 1 after one. A revocation reads a gid and its vxid (PREPARED_BY on
one admin session) and rolls it back on another (`_admin` per database, reopened when the
server ended the kept one): a restart between the two, the transaction read committed by its
owner, and another lease's transaction prepared under the gid in the same slot at the same
count, was rolled back in its place (another agent's writes). A prepared transaction is read
and rolled back by its xid now, never another transaction's.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest

from tests.support.postgres import PgServer, restart
from tests.test_review73l_pgwatch import _FIRST, _LEASES, _SECOND, _lease, _roles
from troth.secrets.engines import postgres_locks as locks

_GID = "g73v_prepared2"
_OWN_VXID = "SELECT virtualtransaction FROM pg_locks WHERE pid = pg_backend_pid()"
_OWN_VXID += " AND locktype = 'virtualxid'"


def _session_in_slot(pg_server: PgServer, role: str, slot: str, stack: ExitStack) -> Any:
    """A session of `role` in backend slot `slot` (others opened and kept until it is)."""
    for _ in range(32):
        session = _lease(pg_server, role, stack, lock=False)
        if session.execute(_OWN_VXID).fetchone()[0].split("/")[0] == slot:
            return session
    raise AssertionError(f"no session in slot {slot}")


def test_a_vxid_read_before_a_restart_does_not_roll_back_another_leases(
    pg_server: PgServer, request: pytest.FixtureRequest
) -> None:
    """73v prepared2 1: `_FIRST`'s prepared transaction read (gid, vxid `N/M`), committed; the
    server restarts; `_SECOND` prepares under the gid in slot N at count M, and the rollback
    of the transaction read took it. Now it is left."""
    proc = request.getfixturevalue("troth_pg_proc")
    with _roles(pg_server), ExitStack() as stack:
        try:
            first = _lease(pg_server, _FIRST, stack, lock=False)
            for _ in range(20):  # a count the slot's new session starts below after the restart
                first.execute("SELECT 1")
            first.execute("BEGIN")
            vxid = first.execute(_OWN_VXID).fetchone()[0]  # the prepared one's until a restart
            first.execute(f"PREPARE TRANSACTION '{_GID}'")
            with pg_server.connect() as su:
                ((_, _, read),) = su.execute(locks.PREPARED_BY, (_FIRST,)).fetchall()
            pg_server.end_prepared(pg_server.dbname, _GID, "COMMIT")
            restart(proc, pg_server)
            slot, count = vxid.split("/")
            second = _session_in_slot(pg_server, _SECOND, slot, stack)
            while int(second.execute(_OWN_VXID).fetchone()[0].split("/")[1]) < int(count) - 1:
                continue  # each statement a transaction of the slot's count
            second.execute("BEGIN")
            assert second.execute(_OWN_VXID).fetchone()[0] == vxid
            second.execute(f"PREPARE TRANSACTION '{_GID}'")
            with pg_server.connect() as admin:
                locks.roll_back_prepared(admin, _GID, _LEASES, read)
            assert pg_server.prepared(pg_server.dbname, _GID)
        finally:
            pg_server.end_prepared(pg_server.dbname, _GID)
