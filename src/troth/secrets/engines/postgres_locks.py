"""The locks held against a postgres revocation (troth.secrets.engines.postgres): the sessions
and prepared transactions holding a lock on what `DROP OWNED BY` a lease's role drops or alters
(review 44b, postgres 1; its schema too: review 70n, schemas 4), or that updated a catalog
row it deletes (review 70w, schemas2 1) or an ACL row naming the role it revokes from (review
70z, updaters 1) or a data row of a large object it owns (review 71b, pglease 3), or on the
role itself (review 69r, leases 5), and
the transactions a lease's role prepared, which outlive its sessions (review 69r, leases 1, 3
and 4): each ended (`pg_terminate_backend`) or rolled back (`ROLLBACK PREPARED`, in the
database it was prepared in) before the statement it would block. Only a lease role's (this
broker's or any troth broker's, `leases`: a pattern only brokers' roles match): another
role's (an application's, an administrator's XA transaction manager's) is its data, never
destroyed for a lease's revocation; the statement it blocks fails its lock timeout, after the
lease's role was shut out, and the revocation is retried (review 69w, wave4b 1). And the
role's large objects, unlinked a batch to a transaction before `DROP OWNED`, which locks all
it drops at once (review 71b, pglease 1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "LOCK_HOLDERS",
    "LO_UNLINK_BATCH",
    "MEMBERS_NOTE",
    "PREPARED_BY",
    "ROLE_LOCKERS",
    "end_lock_holders",
    "lock_holders",
    "revoke_members",
    "roll_back_prepared",
    "terminate",
    "unlink_large_objects",
]

PREPARED_BY: Final = (
    # and each one's xid: `roll_back_prepared` rolls back that transaction only (review 73s,
    # prepared 1; its xid, not its vxid: review 73v, prepared2 1)
    "SELECT p.database, p.gid, p.transaction::text FROM pg_prepared_xacts p"
    " WHERE p.owner = %s ORDER BY p.database, p.gid"
)


_PREPARED_OWNER: Final = (
    "SELECT p.owner::text FROM pg_prepared_xacts p"
    " WHERE p.gid = %s AND p.database = current_database() AND p.owner::text ~ %s"
    " AND p.transaction::text = %s"
)


def roll_back_prepared(conn: Any, gid: str, leases: str, xid: str) -> None:
    """Roll back the prepared transaction `gid` of the connection's database, a lease role's
    (`leases`), as that role (`SET ROLE`): `ROLLBACK PREPARED` is its owner's or a
    superuser's. So an admin that is no superuser rolls it back too, granting itself the lease
    role (CREATEROLE may) for that statement: it was left, and a lease's prepared lock on what
    the revocation drops failed its lock timeout at every retry (review 73q, pgwatch3 1). And
    only the lease role's is rolled back: as the admin, a transaction its owner committed
    after the read, another role's (an application's) then prepared under the same gid, was
    rolled back in its place (pgwatch3 2); as the owner read, it is refused. One finished
    meanwhile is done; one the admin may not end (it may not have the role) is left: the
    statement it blocks fails, and the revocation is retried. And only the transaction read,
    `xid` (its transaction id): the owner re-read was any lease role's, and another lease's
    transaction prepared under the gid after the one read committed (another agent's writes,
    locking nothing of the revoked lease's) was rolled back in its place (review 73s,
    prepared 1). Not its virtual transaction id: a prepared transaction's is its backend's
    (slot and count), and the slots' counts start anew when the server restarts, so one read
    before a restart (the rollback is on another admin session, reopened) named another
    lease's transaction prepared under the gid in that slot at that count after it, rolled
    back in its place (review 73v, prepared2 1); an xid is never another transaction's. Looked
    for again as the owner just before the rollback (review 74b, pgwatch4 1). One another
    session is finishing ("is busy") is left to end (review 74g, pgwatch5 1); a connection whose
    RESET ROLE did not come back is closed (pgwatch5 2)."""
    import psycopg
    from psycopg import sql

    found = conn.execute(_PREPARED_OWNER, (gid, leases, xid)).fetchone()
    if found is None:
        return
    owner = sql.Identifier(found[0])
    granted = False
    try:
        try:
            conn.execute(sql.SQL("SET ROLE {}").format(owner))
        except psycopg.errors.InsufficientPrivilege:
            # revoked after even when the GRANT's answer never came: the server committed it
            # and an interrupt (a daemon's shutdown) ended the wait for it, the admin left a
            # member of a live lease's role (review 74b, pgwatch4 4)
            granted = True
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(owner))
            conn.execute(sql.SQL("SET ROLE {}").format(owner))
        # read again as the owner, just before the rollback: between the read above and its
        # SET ROLE (a GRANT committed and another SET ROLE for an admin that is no superuser)
        # the owner committed the transaction read and prepared another under the gid, which
        # was rolled back in its place (review 74b, pgwatch4 1)
        if conn.execute(_PREPARED_OWNER, (gid, leases, xid)).fetchone() is None:
            return
        conn.execute(sql.SQL("ROLLBACK PREPARED {}").format(sql.Literal(gid)))
    except psycopg.errors.ObjectNotInPrerequisiteState:
        # "is busy": another session is finishing it (its owner's COMMIT PREPARED, another
        # broker's rollback, waiting for a synchronous standby or just running), left to end;
        # raised, it stopped the revocation's watcher and failed `_shut_out` before NOLOGIN
        # (review 74g, pgwatch5 1)
        return
    except (psycopg.errors.UndefinedObject, psycopg.errors.InsufficientPrivilege):
        return
    finally:
        _reset_role(conn, owner if granted else None)


def _reset_role(conn: Any, granted: Any) -> None:
    """RESET ROLE and REVOKE the admin's temporary membership in role `granted` (None: none
    was granted), or close the connection: an interrupt (a daemon's shutdown) as RESET ROLE
    was sent left it open as the lease role, and the broker keeps its admin connections across
    an error (`_admin`): the next revocation's statements ran as that lease (review 74g,
    pgwatch5 2). Each is sent once more after an interrupt, which psycopg ends by cancelling
    the statement and reading its end (the connection usable), before it is raised: the
    REVOKE skipped, or itself interrupted, left the admin a member of the lease's role,
    another live lease's for the lock holders (review 74n, pgwatch6 1 and 2). Closed only if
    the second RESET ROLE fails too."""
    interrupt: BaseException | None = None
    try:
        _twice(conn.execute, "RESET ROLE")
    except _Again as again:
        interrupt = again.first
    except BaseException:
        conn.close()
        raise
    if granted is not None:
        try:
            _twice(_revoke_membership, conn, granted)
        except _Again as again:
            interrupt = interrupt or again.first
    if interrupt is not None:
        raise interrupt


class _Again(Exception):
    """`_twice`'s first call failed and its second did not: `first`, its error."""

    def __init__(self, first: BaseException) -> None:
        super().__init__(str(first))
        self.first = first


