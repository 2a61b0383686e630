"""The postgres engine's copy of its templates' privileges to a lease's role.

A lease's role is never a member of its templates: on PostgreSQL 15 and older a member may
always `SET ROLE` to a role it belongs to and `ALTER ... OWNER TO` it (PostgreSQL 16 added
`GRANT ... WITH SET FALSE`), so a lease could hand the template a SECURITY DEFINER function
that outlives the lease with the template's rights (tests/test_attacks_review8.py). The lease's
role is instead granted, one by one and never WITH GRANT OPTION, the privileges the templates
hold as ACL entries (`aclexplode` over each catalog that has them), their own and those of
every role they inherit from (`pg_has_role(template, role, 'USAGE')`), then read back: a
privilege the admin could not grant (PostgreSQL only warns) fails the call.

A template is refused (CONFIG_INVALID) when a lease could not hold all it may do through ACL
entries (docs/secrets.md, "postgres"): a role attribute (SUPERUSER, CREATEDB, CREATEROLE,
REPLICATION, BYPASSRLS); the privileges of a built-in role (`pg_read_all_data`,
`pg_monitor`, ..., the bootstrap superuser: not ACL entries) or a membership it does not
inherit (its rights are reached by SET ROLE only); an ADMIN OPTION; owning an object in any
database (an owner's rights are not grantable) or being named in a row-level security policy
(policies apply by membership), for the template or any role it inherits from. What a
lease could make itself is not the template's: temporary tables and the objects of lease roles
are left out of both checks (review 56b, postgres 1 and 2: any lease may name any role in a
policy on its table, or grant it rights on what it owns). A template is refused as well when
it holds a privilege that would let a lease plant code or objects in other roles' sessions
(`refuse_planting`: TRIGGER, REFERENCES, CREATE on a database or on a schema no lease role
owns, ALTER SYSTEM on a parameter; review 70c, leases 1-3 and 5; review 70n, schemas 1).

Identifiers go through `sql.Identifier`, privilege keywords come from a closed list.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.errors import SecretError, SecretFailure

__all__ = [
    "Privilege",
    "apply",
    "check_templates",
    "exactly",
    "held",
    "privileges",
    "refuse_planting",
    "refuse_public_create",
]

_FIRST_NORMAL_OID: Final = 16384  # FirstNormalObjectId: below it, roles made by initdb
_PRIVILEGES: Final = frozenset(
    {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "TRUNCATE",
        "REFERENCES",
        "TRIGGER",
        "MAINTAIN",
        "EXECUTE",
        "USAGE",
        "CREATE",
        "CONNECT",
        "TEMPORARY",
        "SET",
        "ALTER SYSTEM",
    }
)
# the GRANT ... ON <keyword> of each kind of object
_ON: Final = {
    "database": "DATABASE",
    "tablespace": "TABLESPACE",
    "parameter": "PARAMETER",
    "schema": "SCHEMA",
    "table": "TABLE",
    "sequence": "SEQUENCE",
    "column": "TABLE",
    "routine": "ROUTINE",
    "type": "TYPE",
    "language": "LANGUAGE",
    "large object": "LARGE OBJECT",
    "foreign data wrapper": "FOREIGN DATA WRAPPER",
    "foreign server": "FOREIGN SERVER",
}
_QUALIFIED: Final = frozenset({"table", "sequence", "column", "routine", "type"})
_ATTRIBUTES: Final = ("rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls")

# One row per ACL entry: kind, schema, name, column, argument types (schemas, names), privilege,
# the object's owner, the grantee; the shared catalogs (read once) and each database's own.
_SHARED: Final = (
    "SELECT 'database', NULL, d.datname::text, NULL, NULL::text[], NULL::text[], "
    "a.privilege_type, d.datdba, a.grantee FROM pg_database d, aclexplode(d.datacl) a",
    "SELECT 'tablespace', NULL, t.spcname::text, NULL, NULL::text[], NULL::text[], "
    "a.privilege_type, t.spcowner, a.grantee FROM pg_tablespace t, aclexplode(t.spcacl) a",
)
_PARAMETERS: Final = (  # PostgreSQL 15 and later; the owner is the bootstrap superuser
    "SELECT 'parameter', NULL, p.parname, NULL, NULL::text[], NULL::text[], "
    "a.privilege_type, 10::oid, a.grantee FROM pg_parameter_acl p, aclexplode(p.paracl) a"
)
_LOCAL: Final = (
    "SELECT 'schema', NULL, n.nspname::text, NULL, NULL::text[], NULL::text[], "
    "a.privilege_type, n.nspowner, a.grantee FROM pg_namespace n, aclexplode(n.nspacl) a",
    "SELECT CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END, n.nspname::text, "
    "c.relname::text, NULL, NULL::text[], NULL::text[], a.privilege_type, c.relowner, "
    "a.grantee FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, "
    "aclexplode(c.relacl) a WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S') "
    "AND c.relpersistence <> 't'",
    "SELECT 'column', n.nspname::text, c.relname::text, t.attname::text, NULL::text[], "
    "NULL::text[], a.privilege_type, c.relowner, a.grantee FROM pg_attribute t "
    "JOIN pg_class c ON c.oid = t.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace, "
    "aclexplode(t.attacl) a WHERE t.attnum > 0 AND NOT t.attisdropped "
    "AND c.relkind IN ('r', 'v', 'm', 'f', 'p') AND c.relpersistence <> 't'",
    "SELECT 'routine', n.nspname::text, p.proname::text, NULL, "
    "ARRAY(SELECT tn.nspname::text FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY x(t, i) "
    "JOIN pg_type ty ON ty.oid = x.t JOIN pg_namespace tn ON tn.oid = ty.typnamespace "
    "ORDER BY x.i), "
    "ARRAY(SELECT ty.typname::text FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY x(t, i) "
    "JOIN pg_type ty ON ty.oid = x.t ORDER BY x.i), "
    "a.privilege_type, p.proowner, a.grantee FROM pg_proc p "
    "JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(p.proacl) a",
    "SELECT 'type', n.nspname::text, t.typname::text, NULL, NULL::text[], NULL::text[], "
    "a.privilege_type, t.typowner, a.grantee FROM pg_type t "
    "JOIN pg_namespace n ON n.oid = t.typnamespace, aclexplode(t.typacl) a",
    "SELECT 'language', NULL, l.lanname::text, NULL, NULL::text[], NULL::text[], "
    "a.privilege_type, l.lanowner, a.grantee FROM pg_language l, aclexplode(l.lanacl) a",
    "SELECT 'large object', NULL, l.oid::text, NULL, NULL::text[], NULL::text[], "
    "a.privilege_type, l.lomowner, a.grantee "
    "FROM pg_largeobject_metadata l, aclexplode(l.lomacl) a",
    "SELECT 'foreign data wrapper', NULL, w.fdwname::text, NULL, NULL::text[], NULL::text[], "
    "a.privilege_type, w.fdwowner, a.grantee FROM pg_foreign_data_wrapper w, "
    "aclexplode(w.fdwacl) a",
    "SELECT 'foreign server', NULL, s.srvname::text, NULL, NULL::text[], NULL::text[], "
    "a.privilege_type, s.srvowner, a.grantee FROM pg_foreign_server s, aclexplode(s.srvacl) a",
)
_WHERE: Final = (
    ") AS e(kind, nsp, name, col, argn, argt, privilege, owner, grantee) "
    "WHERE grantee <> owner AND grantee IN (SELECT oid FROM pg_roles WHERE rolname = ANY(%s)) "
    "AND owner NOT IN (SELECT oid FROM pg_roles WHERE rolname = %s OR rolname ~ %s)"
)
# The roles named in a row-level security policy on a table of the connection's database that
# is neither temporary nor a lease's (`check_templates`)
_LASTING_POLICIES: Final = (
    "SELECT r.rolname FROM pg_shdepend s JOIN pg_roles r ON r.oid = s.refobjid "
    "JOIN pg_policy p ON p.oid = s.objid JOIN pg_class c ON c.oid = p.polrelid "
    "JOIN pg_roles o ON o.oid = c.relowner "
    "WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND s.classid = 'pg_policy'::regclass AND s.deptype = 'r' "
    "AND s.refclassid = 'pg_authid'::regclass AND r.rolname = ANY(%s) "
    "AND c.relpersistence <> 't' AND o.rolname !~ %s ORDER BY 1 LIMIT 1"
)


@dataclass(frozen=True, order=True, slots=True)
class Privilege:
    """One privilege on one object, as `GRANT <privilege> ON <kind> <object>` names it."""

    kind: str
    schema: str | None
    name: str
    column: str | None
    args: tuple[tuple[str, str], ...]  # a routine's argument types, (schema, name) each
    privilege: str

    def describe(self) -> str:
        name = ".".join(p for p in (self.schema, self.name, self.column) if p is not None)
        return f"{self.privilege} on {self.kind} {name}"


def _refuse(template: str, why: str) -> SecretError:
    return SecretError(
        SecretFailure.CONFIG_INVALID,
        f"template {template} cannot be copied to a lease: {why} (docs/secrets.md, postgres)",
    )


def check_templates(
    connect: Callable[[str], AbstractContextManager[Any]],
    dbname: str,
    templates: Iterable[str],
    *,
    leases: str,
) -> list[str]:
    """The roles whose privileges the lease's role gets: the templates and every role they
    inherit from; SecretError CONFIG_INVALID for a template a lease cannot copy faithfully
    (ENGINE_FAILED for one that does not exist). A policy naming one on a temporary table, or
    on a table of a lease role (`leases`: a regular expression of their names), is not the
    template's to copy:
    any lease may make one (review 56b, postgres 1). `connect(database)` is the admin's session
    to a database: `dbname`, then each other one where a policy names one of the roles (a
    policy is looked at in its own database's catalogs)."""
    with connect(dbname) as conn:
        sources, databases = _sources(conn, sorted(set(templates)))
        roles = sorted(sources)
        if dbname in databases:
            _check_policies(conn, sources, dbname, leases)
    for database in databases:
        if database != dbname:
            with connect(database) as there:
                _check_policies(there, sources, database, leases)
    return roles


def _sources(conn: Any, names: list[str]) -> tuple[dict[str, str], list[str]]:
    """`check_templates` in one database: each role reached from the templates with the
    template it is reached from, and the databases where a policy names one of them."""
    found = {
        row[0]: row[1:]
        for row in conn.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = ANY(%s)",
            (names,),
        ).fetchall()
    }
    for name in names:
        if name not in found:
            raise SecretError(SecretFailure.ENGINE_FAILED, f"template {name} does not exist")
        attributes = [a[3:].upper() for a, on in zip(_ATTRIBUTES, found[name], strict=True) if on]
        if attributes:
            raise _refuse(name, f"it has {', '.join(attributes)} (a lease gets no role attribute)")
    rows = conn.execute(
        "SELECT t.rolname, r.rolname, r.oid, pg_has_role(t.oid, r.oid, 'USAGE') "
        "FROM pg_roles t JOIN pg_roles r ON pg_has_role(t.oid, r.oid, 'MEMBER') "
        "WHERE t.rolname = ANY(%s) ORDER BY t.rolname, r.rolname",
        (names,),
    ).fetchall()
    sources: dict[str, str] = {}  # role -> the template it is reached from
    for template, role, oid, inherits in rows:
        if not inherits:
            raise _refuse(template, f"it reaches {role} by SET ROLE only (NOINHERIT)")
        if oid < _FIRST_NORMAL_OID:
            raise _refuse(template, f"it has the rights of the built-in role {role}")
        sources.setdefault(role, template)
    roles = sorted(sources)
    admin = conn.execute(
        "SELECT m.rolname, g.rolname FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.member "
        "JOIN pg_roles g ON g.oid = a.roleid WHERE a.admin_option AND m.rolname = ANY(%s) "
        "ORDER BY 1, 2 LIMIT 1",
        (roles,),
    ).fetchone()
    if admin is not None:
        raise _refuse(sources[admin[0]], f"{admin[0]} holds ADMIN OPTION on {admin[1]}")
    owns = conn.execute(
        "SELECT r.rolname, s.classid::regclass::text, d.datname "
        "FROM pg_shdepend s JOIN pg_roles r ON r.oid = s.refobjid "
        "LEFT JOIN pg_database d ON d.oid = s.dbid "
        "WHERE s.refclassid = 'pg_authid'::regclass AND s.deptype = 'o' "
        "AND r.rolname = ANY(%s) ORDER BY 1, 2 LIMIT 1",
        (roles,),
    ).fetchone()
    if owns is not None:
        role, catalog, database = owns
        where = f"{catalog} in {'the cluster' if database is None else 'database ' + database}"
        why = f"{role} owns an object ({where}; an owner's rights cannot be granted)"
        raise _refuse(sources[role], why)
    databases = conn.execute(
        "SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_roles r ON r.oid = s.refobjid "
        "JOIN pg_database d ON d.oid = s.dbid WHERE s.refclassid = 'pg_authid'::regclass "
        "AND s.deptype = 'r' AND r.rolname = ANY(%s) ORDER BY 1",
        (roles,),
    ).fetchall()
    return sources, [database for (database,) in databases]


