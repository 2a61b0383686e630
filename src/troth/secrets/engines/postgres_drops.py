"""A postgres revocation's drop of a lease's objects in bounded transactions before `DROP OWNED
BY` (troth.secrets.engines.postgres), which drops all it drops in one transaction holding a lock
on each object and on each of their dependents, from the server's shared lock table
(`max_locks_per_transaction` x (`max_connections` + `max_prepared_transactions`) slots, 6912
by default). A lease creates what it likes in its own schema (review 70n, schemas 2) and in
any schema another lease let it create in: 8000 enum types (a transaction each) failed its
`DROP OWNED` "out of shared memory" at every retry, the lease REVOKING for good, each retry
filling the table every session of the cluster needs (review 71b, pglease 2).

`drop_objects` drops, kind by kind, bottom up (what hangs on a relation: triggers, policies,
rules, constraints, statistics; then relations, casts, operators, routines, types, collations,
conversions, text search configurations and dictionaries), newest first (an object depends on
older ones), each object owned by the role or in a schema it owns (another role's object there
would be dropped by `DROP OWNED`'s CASCADE anyway), `DROP_BATCH_LOCKS` locks to a transaction
(an object weighs one and one more per object depending on it, pg_depend; one that weighs more
than a batch goes alone: left to `DROP OWNED`, seven tables of 1001 identity columns filled
its lock table, review 71r pglease 5). One that cannot be
dropped on its own (another role's object depends on it, an inherited constraint, ...) is
left to `DROP OWNED`; one that another of the role's needs, made against that order (a newer
function taking an older table's row type), goes in another sweep over the kinds, made while
a sweep drops something and leaves something, `DROP_SWEEPS` at most (review 71r, pglease 1).
A lock that cannot be had (`lock_timeout`), a cancelled statement or an admin that may not
drop it (no superuser) stops the step: `DROP OWNED` fails alike (or does what the admin may)
and the revocation is retried. Its routines go before its large objects are unlinked: a
SECURITY DEFINER function of the lease that any role may call made large objects owned by the
lease's role while they were being unlinked (review 71j, pglease 6).

Names are read from pg_catalog and quoted with `sql.Identifier`, schema-qualified; an operator's
name (symbols, never quoted) only when it is made of operator characters."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

__all__ = ["DROP_BATCH_LOCKS", "DROP_SWEEPS", "drop_objects", "drop_owned"]

DROP_BATCH_LOCKS: Final = 1000
"""Locks (objects and their dependents) a revocation's drop of a lease's objects takes in one
transaction (`drop_objects`)."""

DROP_SWEEPS: Final = 3
"""Sweeps over the kinds a revocation's drop of a lease's objects makes at most: another
follows one that dropped something and left something (review 71r, pglease 1). Each costs a
statement per object left, so a lease's chain of objects made against the drop order deeper
than this leaves its rest to `DROP OWNED`."""

_OPERATOR: Final = re.compile(r"[-+*/<>=~!@#%^&|`?]{1,63}")
_LAST_OID: Final = 1 << 32  # above every oid

# whose: the role's own, or in a schema the role owns; and not an object that exists only as a
# part of another (an internal or extension dependency: an array type, a table's row type, a
# range's multirange and constructors), which goes with it
_R: Final = "(SELECT oid FROM pg_roles WHERE rolname = %(role)s)"
_MINE: Final = f"(SELECT oid FROM pg_namespace WHERE nspowner = {_R})"  # noqa: S608


def _weight(catalog: str, alias: str) -> str:
    return (
        f"1 + (SELECT count(*) FROM pg_depend d WHERE d.refclassid = '{catalog}'::regclass"  # noqa: S608
        f" AND d.refobjid = {alias}.oid)"
    )


def _whole(catalog: str, alias: str) -> str:
    """Not a part of another object (a partitioned table depends internally on its own key
    columns: a part of itself, review 71r, pglease 4)."""
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass"  # noqa: S608
        f" AND d.objid = {alias}.oid AND d.deptype IN ('i', 'e')"
        f" AND NOT (d.refclassid = d.classid AND d.refobjid = d.objid))"
    )


def _page(alias: str) -> str:
    return f" AND {alias}.oid::bigint < %(before)s ORDER BY {alias}.oid DESC LIMIT %(limit)s"


def _on_relation(catalog: str, alias: str, relation: str, name: str, where: str) -> str:
    """What hangs on a relation (a trigger, a policy, a rule, a constraint): its oid, weight,
    name and the relation's schema and name."""
    return (
        f"SELECT {alias}.oid, {_weight(catalog, alias)}, {alias}.{name}::text, n.nspname::text,"  # noqa: S608
        f" c.relname::text FROM {catalog} {alias} JOIN pg_class c ON c.oid = {alias}.{relation}"
        f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {where}"
        f" AND (c.relowner = {_R} OR c.relnamespace IN {_MINE})" + _page(alias)
    )