def _twice(call: Any, *args: Any) -> None:
    """`call(*args)`, once more if it raised (`_Again`, the first error); the second's error
    raised, but never in an interrupt's place: one after which psycopg closed the connection
    (a second interrupt as it waited for the cancelled statement's end, or a cancel not
    answered) was replaced by the resend's "connection is closed", turned into a failed
    revocation, the daemon's shutdown lost (review 74r, pgwatch7 1). A new interrupt in the
    resend is raised."""
    try:
        call(*args)
    except BaseException as first:
        try:
            call(*args)
        except Exception as second:
            if isinstance(first, Exception):
                raise
            raise first from second
        raise _Again(first) from None


def _revoke_membership(conn: Any, owner: Any) -> None:
    """REVOKE the admin's temporary membership in role `owner`, which a role's DROP took with
    it when another broker revoked that lease meanwhile: "role does not exist" stopped the
    revocation's watcher, or failed the revocation (review 74b, pgwatch4 2). An admin refused
    the GRANT (no CREATEROLE) is refused the REVOKE too: it has nothing to revoke."""
    import psycopg
    from psycopg import sql

    try:
        conn.execute(sql.SQL("REVOKE {} FROM CURRENT_USER").format(owner))
    except (psycopg.errors.UndefinedObject, psycopg.errors.InsufficientPrivilege):
        return


# a role as the note stores it: its oid and its name's bytes (in hex: any name, any database's
# encoding), the pair no role made later has unless made under both (review 75q, pglast4 2)
_STORED_AS: Final = "r.oid::text || ':' || encode(textsend(r.rolname::text), 'hex')"