def _check_policies(conn: Any, sources: dict[str, str], database: str, leases: str) -> None:
    named = conn.execute(_LASTING_POLICIES, (sorted(sources), leases)).fetchone()
    if named is not None:
        role = named[0]
        where = f"pg_policy in database {database}"
        raise _refuse(sources[role], f"{role} is named in a row-level security policy ({where})")


# (kind, privilege): what lets a lease plant code, or objects, in other roles' sessions; never
# copied (`refuse_planting`, review 70c, leases 1-3 and 5; review 70n, schemas 1)
_PLANTING: Final = {
    ("table", "TRIGGER"): "its trigger there would run its code with the rights of every "
    "session writing to it",
    ("table", "REFERENCES"): "its foreign key would refuse the owner's deletes and fire its "
    "triggers in their transactions",
    ("column", "REFERENCES"): "its foreign key would refuse the owner's deletes and fire its "
    "triggers in their transactions",
    ("database", "CREATE"): "a schema it named after another role would be searched first by "
    "that role's sessions",
    ("schema", "CREATE"): "its function there would stand in for one another role's session "
    "calls unqualified, run with that session's rights (a lease creates in its own schema)",
    ("parameter", "ALTER SYSTEM"): "its setting, written to postgresql.auto.conf, would "
    "outlive it and apply to every session of the cluster",
}
# whether a role holds (by ACL entry, its own or inherited) one privilege of `_PLANTING`
_HOLDS: Final = {
    "table": "SELECT has_table_privilege(%s, (SELECT c.oid FROM pg_class c JOIN pg_namespace n "
    "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s), %s)",
    "column": "SELECT has_column_privilege(%s, (SELECT c.oid FROM pg_class c JOIN pg_namespace "
    "n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s), %s, %s)",
    "database": "SELECT has_database_privilege(%s, %s, %s)",
    "schema": "SELECT has_schema_privilege(%s, %s, %s)",
    "parameter": "SELECT has_parameter_privilege(%s, %s, %s)",
}


