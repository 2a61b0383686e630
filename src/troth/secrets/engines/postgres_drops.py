"""A postgres revocation's drop of a lease's objects in bounded transactions before `DROP OWNED
BY` (troth.secrets.engines.postgres), which drops all it drops in one transaction holding a lock
on each object and on each of their dependents, from the server's shared lock table
(`max_locks_per_transaction` x (`max_connections` + `max_prepared_transactions`) slots, 6912
by default). A lease creates what it likes in its own schema (review 70n, schemas 2) and in
any schema another lease let it create in: 8000 enum types (a transaction each) failed its
`DROP OWNED` "out of shared memory" at every retry, the lease REVOKING for good, each retry
filling the table every session of the cluster needs (review 71b, pglease 2).

`drop_objects` drops each object owned by the role or in a schema it owns (another role's
object there would be dropped by `DROP OWNED`'s CASCADE anyway) and, under a superuser admin,
another role's object that depends on one of those through any chain (a view over a view on
the lease's table, a column default calling its function, a foreign key to its table, a column
of its type: what the CASCADE drops, no more; review 72a, pgdrops 2 and 3, 71r pglease 3),
each before those it depends on (pg_depend: review 72a, 71r pglease 2), then kind by kind,
bottom up (columns of another's table; what hangs on a relation: triggers, policies, rules,
constraints, column defaults, statistics; then relations, casts, operators, routines, types,
collations, conversions, text search configurations and dictionaries), newest first,
`DROP_BATCH_LOCKS` locks to a transaction (an object weighs one and one more per object
depending on it, pg_depend; one that weighs more than a batch goes alone: left to `DROP
OWNED`, seven tables of 1001 identity columns filled its lock table, review 71r pglease 5).
Objects that depend on each other (a cycle: a view reading a function that returns its rows)
go last, each with CASCADE. One that cannot be dropped on its own (an inherited constraint,
...) is left to `DROP OWNED`; a round that drops something and leaves something (a dependency
the order missed) is followed by another, `DROP_SWEEPS` at most (review 71r, pglease 1).
A lock that cannot be had (`lock_timeout`), a cancelled statement or an admin that may not
drop it (no superuser) stops the step: `DROP OWNED` fails alike (or does what the admin may)
and the revocation is retried. Its routines go before its large objects are unlinked: a
SECURITY DEFINER function of the lease that any role may call made large objects owned by the
lease's role while they were being unlinked (review 71j, pglease 6).

Names are read from pg_catalog and quoted with `sql.Identifier`, schema-qualified; an operator's
name (symbols, never quoted) only when it is made of operator characters."""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DROP_BATCH_LOCKS",
    "DROP_ROUNDS",
    "DROP_ROUND_OBJECTS",
    "DROP_SWEEPS",
    "databases_of",
    "drop_objects",
    "drop_owned",
]


def databases_of(conn: Any, role: str) -> set[str]:
    """The databases where `role` owns an object or holds a privilege (pg_shdepend; those
    that take no connection, template0, cannot hold one). A lease may create a large object
    in any database PUBLIC may connect to, listed or not: DROP ROLE fails while it exists (a
    revocation runs `DROP OWNED` there too)."""
    rows = conn.execute(
        "SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid "
        "WHERE s.refclassid = 'pg_authid'::regclass AND d.datallowconn "
        "AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %s)",
        (role,),
    ).fetchall()
    return {name for (name,) in rows}


DROP_BATCH_LOCKS: Final = 1000
"""Locks (objects and their dependents) a revocation's drop of a lease's objects takes in one
transaction (`drop_objects`)."""

DROP_ROUND_OBJECTS: Final = 20000
"""Objects a round of a revocation's drop of a lease's objects reads, orders and drops at most
(`drop_objects`): a lease with more takes more rounds."""

DROP_ROUNDS: Final = 16
"""Rounds a revocation's drop of a lease's objects makes at most, each of `DROP_ROUND_OBJECTS`
(a lease's live peers may make more objects depending on its own while they are dropped):
what is left goes to `DROP OWNED`, and the revocation's retry goes on."""