_MEMBERS: Final = (
    # every role that may `SET ROLE` to `role` (membership is transitive for it: a member of a
    # member may too; review 75b, pglast 1), whether direct; never through an administrator,
    # nor one itself, whose sessions are its own: a superuser (it may set any role, a member or
    # not), a CREATEROLE role (it may grant itself the role at will: another broker's admin,
    # a member for one statement in its `roll_back_prepared`, had all its sessions ended;
    # review 75b, pglast 5), the admin (`current_user`); and the roles an earlier attempt
    # named (`MEMBERS_NOTE`, the role's comment: their memberships revoked), each only while
    # it is the role stored (its oid and its name's bytes: an oid given to a role made later,
    # another lease's, is not it; review 75q, pglast4 2), and their members walked again (one
    # granted a stored member's role as the REVOKEs' transaction ran may have set its role to
    # `role` through it until their commit; pglast4 1). Compared as text, never cast: a
    # comment an administrator wrote by hand fails no revocation
    "WITH RECURSIVE g AS (SELECT oid FROM pg_roles WHERE rolname = %s),"  # noqa: S608
    " m(oid, direct, walk) AS ("
    " SELECT a.member, true, true FROM pg_auth_members a, g WHERE a.roleid = g.oid"
    " UNION SELECT r.oid, false, true FROM g, unnest(string_to_array(substring("
    "shobj_description(g.oid, 'pg_authid') FROM %s), ',')) s(token)"
    f" JOIN pg_roles r ON {_STORED_AS} = s.token"
    " UNION SELECT a.member, false, true FROM pg_auth_members a JOIN m ON a.roleid = m.oid"
    " JOIN pg_roles r ON r.oid = m.oid"
    " WHERE m.walk AND NOT (r.rolsuper OR r.rolcreaterole OR r.rolname = current_user)) "
    "SELECT r.rolname, bool_or(m.direct),"
    " NOT (r.rolsuper OR r.rolcreaterole OR r.rolname = current_user),"
    f" {_STORED_AS} FROM m"
    " JOIN pg_roles r ON r.oid = m.oid"
    " GROUP BY r.rolname, r.oid, r.rolsuper, r.rolcreaterole ORDER BY 1"
)

MEMBERS_NOTE: Final = "troth members to end: "
"""How `revoke_members` stores, in the REVOKEs' transaction, the roles whose sessions it ends
(each as `oid:name`, the name's bytes in hex, comma-separated) as the lease role's comment
(`COMMENT ON ROLE`, an administrator's: never the lease's), for every retry to end them and
their members again until `DROP ROLE` takes it (review 75o, pglast3 1 and 2; review 75q,
pglast4 1 and 2)."""

_NOTED: Final = "^" + MEMBERS_NOTE + "(.*)$"


def revoke_members(conn: Any, role: str, end_sessions: Callable[[str], None]) -> None:
    """REVOKE every membership in `role` and end (`end_sessions`, a role's name) the sessions of
    every role that may act as it: its members (lease roles or not) and theirs, but
    administrators (superusers, CREATEROLE roles, the admin; review 75b, pglast 5). On
    PostgreSQL 14 and older a role grants membership in itself from its own session (15 and
    later ask ADMIN OPTION, an administrator's), and a member's session that `SET ROLE` to it
    outlives the membership, the NOLOGIN and the end of the role's own sessions, acting as the
    revoked role to the end: a transaction it prepared as the role after the revocation's last
    look for them (just before `DROP ROLE`, which allows it) was left owned by no role for good,
    the lease reported REVOKED (review 74u, pgwatch8 2: another lease's session). PostgreSQL
    shows another session's session user only (pg_stat_activity), never the role it set, so
    every session of a role that may set its role to `role` may be acting as it: an
    application's the lease granted itself to (review 74v, last 2), a member's member's (review
    75b, pglast 1). Called once the role is NOLOGIN (it grants no membership again). Ended in
    the REVOKE's transaction: one that does not end (in time, or that the admin may not signal)
    fails it, the memberships kept, so the retry finds them (review 75b, pglast 2: committed
    first, the retry no longer knew that role's sessions could act as the lease); and once more
    after its commit (one that logged in before it may have set its role meanwhile; review 75b,
    pglast 3), read again then: a role granted a stored member's role meanwhile may have set
    its role to `role` through it until the commit, and the list read before named it not
    (review 75q, pglast4 1). The roles ended are stored with the REVOKEs (`MEMBERS_NOTE`), so a
    retry ends them (and their members) again however the attempt stopped after the commit:
    the memberships granted again instead lived in the broker's memory only, lost with its
    process (SIGKILL, or a server restart: the GRANTs never sent) or with a second interrupt
    cancelling a GRANT (review 75o, pglast3 1 and 2). A role that is no member (an
    application's) is never named."""
    from psycopg import sql

    with conn.transaction():
        rows = conn.execute(_MEMBERS, (role, _NOTED)).fetchall()
        for member in [member for member, direct, _ends, _token in rows if direct]:
            conn.execute(
                sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(member))
            )
        ended = [(member, token) for member, _direct, ends, token in rows if ends]
        if ended:
            note = MEMBERS_NOTE + ",".join(token for _member, token in ended)
            conn.execute(
                sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(role), sql.Literal(note))
            )
        for member, _token in ended:
            end_sessions(member)
    rows = conn.execute(_MEMBERS, (role, _NOTED)).fetchall()
    for member, _direct, ends, _token in rows:
        if ends:
            end_sessions(member)