def refuse_planting(conn: Any, templates: Iterable[str], wanted: set[Privilege]) -> None:
    """SecretError CONFIG_INVALID when `wanted` (the templates' privileges, but on lease roles'
    objects) holds one that lets a lease plant code or objects in other roles' sessions
    (`_PLANTING`): TRIGGER on a table (its trigger function, SECURITY INVOKER, ran with the
    rights of each session writing there, a superuser's too, and `DROP OWNED` altering that
    table ended every other lease's session on it at its revocation: review 69w, wave4b 2),
    REFERENCES (a foreign key's triggers on the referenced table run in the owner's
    transactions: ON DELETE CASCADE fires the lease's triggers there, NO ACTION refuses its
    deletes), CREATE on a database (a schema named after another role comes first in that
    role's default search path, `"$user"`), CREATE on a schema no lease role owns (its
    `public.lower(varchar)` beat `pg_catalog.lower(text)` in the sessions of every role that
    searches `public`, a superuser's too: review 70n, schemas 1; a lease creates in the schema
    of its own the issue makes), ALTER SYSTEM on a parameter (a setting that outlives the
    lease, for the whole cluster: review 70c, leases 5). Named with the first template
    holding the first (by `Privilege` order) and up to three of them."""
    found = sorted(item for item in wanted if (item.kind, item.privilege) in _PLANTING)
    if not found:
        return
    item = found[0]
    args: tuple[Any, ...]
    if item.kind in ("database", "parameter", "schema"):
        args = (item.name, item.privilege)
    elif item.kind == "column":
        args = (item.schema, item.name, item.column, item.privilege)
    else:
        args = (item.schema, item.name, item.privilege)
    names = sorted(set(templates))
    holder = next(
        (t for t in names if conn.execute(_HOLDS[item.kind], (t, *args)).fetchone()[0]),
        ", ".join(names),
    )
    listed = ", ".join(each.describe() for each in found[:3]) + (", ..." if found[3:] else "")
    why = _PLANTING[(item.kind, item.privilege)]
    raise _refuse(holder, f"it holds {listed} (a lease given {item.privilege}: {why})")