DROP_SWEEPS: Final = 3
"""Rounds a revocation's drop of a lease's objects makes at most while each reads fewer than
`DROP_ROUND_OBJECTS`: another follows one that dropped something and left something (review
71r, pglease 1: a dependency the order by pg_depend does not see, 72a pgdrops 1)."""

_OPERATOR: Final = re.compile(r"[-+*/<>=~!@#%^&|`?]{1,63}")
_LAST_OID: Final = 1 << 62  # above every oid and column (`_COLUMNS`)

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


def _theirs(alias: str) -> str:
    """Another role's object that depends on the role's (`_REACH`)."""
    return f"{alias}.oid = ANY(%(theirs)s::oid[])"


def _page(alias: str) -> str:
    return f" AND {alias}.oid::bigint < %(before)s ORDER BY {alias}.oid DESC LIMIT %(limit)s"


def _on_relation(catalog: str, alias: str, relation: str, name: str, where: str) -> str:
    """What hangs on a relation (a trigger, a policy, a rule, a constraint): its oid, weight,
    name and the relation's schema and name."""
    return (
        f"SELECT {alias}.oid, {_weight(catalog, alias)}, {alias}.{name}::text, n.nspname::text,"  # noqa: S608
        f" c.relname::text FROM {catalog} {alias} JOIN pg_class c ON c.oid = {alias}.{relation}"
        f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {where}"
        f" AND (c.relowner = {_R} OR c.relnamespace IN {_MINE} OR {_theirs(alias)})" + _page(alias)
    )


def _in_schema(
    catalog: str, alias: str, name: str, owner: str, namespace: str, where: str = "TRUE"
) -> str:
    """An object of a schema: its oid, weight, schema and name."""
    return (
        f"SELECT {alias}.oid, {_weight(catalog, alias)}, n.nspname::text, {alias}.{name}::text"  # noqa: S608
        f" FROM {catalog} {alias} JOIN pg_namespace n ON n.oid = {alias}.{namespace}"
        f" WHERE ({alias}.{owner} = {_R} OR {alias}.{namespace} IN {_MINE} OR {_theirs(alias)})"
        f" AND {where}"
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
    " WHERE (c.relowner = " + _R + " OR c.relnamespace IN " + _MINE + " OR " + _theirs("c") + ")"
    " AND c.relkind IN ('v', 'm', 'i', 'I', 'r', 'p', 'f', 'S')"
    # an index backing a constraint goes with it, an attached partition's with its parent's, a
    # TOAST table's with its table (a system catalog's: review 72t, cascade 2)
    " AND c.relnamespace <> 'pg_toast'::regnamespace"
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
    " WHERE (p.proowner = " + _R + " OR p.pronamespace IN " + _MINE + " OR " + _theirs("p") + ")"
    " AND " + _whole("pg_proc", "p") + _page("p")
)

_OPERATORS: Final = (
    "SELECT o.oid, " + _weight("pg_operator", "o") + ", n.nspname::text, o.oprname::text,"  # noqa: S608
    " ln.nspname::text, l.typname::text, rn.nspname::text, r.typname::text"
    " FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace"
    " LEFT JOIN pg_type l ON l.oid = o.oprleft"
    " LEFT JOIN pg_namespace ln ON ln.oid = l.typnamespace"
    " JOIN pg_type r ON r.oid = o.oprright JOIN pg_namespace rn ON rn.oid = r.typnamespace"
    " WHERE (o.oprowner = " + _R + " OR o.oprnamespace IN " + _MINE + " OR " + _theirs("o") + ")"
    " AND " + _whole("pg_operator", "o") + _page("o")
)