LOCK_HOLDERS: Final = (
    # what `role` owns in this database, then everything that depends on it (pg_depend, a
    # rule's view, a default's, trigger's, policy's or constraint's table), and the tables
    # whose policies name it: what DROP OWNED (with CASCADE) drops or alters, each of which it
    # must lock. Only what its owner made depend on the lease's objects: a foreign key of the
    # lease's table puts internal triggers on the table it references (a template's, which
    # every agent reads), and a lease must not end the sessions reading that table
    "WITH RECURSIVE r AS (SELECT oid FROM pg_roles WHERE rolname = %s), "
    "owned(classid, objid) AS ("
    " SELECT 'pg_class'::regclass::oid, c.oid FROM pg_class c, r WHERE c.relowner = r.oid"
    " UNION SELECT 'pg_proc'::regclass::oid, p.oid FROM pg_proc p, r WHERE p.proowner = r.oid"
    " UNION SELECT 'pg_type'::regclass::oid, t.oid FROM pg_type t, r WHERE t.typowner = r.oid"
    " UNION SELECT 'pg_namespace'::regclass::oid, n.oid FROM pg_namespace n, r"
    " WHERE n.nspowner = r.oid), "
    "reach(classid, objid) AS (SELECT classid, objid FROM owned UNION"
    " SELECT v.classid, v.objid FROM reach x JOIN pg_depend d"
    " ON d.refclassid = x.classid AND d.refobjid = x.objid"
    " CROSS JOIN LATERAL (VALUES (d.classid, d.objid), ('pg_class'::regclass::oid, COALESCE("
    "(SELECT ev_class FROM pg_rewrite WHERE d.classid = 'pg_rewrite'::regclass AND oid = d.objid),"
    "(SELECT adrelid FROM pg_attrdef WHERE d.classid = 'pg_attrdef'::regclass AND oid = d.objid),"
    "(SELECT tgrelid FROM pg_trigger WHERE d.classid = 'pg_trigger'::regclass AND oid = d.objid"
    " AND NOT tgisinternal),"
    "(SELECT polrelid FROM pg_policy WHERE d.classid = 'pg_policy'::regclass AND oid = d.objid),"
    "(SELECT conrelid FROM pg_constraint WHERE d.classid = 'pg_constraint'::regclass"
    " AND oid = d.objid), 0::oid))) v(classid, objid) WHERE v.objid <> 0), "
    # the transactions that updated (and have not ended) a catalog row DROP OWNED deletes: a
    # GRANT another role made on the lease's object with a grant option it gave (review 70w,
    # schemas2 1: DROP OWNED waited on the row, holding no lock but its transaction id)
    "updaters(xid) AS ("
    " SELECT xmax FROM pg_class WHERE oid IN (SELECT objid FROM reach"
    " WHERE classid = 'pg_class'::regclass)"
    " UNION ALL SELECT xmax FROM pg_attribute WHERE attrelid IN (SELECT objid FROM reach"
    " WHERE classid = 'pg_class'::regclass)"
    " UNION ALL SELECT xmax FROM pg_proc WHERE oid IN (SELECT objid FROM reach"
    " WHERE classid = 'pg_proc'::regclass)"
    " UNION ALL SELECT xmax FROM pg_type WHERE oid IN (SELECT objid FROM reach"
    " WHERE classid = 'pg_type'::regclass)"
    " UNION ALL SELECT xmax FROM pg_namespace WHERE oid IN (SELECT objid FROM reach"
    " WHERE classid = 'pg_namespace'::regclass)"
    " UNION ALL SELECT m.xmax FROM pg_largeobject_metadata m, r WHERE m.lomowner = r.oid"
    # and the ACL rows naming it (grantee or grantor) of what it does not own, which DROP OWNED
    # revokes from: another lease's open GRANT widening one it had (review 70z, updaters 1)
    " UNION ALL SELECT c.xmax FROM acl s JOIN pg_class c ON s.classid = 'pg_class'::regclass"
    " AND c.oid = s.objid"
    " UNION ALL SELECT a.xmax FROM acl s JOIN pg_attribute a ON s.classid = 'pg_class'::regclass"
    " AND a.attrelid = s.objid AND a.attnum = s.objsubid"
    " UNION ALL SELECT n.xmax FROM acl s JOIN pg_namespace n"
    " ON s.classid = 'pg_namespace'::regclass AND n.oid = s.objid"
    " UNION ALL SELECT p.xmax FROM acl s JOIN pg_proc p ON s.classid = 'pg_proc'::regclass"
    " AND p.oid = s.objid"
    " UNION ALL SELECT t.xmax FROM acl s JOIN pg_type t ON s.classid = 'pg_type'::regclass"
    " AND t.oid = s.objid"
    " UNION ALL SELECT d.xmax FROM acl s JOIN pg_default_acl d"
    " ON s.classid = 'pg_default_acl'::regclass AND d.oid = s.objid"
    " UNION ALL SELECT m.xmax FROM acl s JOIN pg_largeobject_metadata m"
    " ON s.classid = 'pg_largeobject_metadata'::regclass AND m.oid = s.objid"
    "/*large object data*/), "
    "acl(classid, objid, objsubid) AS (SELECT s.classid, s.objid, s.objsubid FROM pg_shdepend s, r"
    " WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = r.oid AND s.deptype = 'a'"
    " AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())) "
    # a session (its pid), or a prepared transaction (no pid: its gid; review 69r, leases 3)
    # (its xid's lock carries the virtual transaction id its relation locks keep)
    # (and a session's start and transaction: `terminate` ends it only if it is still that
    # session, in that transaction)
    # (a prepared transaction's xid instead: `roll_back_prepared`; review 73v, prepared2 1)
    "SELECT DISTINCT l.pid, p.gid, (SELECT a.backend_start FROM pg_stat_activity a"
    " WHERE a.pid = l.pid), CASE WHEN p.gid IS NULL THEN l.virtualtransaction"
    " ELSE p.transaction::text END FROM pg_locks l"
    " LEFT JOIN (pg_locks x JOIN pg_prepared_xacts p ON p.transaction = x.transactionid)"
    " ON l.pid IS NULL AND x.pid IS NULL"
    " AND x.locktype = 'transactionid' AND x.virtualtransaction = l.virtualtransaction "
    "WHERE l.locktype IN ('relation', 'object', 'transactionid') "
    "AND (l.pid <> pg_backend_pid() OR p.gid IS NOT NULL) "
    # whose the lock is, a prepared transaction's owner or the user a session logged in as (a
    # lease's role is a member of no role to SET ROLE to), must be a lease role's: matching the
    # pattern passed last (review 69w, wave4b 1: an application's prepared transaction was
    # rolled back, its writes lost, for holding a lock on a lease's table)
    "AND COALESCE(CASE WHEN p.gid IS NOT NULL THEN p.owner::text"
    " ELSE (SELECT a.usename::text FROM pg_stat_activity a WHERE a.pid = l.pid) END, '') ~ %s "
    "AND (l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " OR l.locktype = 'transactionid') "
    "AND (l.locktype = 'transactionid' AND l.granted"
    " AND l.transactionid IN (SELECT xid FROM updaters WHERE xid <> '0'::xid) "
    "OR l.relation IN (SELECT objid FROM reach WHERE classid = 'pg_class'::regclass) "
    # a table whose row-level security policy names `role`: DROP OWNED takes it out of it
    "OR l.relation IN (SELECT p.polrelid FROM pg_shdepend s JOIN pg_policy p ON p.oid = s.objid, r"
    " WHERE s.classid = 'pg_policy'::regclass AND s.refclassid = 'pg_authid'::regclass"
    " AND s.refobjid = r.oid AND s.dbid = l.database) "
    # a schema it owns, which a session creating a relation in it locks until its transaction
    # ends (review 70n, schemas 4: DROP OWNED, dropping the schema, waited for it)
    "OR l.locktype = 'object' AND l.classid = 'pg_namespace'::regclass"
    " AND l.objid IN (SELECT objid FROM reach WHERE classid = 'pg_namespace'::regclass))"
)