def _in_schema(
    catalog: str, alias: str, name: str, owner: str, namespace: str, where: str = "TRUE"
) -> str:
    """An object of a schema: its oid, weight, schema and name."""
    return (
        f"SELECT {alias}.oid, {_weight(catalog, alias)}, n.nspname::text, {alias}.{name}::text"  # noqa: S608
        f" FROM {catalog} {alias} JOIN pg_namespace n ON n.oid = {alias}.{namespace}"
        f" WHERE ({alias}.{owner} = {_R} OR {alias}.{namespace} IN {_MINE}) AND {where}"
        f" AND {_whole(catalog, alias)}" + _page(alias)
    )


_RELKINDS: Final = {
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "i": "INDEX",
    "I": "INDEX",
    "r": "TABLE",
    "p": "TABLE",
    "f": "FOREIGN TABLE",
    "S": "SEQUENCE",
}

_RELATIONS: Final = (
    "SELECT c.oid, " + _weight("pg_class", "c") + ", n.nspname::text, c.relname::text,"  # noqa: S608
    " c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE (c.relowner = " + _R + " OR c.relnamespace IN " + _MINE + ")"
    " AND c.relkind IN ('v', 'm', 'i', 'I', 'r', 'p', 'f', 'S')"
    # an index backing a constraint goes with it, an attached partition's with its parent's
    " AND NOT (c.relkind IN ('i', 'I') AND (c.relispartition"
    " OR EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)))"
    " AND " + _whole("pg_class", "c") + _page("c")
)

_ARGS: Final = (
    " FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY x(t, i) JOIN pg_type ty ON ty.oid = x.t"
)
_ROUTINES: Final = (
    "SELECT p.oid, " + _weight("pg_proc", "p") + ", n.nspname::text, p.proname::text,"  # noqa: S608
    # its argument types' schemas and names, in order
    " ARRAY(SELECT tn.nspname::text" + _ARGS + " JOIN pg_namespace tn ON tn.oid = ty.typnamespace"
    " ORDER BY x.i), ARRAY(SELECT ty.typname::text" + _ARGS + " ORDER BY x.i)"
    " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    " WHERE (p.proowner = " + _R + " OR p.pronamespace IN " + _MINE + ")"
    " AND " + _whole("pg_proc", "p") + _page("p")
)

_OPERATORS: Final = (
    "SELECT o.oid, " + _weight("pg_operator", "o") + ", n.nspname::text, o.oprname::text,"  # noqa: S608
    " ln.nspname::text, l.typname::text, rn.nspname::text, r.typname::text"
    " FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace"
    " LEFT JOIN pg_type l ON l.oid = o.oprleft"
    " LEFT JOIN pg_namespace ln ON ln.oid = l.typnamespace"
    " JOIN pg_type r ON r.oid = o.oprright JOIN pg_namespace rn ON rn.oid = r.typnamespace"
    " WHERE (o.oprowner = " + _R + " OR o.oprnamespace IN " + _MINE + ")"
    " AND " + _whole("pg_operator", "o") + _page("o")
)


_CASTS: Final = (  # of a type the role owns or its schemas hold, to or from it
    "SELECT k.oid, " + _weight("pg_cast", "k") + ", sn.nspname::text, s.typname::text,"  # noqa: S608
    " tn.nspname::text, t.typname::text FROM pg_cast k JOIN pg_type s ON s.oid = k.castsource"
    " JOIN pg_namespace sn ON sn.oid = s.typnamespace JOIN pg_type t ON t.oid = k.casttarget"
    " JOIN pg_namespace tn ON tn.oid = t.typnamespace"
    f" WHERE (s.typowner = {_R} OR t.typowner = {_R}"
    f" OR s.typnamespace IN {_MINE} OR t.typnamespace IN {_MINE})"
    " AND " + _whole("pg_cast", "k") + _page("k")
)


def _ident(*parts: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*parts)


def _sql(text: str) -> Any:
    from psycopg import sql

    return sql.SQL(text)