# A schema of the connection's database PUBLIC may create in, but a lease role's (a lease may
# grant that on its own schema: it is searched by no other role)
_PUBLIC_SCHEMA: Final = (
    "SELECT n.nspname::text FROM pg_namespace n, aclexplode(n.nspacl) a "
    "WHERE a.grantee = 0 AND a.privilege_type = 'CREATE' "
    "AND n.nspowner NOT IN (SELECT oid FROM pg_roles WHERE rolname ~ %s) ORDER BY 1 LIMIT 1"
)


def refuse_public_create(conn: Any, leases: str) -> None:
    """SecretError CONFIG_INVALID when PUBLIC may create in the connection's database, or in
    one of its schemas no lease role (`leases`: their names' regular expression) owns: no
    template's grant, so `refuse_planting` never saw it, but every lease's role holds it, and
    a lease's `public.lower(varchar)` (or its schema named after another role) ran in other
    roles' sessions with their rights (review 70n, schemas 3: PostgreSQL 14's default on
    `public`, kept by a cluster upgraded from it)."""
    dbname, anyone = conn.execute(
        "SELECT current_database()::text, "
        "has_database_privilege('public', current_database(), 'CREATE')"
    ).fetchone()
    schema = conn.execute(_PUBLIC_SCHEMA, (leases,)).fetchone()
    if not anyone and schema is None:
        return
    kind, name = ("DATABASE", dbname) if anyone else ("SCHEMA", schema[0])
    raise SecretError(
        SecretFailure.CONFIG_INVALID,
        f"PUBLIC may create in {kind.lower()} {name} (database {dbname}): every lease could "
        f"plant code in other roles' sessions; REVOKE CREATE ON {kind} {name} FROM PUBLIC "
        "(docs/secrets.md, postgres)",
    )