# the data rows of its large objects, which their unlink deletes: another lease's open `lo_put`
# there (review 71b, pglease 3); pg_largeobject is readable by superusers only
_LO_DATA: Final = (
    " UNION ALL SELECT d.xmax FROM pg_largeobject d WHERE d.loid IN"
    " (SELECT m.oid FROM pg_largeobject_metadata m, r WHERE m.lomowner = r.oid)"
)


def lock_holders(conn: Any) -> str:
    """`LOCK_HOLDERS`, its updaters reading the data rows of the role's large objects too when
    the admin may read them (pg_largeobject: a superuser)."""
    readable = conn.execute(
        "SELECT has_table_privilege('pg_catalog.pg_largeobject', 'SELECT')"
    ).fetchone()[0]
    return LOCK_HOLDERS.replace("/*large object data*/", _LO_DATA if readable else "")


_TERMINATE: Final = (
    "SELECT pg_terminate_backend(a.pid, %s) FROM pg_stat_activity a"
    " WHERE a.pid = %s AND a.backend_start IS NOT DISTINCT FROM %s AND a.usename::text ~ %s"
    " AND %s IN (SELECT k.virtualtransaction FROM pg_locks k WHERE k.pid = a.pid)"
)


def terminate(conn: Any, pid: int, started: Any, vxid: str, leases: str, wait_ms: int) -> None:
    """End session `pid`, read as a lease role's session started at `started` (its
    `backend_start`) in transaction `vxid` (its virtual transaction id, pg_locks'), if it still
    is one in the statement that signals it: a session that ended meanwhile left its pid to
    the next one the server started, an application's or another lease's, which was ended in
    its place (review 73b, pgwatch 1). The start alone told them apart for a superuser only:
    pg_stat_activity shows another role's `backend_start` only to a superuser, a member of
    pg_read_all_stats or of that role, and an admin that is none read NULL, which matched any
    session at the pid (review 73l, pgwatch 1); pg_locks is every role's to read, and a
    virtual transaction id names one transaction of the cluster (its backend slot and the
    slot's counter, which the server carries across the sessions using the slot). A session
    whose transaction ended meanwhile holds what was read no more and is left. One not ours to
    signal (a superuser's, when the admin is not one) is left: the statement it blocks waits
    its lock timeout, fails and is retried."""
    import psycopg

    try:
        conn.execute(_TERMINATE, (wait_ms, pid, started, leases, vxid))
    except psycopg.Error:
        return