def _hanging(verb: str) -> Callable[[tuple[Any, ...]], Any]:
    """`verb` name ON schema.relation (a trigger, a policy, a rule)."""

    def statement(row: tuple[Any, ...]) -> Any:
        name, schema, relation = row
        return _sql(verb + " IF EXISTS {} ON {}").format(_ident(name), _ident(schema, relation))

    return statement


def _constraint(alter: str) -> Callable[[tuple[Any, ...]], Any]:
    def statement(row: tuple[Any, ...]) -> Any:
        name, schema, relation = row
        return _sql(alter + " {} DROP CONSTRAINT IF EXISTS {}").format(
            _ident(schema, relation), _ident(name)
        )

    return statement


def _named(verb: str) -> Callable[[tuple[Any, ...]], Any]:
    def statement(row: tuple[Any, ...]) -> Any:
        schema, name = row
        return _sql(verb + " IF EXISTS {}").format(_ident(schema, name))

    return statement


def _relation(row: tuple[Any, ...]) -> Any:
    schema, name, relkind = row
    return _sql(f"DROP {_RELKINDS[relkind]} IF EXISTS {{}}").format(_ident(schema, name))


def _cast(row: tuple[Any, ...]) -> Any:
    source_schema, source, target_schema, target = row
    return _sql("DROP CAST IF EXISTS ({} AS {})").format(
        _ident(source_schema, source), _ident(target_schema, target)
    )


def _routine(row: tuple[Any, ...]) -> Any:
    from psycopg import sql

    schema, name, arg_schemas, arg_names = row
    args = sql.SQL(", ").join(_ident(s, t) for s, t in zip(arg_schemas, arg_names, strict=True))
    return sql.SQL("DROP ROUTINE IF EXISTS {}({})").format(_ident(schema, name), args)


def _operator(row: tuple[Any, ...]) -> Any:
    schema, name, left_schema, left, right_schema, right = row
    if not _OPERATOR.fullmatch(name):
        return None  # no operator of PostgreSQL's: left to DROP OWNED
    left_type = _sql("NONE") if left is None else _ident(left_schema, left)
    return _sql("DROP OPERATOR IF EXISTS {}.{} ({}, {})").format(
        _ident(schema), _sql(name), left_type, _ident(right_schema, right)
    )


_OWN_TRIGGER: Final = (
    "NOT g.tgisinternal AND g.tgparentid = 0"  # a partition's goes with its parent's
)
_TYPTYPES: Final = "t.typtype IN ('b', 'c', 'd', 'e', 'r', 'p')"

_KINDS: Final[tuple[tuple[str, Callable[[tuple[Any, ...]], Any]], ...]] = (
    (
        _on_relation("pg_trigger", "g", "tgrelid", "tgname", _OWN_TRIGGER),
        _hanging("DROP TRIGGER"),
    ),
    (_on_relation("pg_policy", "o", "polrelid", "polname", "TRUE"), _hanging("DROP POLICY")),
    (
        _on_relation("pg_rewrite", "w", "ev_class", "rulename", "w.rulename <> '_RETURN'"),
        _hanging("DROP RULE"),
    ),
    (
        _on_relation("pg_constraint", "k", "conrelid", "conname", "k.coninhcount = 0"),
        _constraint("ALTER TABLE"),
    ),
    (
        "SELECT k.oid, " + _weight("pg_constraint", "k") + ", k.conname::text, n.nspname::text,"  # noqa: S608
        " t.typname::text FROM pg_constraint k JOIN pg_type t ON t.oid = k.contypid"
        " JOIN pg_namespace n ON n.oid = t.typnamespace"
        " WHERE (t.typowner = " + _R + " OR t.typnamespace IN " + _MINE + ")" + _page("k"),
        _constraint("ALTER DOMAIN"),
    ),
    (
        _in_schema("pg_statistic_ext", "s", "stxname", "stxowner", "stxnamespace"),
        _named("DROP STATISTICS"),
    ),
    (_RELATIONS, _relation),
    (_CASTS, _cast),  # a cast, an operator, an aggregate need their functions
    (_OPERATORS, _operator),
    (_ROUTINES, _routine),
    (  # enums, domains, ranges, composite, base and shell types (not a table's row type)
        _in_schema("pg_type", "t", "typname", "typowner", "typnamespace", _TYPTYPES),
        _named("DROP TYPE"),
    ),
    (
        _in_schema("pg_collation", "l", "collname", "collowner", "collnamespace"),
        _named("DROP COLLATION"),
    ),
    (
        _in_schema("pg_conversion", "v", "conname", "conowner", "connamespace"),
        _named("DROP CONVERSION"),
    ),
    (
        _in_schema("pg_ts_config", "f", "cfgname", "cfgowner", "cfgnamespace"),
        _named("DROP TEXT SEARCH CONFIGURATION"),
    ),
    (
        _in_schema("pg_ts_dict", "y", "dictname", "dictowner", "dictnamespace"),
        _named("DROP TEXT SEARCH DICTIONARY"),
    ),
)