def privileges(
    conn: Any, roles: list[str], lease: str, *, shared: bool, leases: str | None = None
) -> set[Privilege]:
    """The privileges `roles` hold by ACL entries, on the shared catalogs (`shared`) or on
    those of the connection's database; an owner's entries, the lease's own objects, those of
    every lease role (`leases`: a regular expression of their names; by default the lease's
    alone) and temporary tables are left out (the
    owner's rights come with owning, the lease's objects die with it, and any lease may grant
    a template, or another lease, rights on what it makes: review 56b, postgres 2)."""
    from psycopg import sql

    if shared:
        parts = [*_SHARED, *([_PARAMETERS] if conn.info.server_version >= 150000 else [])]
    else:
        parts = list(_LOCAL)
    query = sql.SQL("SELECT kind, nsp, name, col, argn, argt, privilege FROM ({}{}").format(
        sql.SQL(" UNION ALL ").join(sql.SQL(part) for part in parts),
        sql.SQL(_WHERE),
    )
    with conn.transaction():  # JIT compiling this query costs a second; it runs in ms without
        conn.execute("SET LOCAL jit = off")
        rows = conn.execute(query, (roles, lease, leases or exactly(lease))).fetchall()
    found: set[Privilege] = set()
    for kind, schema, name, column, arg_schemas, arg_names, privilege in rows:
        args = tuple(zip(arg_schemas or (), arg_names or (), strict=True))
        item = Privilege(kind, schema, name, column, args, privilege)
        _check(item)
        found.add(item)
    return found