ROLE_LOCKERS: Final = (
    # a session (its pid) or a prepared transaction (no pid: its gid and database, found by its
    # xid's lock, which carries the virtual transaction id its other locks keep); a session's
    # transaction read (its vxid: `terminate`), a prepared one's (its xid: `roll_back_prepared`;
    # review 73v, prepared2 1)
    "SELECT DISTINCT l.pid, p.gid, p.database, (SELECT a.backend_start FROM pg_stat_activity a"
    " WHERE a.pid = l.pid), CASE WHEN p.gid IS NULL THEN l.virtualtransaction"
    " ELSE p.transaction::text END FROM pg_locks l LEFT JOIN (pg_locks x"
    " JOIN pg_prepared_xacts p ON p.transaction = x.transactionid) ON l.pid IS NULL"
    " AND x.pid IS NULL AND x.locktype = 'transactionid'"
    " AND x.virtualtransaction = l.virtualtransaction "
    "WHERE l.locktype = 'object' AND l.classid = 'pg_authid'::regclass "
    "AND l.objid = (SELECT oid FROM pg_roles WHERE rolname = %s) "
    "AND (l.pid <> pg_backend_pid() OR p.gid IS NOT NULL) "
    "AND COALESCE(CASE WHEN p.gid IS NOT NULL THEN p.owner::text"
    " ELSE (SELECT a.usename::text FROM pg_stat_activity a WHERE a.pid = l.pid) END, '') ~ %s"
)