def drop_objects(conn: Any, role: str) -> None:
    """Drop the objects `role` owns or its schemas hold in the connection's database, kind by
    kind, `DROP_BATCH_LOCKS` locks to a transaction, before `DROP OWNED BY role` (review 71b,
    pglease 2). Stops at a lock it cannot have, a cancelled statement or an object the admin
    may not drop: DROP OWNED then fails alike (or does what the admin may), retried. A sweep
    that dropped something and left something (another of the role's objects needed it, made
    against the drop order: a newer function taking an older table's row type) is followed
    by another, at most `DROP_SWEEPS` in all (review 71r, pglease 1)."""
    for _sweep in range(DROP_SWEEPS):
        tally = [0, 0]  # dropped, left
        for query, statement in _KINDS:
            if not _drop_kind(conn, role, query, statement, tally):
                return
        if not all(tally):
            return


def _drop_kind(
    conn: Any, role: str, query: str, statement: Callable[[tuple[Any, ...]], Any], tally: list[int]
) -> bool:
    """Drop one kind of `role`'s objects, a batch to a transaction, counting in `tally` those
    dropped and those left; False: stop (`_run`)."""
    before = _LAST_OID
    while True:
        rows = conn.execute(
            query, {"role": role, "before": before, "limit": DROP_BATCH_LOCKS}
        ).fetchall()
        if not rows:
            return True
        batch: list[Any] = []
        weight = 0
        for oid, cost, *names in rows:
            # one weighing more than a batch goes alone (DROP OWNED would take it with all
            # the rest: review 71r, pglease 5)
            if weight and weight + cost > DROP_BATCH_LOCKS:
                break
            weight, before = weight + cost, oid
            dropped = statement(tuple(names))
            if dropped is not None:
                batch.append(dropped)
        done = _run(conn, batch)
        if done is None:
            return False
        tally[0] += done
        tally[1] += len(batch) - done


def _run(conn: Any, statements: list[Any]) -> int | None:
    """Run `statements` in one transaction; when that fails, each in a transaction of its own,
    one that fails left (to DROP OWNED, or the next sweep); how many ran. None: a lock could not
    be had, a statement was cancelled, or the admin may not drop what the role owns (no
    superuser, no member of it: each of thousands would fail alike) — stop."""
    import psycopg
    from psycopg import sql

    stop = (
        psycopg.errors.LockNotAvailable,
        psycopg.errors.QueryCanceled,
        psycopg.errors.InsufficientPrivilege,
    )
    if not statements:
        return 0
    ran = 0
    for group in [statements] if len(statements) == 1 else [statements, *([s] for s in statements)]:
        try:
            with conn.transaction():
                conn.execute(sql.SQL("; ").join(group))
        except stop:
            return None
        except psycopg.Error:
            continue
        if group is statements:
            return len(statements)
        ran += 1
    return ran


def drop_owned(conn: Any, role: str, prefix: str) -> None:
    """`DROP OWNED BY role` in the connection's database. When another role's object depends
    on one of `role`'s, and the roles of this broker that are being revoked (NOLOGIN: the
    first step of a revocation) are among them, their objects are dropped together: two
    leases each with a view on the other's table would otherwise keep both revocations
    failing for good. When an object of a role not being revoked still depends on one of
    `role`'s (another agent's live lease made a column default on the revoked lease's
    function, which PUBLIC may execute), `role`'s objects are dropped with CASCADE: what
    depends on a lease's objects was made after the lease and ends with it, so no live role
    can keep a revocation failing (review 22, finding 3)."""
    import psycopg
    from psycopg import sql

    drop = sql.SQL("DROP OWNED BY {}")
    try:
        conn.execute(drop.format(sql.Identifier(role)))
        return
    except psycopg.errors.DependentObjectsStillExist:
        pass
    dying = conn.execute(
        "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s) AND NOT rolcanlogin "
        "AND rolname <> %s ORDER BY rolname",
        (prefix, role),
    ).fetchall()
    if dying:
        roles = [role, *(name for (name,) in dying)]
        try:
            conn.execute(drop.format(sql.SQL(", ").join(sql.Identifier(n) for n in roles)))
            return
        except psycopg.errors.DependentObjectsStillExist:
            pass
    conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