def _check(item: Privilege) -> None:
    if item.privilege not in _PRIVILEGES or item.kind not in _ON:
        raise SecretError(
            SecretFailure.CONFIG_INVALID,
            f"{item.describe()} is not a privilege a lease can be granted",
        )


def exactly(name: str) -> str:
    """A regular expression (PostgreSQL's) matching the role name `name` (an identifier:
    `$` is its only character special there) and nothing else."""
    return "^" + name.replace("$", "\\$") + "$"


def held(conn: Any, lease: str, *, shared: bool, leases: str | None = None) -> set[Privilege]:
    """The privileges the lease's own role holds by ACL entries (but on its own objects, and
    with `leases`, on those of every lease role)."""
    return privileges(conn, [lease], lease, shared=shared, leases=leases)


def apply(conn: Any, verb: str, lease: str, changes: set[Privilege]) -> None:
    """GRANT (never WITH GRANT OPTION) or REVOKE `changes` to or from `lease`, one statement
    per kind and privilege (per table and privilege for columns), in one transaction."""
    from psycopg import sql

    groups: dict[tuple[Any, ...], list[Privilege]] = {}
    for item in sorted(changes):
        _check(item)  # a keyword from the closed list only
        key: tuple[Any, ...] = (item.kind, item.privilege)
        if item.kind == "column":
            key += (item.schema, item.name)
        groups.setdefault(key, []).append(item)
    head = sql.SQL("GRANT" if verb == "GRANT" else "REVOKE")
    to = sql.SQL("TO" if verb == "GRANT" else "FROM")
    statements: list[sql.Composable] = []
    for (kind, privilege, *_table), items in groups.items():
        what: sql.Composable = sql.SQL(privilege)
        if kind == "column":
            columns = sql.SQL(", ").join(sql.Identifier(i.column or "") for i in items)
            what = sql.SQL("{} ({})").format(what, columns)
            objects = _object(items[0])
        else:
            objects = sql.SQL(", ").join(_object(i) for i in items)
        statements.append(
            sql.SQL("{} {} ON {} {} {} {}").format(
                head, what, sql.SQL(_ON[kind]), objects, to, sql.Identifier(lease)
            )
        )
    _run(conn, statements)


GRANT_RETRY_WAIT: Final = 0.005
"""Seconds: the most a retry of a GRANT's transaction waits before its first try again (`_run`;
the n-th waits up to n times it)."""


def _run(conn: Any, statements: list[Any]) -> None:
    """Run `statements` in one transaction, again when PostgreSQL failed it as concurrently
    updated (XX000: it updates an object's ACL row unlocked, so two brokers' GRANTs on one table
    at once failed one; review 60z, postgres 1), at most POSTGRES_GRANT_TRIES times. No lock
    serialises them: an advisory lock is open to every role that may connect, and a lease's
    holder that kept troth's failed every issue and revocation in its database (review 60l,
    postgres 1)."""
    import psycopg

    for tries_left in range(limits.POSTGRES_GRANT_TRIES - 1, -1, -1):
        try:
            with conn.transaction():
                for statement in statements:
                    conn.execute(statement)
            return
        except psycopg.errors.InternalError_:  # (the transaction rolled back: all or none)
            if not tries_left:
                raise
            # apart by a random wait growing with each try: two brokers retrying in step
            # collided again (tuple concurrently updated at every try)
            time.sleep(
                random.uniform(0, GRANT_RETRY_WAIT) * (limits.POSTGRES_GRANT_TRIES - tries_left)
            )


def _object(item: Privilege) -> Any:
    from psycopg import sql

    if item.kind == "large object":
        return sql.Literal(int(item.name))
    if item.kind == "parameter":  # a custom parameter's name has a dot: `prefix.name`
        return sql.Identifier(*item.name.split("."))
    if item.kind not in _QUALIFIED:
        return sql.Identifier(item.name)
    name = sql.Identifier(item.schema or "", item.name)
    if item.kind != "routine":
        return name
    types = sql.SQL(", ").join(sql.Identifier(schema, type_) for schema, type_ in item.args)
    return sql.SQL("{}({})").format(name, types)