_CASTS: Final = (  # of a type the role owns or its schemas hold, to or from it
    "SELECT k.oid, " + _weight("pg_cast", "k") + ", sn.nspname::text, s.typname::text,"  # noqa: S608
    " tn.nspname::text, t.typname::text FROM pg_cast k JOIN pg_type s ON s.oid = k.castsource"
    " JOIN pg_namespace sn ON sn.oid = s.typnamespace JOIN pg_type t ON t.oid = k.casttarget"
    " JOIN pg_namespace tn ON tn.oid = t.typnamespace"
    f" WHERE (s.typowner = {_R} OR t.typowner = {_R}"
    f" OR s.typnamespace IN {_MINE} OR t.typnamespace IN {_MINE} OR {_theirs('k')})"
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


def _default(row: tuple[Any, ...]) -> Any:
    """ONLY: a child's (a partition's) default of its own stays (each default is an object of
    its own, found alike when it depends on the role's: review 72n, pgorder 2)."""
    schema, relation, column = row
    return _sql("ALTER TABLE IF EXISTS ONLY {} ALTER COLUMN {} DROP DEFAULT").format(
        _ident(schema, relation), _ident(column)
    )


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

# a column of another role's table of one of the role's types (or collations) or an array of
# one (its owner's, PostgreSQL's): `DROP OWNED`'s CASCADE drops the column, not the table
# (review 72a, pgdrops 3); keyed by its table's oid and number, read when `others` (`_objects`)
_COLUMN: Final = "(c.oid::bigint << 11) + t.attnum"  # attnum <= 1600
_COLUMNS: Final = (
    f"SELECT DISTINCT {_COLUMN}, 1, n.nspname::text, c.relname::text, t.attname::text"  # noqa: S608
    " FROM pg_depend d JOIN pg_class c ON c.oid = d.objid JOIN pg_attribute t"
    " ON t.attrelid = c.oid AND t.attnum = d.objsubid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE %(others)s AND d.classid = 'pg_class'::regclass AND d.objsubid > 0"
    " AND d.deptype = 'n' AND c.relkind IN ('r', 'p', 'f') AND t.attinhcount = 0"
    f" AND NOT t.attisdropped AND NOT (c.relowner = {_R} OR c.relnamespace IN {_MINE})"
    " AND ((d.refclassid = 'pg_type'::regclass AND d.refobjid IN (SELECT oid FROM pg_type"
    f" WHERE typowner = {_R} OR typnamespace IN {_MINE})) OR (d.refclassid"
    " = 'pg_collation'::regclass AND d.refobjid IN (SELECT oid FROM pg_collation"
    f" WHERE collowner = {_R} OR collnamespace IN {_MINE})))"
    f" AND {_COLUMN} < %(before)s ORDER BY 1 DESC LIMIT %(limit)s"
)


def _column(row: tuple[Any, ...]) -> Any:
    schema, relation, column = row
    return _sql("ALTER TABLE IF EXISTS {} DROP COLUMN IF EXISTS {}").format(
        _ident(schema, relation), _ident(column)
    )


_KINDS: Final[tuple[tuple[str, str, Callable[[tuple[Any, ...]], Any]], ...]] = (
    ("pg_attribute", _COLUMNS, _column),  # no pg_depend edge: first
    (
        "pg_trigger",
        _on_relation("pg_trigger", "g", "tgrelid", "tgname", _OWN_TRIGGER),
        _hanging("DROP TRIGGER"),
    ),
    (
        "pg_policy",
        _on_relation("pg_policy", "o", "polrelid", "polname", "TRUE"),
        _hanging("DROP POLICY"),
    ),
    (
        "pg_rewrite",
        _on_relation("pg_rewrite", "w", "ev_class", "rulename", "w.rulename <> '_RETURN'"),
        _hanging("DROP RULE"),
    ),
    (
        "pg_constraint",
        _on_relation("pg_constraint", "k", "conrelid", "conname", "k.coninhcount = 0"),
        _constraint("ALTER TABLE"),
    ),
    (
        "pg_constraint",
        "SELECT k.oid, " + _weight("pg_constraint", "k") + ", k.conname::text, n.nspname::text,"  # noqa: S608
        " t.typname::text FROM pg_constraint k JOIN pg_type t ON t.oid = k.contypid"
        " JOIN pg_namespace n ON n.oid = t.typnamespace"
        " WHERE (t.typowner = "
        + _R
        + " OR t.typnamespace IN "
        + _MINE
        + " OR "
        + _theirs("k")
        + ")"
        + _page("k"),
        _constraint("ALTER DOMAIN"),
    ),
    (  # a column's default first: two tables each taking the other's sequence's next value
        # hold each other (review 72a, pgdrops 1)
        "pg_attrdef",
        "SELECT a.oid, " + _weight("pg_attrdef", "a") + ", n.nspname::text, c.relname::text,"  # noqa: S608
        " t.attname::text FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute t"
        " ON t.attrelid = a.adrelid AND t.attnum = a.adnum WHERE t.attgenerated = ''"
        " AND (c.relowner = "
        + _R
        + " OR c.relnamespace IN "
        + _MINE
        + " OR "
        + _theirs("a")
        + ")"
        + _page("a"),
        _default,
    ),
    (
        "pg_statistic_ext",
        _in_schema("pg_statistic_ext", "s", "stxname", "stxowner", "stxnamespace"),
        _named("DROP STATISTICS"),
    ),
    ("pg_class", _RELATIONS, _relation),
    ("pg_cast", _CASTS, _cast),  # a cast, an operator, an aggregate need their functions
    ("pg_operator", _OPERATORS, _operator),
    ("pg_proc", _ROUTINES, _routine),
    (  # enums, domains, ranges, composite, base and shell types (not a table's row type)
        "pg_type",
        _in_schema("pg_type", "t", "typname", "typowner", "typnamespace", _TYPTYPES),
        _named("DROP TYPE"),
    ),
    (
        "pg_collation",
        _in_schema("pg_collation", "l", "collname", "collowner", "collnamespace"),
        _named("DROP COLLATION"),
    ),
    (
        "pg_conversion",
        _in_schema("pg_conversion", "v", "conname", "conowner", "connamespace"),
        _named("DROP CONVERSION"),
    ),
    (
        "pg_ts_config",
        _in_schema("pg_ts_config", "f", "cfgname", "cfgowner", "cfgnamespace"),
        _named("DROP TEXT SEARCH CONFIGURATION"),
    ),
    (
        "pg_ts_dict",
        _in_schema("pg_ts_dict", "y", "dictname", "dictowner", "dictnamespace"),
        _named("DROP TEXT SEARCH DICTIONARY"),
    ),
)

# another role's objects that depend on the role's, through any chain (review 72a, pgdrops 2):
# from what the role owns (its schemas: what is in them), each object's parts (its internal and
# automatic dependents: a table's row type, indexes, sequences, constraints, a view's rule),
# each object that depends on one of them and the object such a part is internally of (a view,
# for its rule); never a column of another's table (CASCADE drops the column, not the table:
# its type's, `_COLUMNS`), nor what is a part of such a column (a generated column's
# expression, calling the lease's function: review 72n, pgorder 1, left to DROP OWNED's
# CASCADE, which drops the column), but a view's or a materialized view's column (CASCADE
# drops it whole; PostgreSQL 15's failed on a view's in a cycle, review 72t, cascade 1; a
# materialized view's was left, with the type, to DROP OWNED: review 72y, pgend 2); UNION
# visits each object once
_REACH: Final = (
    "WITH RECURSIVE r(c, o) AS (SELECT s.classid, s.objid FROM pg_shdepend s"  # noqa: S608
    " WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = " + _R + " AND s.deptype = 'o'"
    " AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " UNION SELECT coalesce(w.refclassid, d.classid), coalesce(w.refobjid, d.objid) FROM r"
    " JOIN pg_depend d ON d.refclassid = r.c AND d.refobjid = r.o LEFT JOIN LATERAL"
    " (SELECT u.refclassid, u.refobjid, u.refobjsubid FROM pg_depend u WHERE d.deptype = 'n'"
    " AND u.classid = d.classid AND u.objid = d.objid AND u.deptype = 'i'"
    " ORDER BY u.refobjsubid DESC LIMIT 1) w ON TRUE"  # a column's part: no whole of it
    " WHERE d.deptype IN ('i', 'a', 'n') AND coalesce(w.refobjsubid, 0) = 0 AND (d.objsubid = 0"
    # a view's column (of the role's type): CASCADE drops the view (review 72t, cascade 1), a
    # materialized view's alike (review 72y, pgend 2)
    " OR (d.classid = 'pg_class'::regclass AND (SELECT relkind FROM pg_class WHERE oid = d.objid)"
    " IN ('v', 'm'))))"
    " (SELECT r.c, r.o FROM r EXCEPT SELECT s.classid, s.objid FROM pg_shdepend s"
    " WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = " + _R + " AND s.deptype = 'o')"
    " LIMIT %(limit)s"
)

# the dependencies among the objects to drop (classes `c`, oids `o`): (dependent, referenced),
# each side the object to drop it is or is a part of (two levels: a table's row type's array)
_EDGES: Final = (
    "WITH RECURSIVE n(c, o) AS (SELECT * FROM unnest(%(c)s::oid[], %(o)s::oid[])),"
    " p(c, o, wc, wo, lvl) AS (SELECT c, o, c, o, 0 FROM n UNION ALL"
    " SELECT d.classid, d.objid, p.wc, p.wo, p.lvl + 1 FROM p JOIN pg_depend d"
    " ON d.refclassid = p.c AND d.refobjid = p.o AND d.deptype IN ('i', 'a')"
    " WHERE p.lvl < 2 AND NOT (d.classid = p.c AND d.objid = p.o))"
    " SELECT DISTINCT q.wc, q.wo, p.wc, p.wo FROM p JOIN pg_depend d"
    " ON d.refclassid = p.c AND d.refobjid = p.o AND d.deptype = 'n'"
    " JOIN p q ON q.c = d.classid AND q.o = d.objid WHERE (q.wc, q.wo) <> (p.wc, p.wo)"
)


@dataclass(frozen=True)
class _Object:
    kind: int  # its index in _KINDS
    key: tuple[int, int]  # (its catalog's oid, its oid)
    weight: int
    names: tuple[Any, ...]


def drop_objects(conn: Any, role: str) -> None:
    """Drop the objects `role` owns or its schemas hold in the connection's database, and
    another role's that depend on them, `DROP_BATCH_LOCKS` locks to a transaction, before `DROP
    OWNED BY role` (review 71b, pglease 2; 72a, pgdrops 2 and 3): each before those it depends
    on (pg_depend: 71r pglease 2), then kind by kind, newest first, those depending on each
    other last, with CASCADE (72a, pgdrops 4). Stops at a lock it cannot have, a
    cancelled statement or an object the admin may not drop: DROP OWNED then fails alike (or
    does what the admin may), retried. A round that dropped something and left something (a
    dependency the order missed) is followed by another, `DROP_SWEEPS` at most, and by
    another while a round found `DROP_ROUND_OBJECTS`."""
    catalogs = dict(
        conn.execute(
            "SELECT x, x::regclass::oid FROM unnest(%s::text[]) x",
            (sorted({catalog for catalog, _query, _statement in _KINDS}),),
        ).fetchall()
    )
    for done in range(1, DROP_ROUNDS + 1):
        found = _objects(conn, role, catalogs)
        tally = _drop_ordered(conn, found)
        if tally is None or not tally[0]:
            return
        if len(found) < DROP_ROUND_OBJECTS and (done >= DROP_SWEEPS or not tally[1]):
            return


def _objects(conn: Any, role: str, catalogs: dict[str, int]) -> list[_Object]:
    """`role`'s objects and another role's that depend on them, `DROP_ROUND_OBJECTS` at most:
    those only when the admin is a superuser (another may not drop them, DROP OWNED's CASCADE
    may: each batch of the role's would stop at the first of them)."""
    theirs: dict[int, list[int]] = {}
    (superuser,) = conn.execute(
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if superuser:
        reached = _read(conn, _REACH, {"role": role, "limit": DROP_ROUND_OBJECTS}, plain=True)
        for classid, objid in reached:
            theirs.setdefault(int(classid), []).append(int(objid))
    found: list[_Object] = []
    for kind, (catalog, query, _statement) in enumerate(_KINDS):
        before = _LAST_OID
        classid = 0 if catalog == "pg_attribute" else catalogs[catalog]  # a column: no object
        params = {"role": role, "theirs": theirs.get(classid, []), "others": superuser}
        while len(found) < DROP_ROUND_OBJECTS:
            limit = min(DROP_BATCH_LOCKS, DROP_ROUND_OBJECTS - len(found))
            rows = conn.execute(query, {**params, "before": before, "limit": limit}).fetchall()
            for oid, cost, *names in rows:
                found.append(_Object(kind, (classid, oid), cost, tuple(names)))
                before = oid
            if len(rows) < limit:
                break
    return found


def _read(conn: Any, query: str, params: dict[str, Any], *, plain: bool = False) -> list[Any]:
    """`query`'s rows, none when it ran past the statement timeout (the drops go on as they
    did without it: kind by kind, the role's objects only); `plain`: each step of a recursive
    query an index lookup (a hash join scans pg_depend whole at each: a chain of 7000 views,
    7000 scans)."""
    import psycopg

    try:
        with conn.transaction():
            if plain:
                conn.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
            rows: list[Any] = conn.execute(query, params).fetchall()
            return rows
    except psycopg.errors.QueryCanceled:
        return []


def _order(conn: Any, found: list[_Object]) -> list[tuple[_Object, bool]]:
    """`found`, each object before those it depends on, kind by kind and newest first among
    those free; those in a cycle last, in that order, with CASCADE (True: review 72a, pgdrops
    4)."""
    rank = {item.key: (item.kind, -item.key[1], i) for i, item in enumerate(found)}
    objects = [item.key for item in found if item.key[0]]  # not a column (`_COLUMNS`)
    edges = _read(
        conn, _EDGES, {"c": [key[0] for key in objects], "o": [key[1] for key in objects]}
    )
    needs: dict[tuple[int, int], list[tuple[int, int]]] = {}
    held = dict.fromkeys(rank, 0)  # how many of `found` depend on it
    for dc, do, rc, ro in edges:
        dependent, referenced = (int(dc), int(do)), (int(rc), int(ro))
        if dependent in rank and referenced in rank:
            needs.setdefault(dependent, []).append(referenced)
            held[referenced] += 1
    free = [rank[key] for key, count in held.items() if not count]
    heapq.heapify(free)
    ordered: list[tuple[_Object, bool]] = []
    while free:
        item = found[heapq.heappop(free)[2]]
        ordered.append((item, False))
        for referenced in needs.get(item.key, ()):
            held[referenced] -= 1
            if not held[referenced]:
                heapq.heappush(free, rank[referenced])
    cycle = sorted(rank[key] for key, count in held.items() if count)
    return ordered + [(found[i], True) for _kind, _oid, i in cycle]


def _drop_ordered(conn: Any, found: list[_Object]) -> list[int] | None:
    """Drop `found` in `_order`, a batch to a transaction; how many dropped and left, None:
    stop (`_run`)."""
    tally = [0, 0]
    batch: list[Any] = []
    weight = 0
    for item, cascade in [*_order(conn, found), (None, False)]:
        # one weighing more than a batch goes alone (DROP OWNED would take it with all the
        # rest: review 71r, pglease 5)
        if item is None or (weight and weight + item.weight > DROP_BATCH_LOCKS):
            done = _run(conn, batch)
            if done is None:
                return None
            tally[0] += done
            tally[1] += len(batch) - done
            batch, weight = [], 0
        if item is not None:
            make = _KINDS[item.kind][2]
            statement = make(item.names)
            weight += item.weight
            if statement is not None:
                # what depends on it is the role's or depends on the role's (DROP OWNED's
                # CASCADE drops it alike); a column default has no dependents
                cascade = cascade and make is not _default
                batch.append(statement + _sql(" CASCADE") if cascade else statement)
    return tally


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