def end_lock_holders(conn: Any, role: str, leases: str, wait_ms: int) -> None:
    """End every other session holding (or waiting for) a lock on a relation `DROP OWNED BY
    role` drops or alters in the connection's database: what `role` owns and what depends on
    it (another live lease's view on its table, a column default calling its function), and a
    table whose row-level security policy names it, since DROP OWNED needs them all, or
    whose open transaction updated the catalog row of one of those objects (its `xmax`: a
    GRANT with a grant option the lease gave; review 70w, schemas2 1), or the ACL row naming
    `role` of what it does not own (another lease's open GRANT to it; review 70z, updaters 1;
    called before the privileges' REVOKE, which waits on it alike), or a data row of a large
    object `role` owns (another lease's open `lo_put` there, which its unlink waited on:
    review 71b, pglease 3; read where the admin may, a superuser): the
    sessions of lease roles (names matching `leases`) only. A session that does not end (one
    the admin may not signal, or another role's) is left for DROP OWNED's lock timeout, and the
    revocation is retried (review 44b, postgres 1).
    A prepared transaction holding such a lock has no session: it is rolled back (review 69r,
    leases 3: it kept the revocation failing for as long as its owner liked), if a lease role
    prepared it: another role's is left (review 69w, wave4b 1)."""
    for pid, gid, started, vxid in conn.execute(lock_holders(conn), (role, leases)).fetchall():
        if pid is None:  # a prepared transaction: no session to end (review 69r, leases 3)
            roll_back_prepared(conn, gid, leases, vxid)
            continue
        terminate(conn, pid, started, vxid, leases, wait_ms)


LO_UNLINK_BATCH: Final = 1000
"""Large objects a revocation unlinks in one transaction (`unlink_large_objects`): each takes a
slot of the server's shared lock table until its transaction ends."""

_OWNER: Final = "(SELECT oid FROM pg_roles WHERE rolname = %s)"
_UNLINK: Final = (
    "SELECT count(lo_unlink(m.oid)) FROM (SELECT oid FROM pg_largeobject_metadata"  # noqa: S608
    f" WHERE lomowner = {_OWNER} LIMIT %s) m"
)


def unlink_large_objects(conn: Any, role: str) -> None:
    """Unlink the large objects `role` owns in the connection's database, `LO_UNLINK_BATCH` to
    a transaction, before `DROP OWNED BY role`, which drops all it drops in one transaction
    holding a lock on each: the shared lock table has `max_locks_per_transaction` x
    (`max_connections` + `max_prepared_transactions`) slots (6912 by default), and a lease
    creates large objects with no privilege, in any database PUBLIC may connect to: 20000 of
    them (0.2 s) failed its `DROP OWNED` "out of shared memory" at every retry, the lease
    REVOKING for good, each retry filling the table every session of the cluster needs
    (review 71b, pglease 1). Its sessions ended and it logs in no more, and its routines are
    dropped first (postgres_drops.py): a SECURITY DEFINER one that any role may call made
    large objects as the role while they were being unlinked, which kept this loop going for
    as long as the callers outran it (review 71j, pglease 6); the batches are counted anew
    from those there at the start, what a call still running makes is left to `DROP OWNED`
    (retried). An admin that may not unlink them (no superuser) leaves them to DROP OWNED."""
    import psycopg

    query = f"SELECT count(*) FROM pg_largeobject_metadata WHERE lomowner = {_OWNER}"  # noqa: S608
    (count,) = conn.execute(query, (role,)).fetchone()
    for _ in range(count // LO_UNLINK_BATCH + 1):
        try:
            (unlinked,) = conn.execute(_UNLINK, (role, LO_UNLINK_BATCH)).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            return
        if unlinked < LO_UNLINK_BATCH:
            return
