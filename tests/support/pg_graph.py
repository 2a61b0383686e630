# ruff: noqa: S608 - SQL made of the graph's own names, by design
"""Random object graphs of two leases' roles and the admin in one PostgreSQL database, and what
a revocation's drops (`troth.secrets.engines.postgres_drops`) leave of them against plain `DROP
OWNED BY role CASCADE` (review 72t, cascade). Everything happens in one transaction of the
caller's (autocommit) connection, rolled back at the end: each statement in a savepoint of its
own, kept when PostgreSQL takes it (the server is the judge of what is valid), the drops'
transactions savepoints too.

The lease's role (`LEASE`) and another lease's (`OTHER`) each own a schema named after it that
PUBLIC may use and create in; the admin (a superuser, the connection's user) makes its objects
in `public`. Each actor makes tables (plain, inheriting, partitions, partitioned by a column or
an expression, typed), views and materialized views over tables, views and set-returning
functions, functions (one calling another: a dependency), types (enum, domain, composite,
range), collations and sequences, and hangs on the tables it may (the admin on all) indexes,
constraints (checks, foreign keys), columns (of the others' types, defaults calling their
functions or taking their sequences' values, generated columns), triggers, policies, rules and
statistics; the admin gives objects away."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LEASE = "tl72t_lease"
OTHER = "tl72t_other"

_SETUP = (
    f"CREATE ROLE {LEASE} NOLOGIN",
    f"CREATE ROLE {OTHER} NOLOGIN",
    f"CREATE SCHEMA {LEASE} AUTHORIZATION {LEASE}",
    f"CREATE SCHEMA {OTHER} AUTHORIZATION {OTHER}",
    f"GRANT USAGE, CREATE ON SCHEMA {LEASE}, {OTHER} TO PUBLIC",
    *(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {role} GRANT ALL ON {kind} TO PUBLIC"
        for role in (LEASE, OTHER, "postgres")
        for kind in ("TABLES", "SEQUENCES")
    ),
)

ACTORS: tuple[tuple[str | None, str], ...] = (  # (role, None: the admin; schema)
    (LEASE, LEASE),
    (OTHER, OTHER),
    (None, "public"),
    (OTHER, LEASE),
    (LEASE, OTHER),
)

_USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'"
)
_SNAPSHOT = (  # each object of the database's user schemas, described; columns with their type
    "SELECT x FROM (SELECT pg_describe_object('pg_class'::regclass, c.oid, 0) x FROM pg_class c"
    f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_SCHEMAS}"
    " UNION ALL SELECT pg_describe_object('pg_class'::regclass, c.oid, a.attnum) || ' '"
    " || format_type(a.atttypid, a.atttypmod) || coalesce(' collate ' || nullif(a.attcollation,"
    " t.typcollation)::regcollation::text, '') FROM pg_attribute a"
    " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_type t ON t.oid = a.atttypid"
    f" WHERE a.attnum > 0 AND NOT a.attisdropped AND {_USER_SCHEMAS}"
    " UNION ALL SELECT pg_describe_object('pg_attrdef'::regclass, d.oid, 0) || ': '"
    " || pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid"
    f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_SCHEMAS}"
    " UNION ALL SELECT pg_describe_object(s.classid, s.objid, 0) FROM pg_depend s"
    " JOIN pg_namespace n ON s.refclassid = 'pg_namespace'::regclass AND n.oid = s.refobjid"
    f" WHERE s.deptype = 'n' AND s.classid <> 'pg_class'::regclass AND {_USER_SCHEMAS}"
    " UNION ALL SELECT pg_describe_object('pg_constraint'::regclass, k.oid, 0) FROM pg_constraint"
    f" k JOIN pg_namespace n ON n.oid = k.connamespace WHERE {_USER_SCHEMAS}"
    " UNION ALL SELECT pg_describe_object('pg_trigger'::regclass, g.oid, 0) FROM pg_trigger g"
    " WHERE NOT g.tgisinternal"
    " UNION ALL SELECT pg_describe_object('pg_rewrite'::regclass, w.oid, 0) FROM pg_rewrite w"
    " JOIN pg_class c ON c.oid = w.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace"
    f" WHERE {_USER_SCHEMAS}"
    " UNION ALL SELECT pg_describe_object('pg_policy'::regclass, p.oid, 0) FROM pg_policy p) s"
    " ORDER BY x"
)
_TABLES = (  # the tables (and materialized views) of the user schemas: their own rows
    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
    f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_SCHEMAS}"
    " AND c.relkind IN ('r', 'm')"
)
OWNED = (  # what LEASE owns in the database
    "SELECT count(*) FROM pg_shdepend WHERE refobjid = %s::regrole AND deptype = 'o'"
    " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@dataclass
class Graph:
    """The objects made so far (schema-qualified names), by what they can be used as."""

    tables: list[str] = field(default_factory=list)  # a column a (int), rows
    parents: list[str] = field(default_factory=list)  # partitioned by range of a (or f(a))
    readable: list[str] = field(default_factory=list)  # tables, views: a column a
    views: list[str] = field(default_factory=list)  # plain views: replaceable
    funcs: list[str] = field(default_factory=list)  # int -> int, immutable, the identity
    srfs: list[str] = field(default_factory=list)  # () -> SETOF rows with a column a
    trigfuncs: list[str] = field(default_factory=list)
    seqs: list[str] = field(default_factory=list)
    enums: list[str] = field(default_factory=list)
    doms: list[str] = field(default_factory=list)  # over int (or another domain), > 0
    comps: list[str] = field(default_factory=list)  # (a int, ...)
    ranges: list[str] = field(default_factory=list)
    colls: list[str] = field(default_factory=list)
    made: list[str] = field(default_factory=list)  # the statements PostgreSQL took, in order
    count: int = 0
    low: int = 0  # the next partition's lower bound

    def name(self, schema: str, prefix: str) -> str:
        self.count += 1
        return f"{schema}.{prefix}{self.count}"


Pick = Callable[[list[str]], str]
Make = tuple[str, Callable[[], None]] | None  # a statement and what it makes, when taken


def _column(g: Graph, pick: Pick, choice: int, col: str) -> str:
    """A column `col` (of another's type, a default, a generated value, a reference...)."""
    options = [f"{col} int"]
    options += [f"{col} {t}" for t in g.enums[-1:] + g.doms[-1:] + g.comps[-1:] + g.ranges[-1:]]
    options += [f"{col} {t}[]" for t in g.enums[-1:]]
    options += [f"{col} text COLLATE {c}" for c in g.colls[-1:]]
    if g.funcs:
        f = pick(g.funcs)
        options += [
            f"{col} int DEFAULT {f}(1)",
            f"{col} int GENERATED ALWAYS AS ({f}(a)) STORED",
            f"{col} int CHECK ({f}({col}) > 0)",
        ]
    options += [f"{col} bigint DEFAULT nextval('{s}')" for s in g.seqs[-1:]]
    options += [f"{col} int GENERATED ALWAYS AS (a::{d}) STORED" for d in g.doms[-1:]]
    options += [f"{col} int REFERENCES {t}" for t in g.tables[-1:]]
    return options[choice % len(options)]


def _table(g: Graph, pick: Pick, schema: str, choices: list[int]) -> Make:
    name = g.name(schema, "t")
    cols = [_column(g, pick, c, f"c{i}") for i, c in enumerate(choices[1:])]
    how = choices[0] % 6
    rows_from = 0
    if how == 1 and g.tables:
        statement = f"CREATE TABLE {name} ({', '.join(cols)}) INHERITS ({pick(g.tables)})"
    elif how == 2 and g.parents:
        g.low += 10
        rows_from = g.low
        statement = (
            f"CREATE TABLE {name} PARTITION OF {pick(g.parents)}"
            f" FOR VALUES FROM ({g.low}) TO ({g.low + 10})"
        )
    elif how == 3 and g.comps:
        statement = f"CREATE TABLE {name} OF {pick(g.comps)} (PRIMARY KEY (a))"
    elif how == 4:
        key = f"{pick(g.funcs)}(a)" if g.funcs and choices[0] % 12 == 4 else "a"
        pk = ", PRIMARY KEY (a)" if key == "a" else ""
        cols_sql = "".join(", " + c for c in cols)
        statement = f"CREATE TABLE {name} (a int{cols_sql}{pk}) PARTITION BY RANGE ({key})"

        def parent() -> None:
            g.parents.append(name)

        return statement, parent
    else:
        statement = f"CREATE TABLE {name} (a int PRIMARY KEY{''.join(', ' + c for c in cols)})"
    rows = f"INSERT INTO {name} (a) SELECT {rows_from} + i FROM generate_series(1, 3) i"

    def table() -> None:
        g.tables.append(name)
        g.readable.append(name)

    return f"{statement}; {rows}", table


def _view(g: Graph, pick: Pick, schema: str, choices: list[int]) -> Make:
    if not g.readable:
        return None
    name, source, how = g.name(schema, "v"), pick(g.readable), choices[0] % 8
    body = f"SELECT a FROM {source}"
    if how == 1 and g.funcs:
        body = f"SELECT {pick(g.funcs)}(a) AS a FROM {source}"
    elif how == 2:
        body = f"SELECT a FROM {source} UNION ALL SELECT a FROM {pick(g.readable)}"
    elif how == 3 and g.doms:
        body = f"SELECT a::{pick(g.doms)} AS a FROM {source}"
    elif how == 4 and g.srfs:
        body = f"SELECT a FROM {pick(g.srfs)}()"
    elif how == 5 and g.seqs:
        body = f"SELECT a, nextval('{pick(g.seqs)}') AS n FROM {source}"
    if how == 6:

        def matview() -> None:
            g.readable.append(name)
            g.tables.append(name)  # its rows are counted, no column a for references

        return f"CREATE MATERIALIZED VIEW {name} AS {body}", matview

    def view() -> None:
        g.readable.append(name)
        g.views.append(name)

    return f"CREATE VIEW {name} AS {body}", view


def _function(g: Graph, pick: Pick, schema: str, choices: list[int]) -> Make:
    name, how = g.name(schema, "f"), choices[0] % 7
    if how == 1 and g.funcs:
        statement = (
            f"CREATE FUNCTION {name}(x int) RETURNS int LANGUAGE sql IMMUTABLE"
            f" RETURN {pick(g.funcs)}(x)"
        )
    elif how == 2 and g.readable:
        source = pick(g.readable)
        atomic = choices[0] % 14 == 2
        body = (
            f"BEGIN ATOMIC SELECT a FROM {source}; END"
            if atomic
            else f"AS 'SELECT a FROM {source}'"
        )
        statement = f"CREATE FUNCTION {name}() RETURNS TABLE (a int) LANGUAGE sql STABLE {body}"

        def srf() -> None:
            g.srfs.append(name)

        return statement, srf
    elif how == 3 and g.tables:
        statement = (
            f"CREATE FUNCTION {name}() RETURNS SETOF {pick(g.tables)} LANGUAGE sql STABLE"
            f" AS 'SELECT * FROM {pick(g.tables)}'"
        )

        def rows() -> None:
            g.srfs.append(name)

        return statement, rows
    elif how == 4:
        statement = (
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'"
        )

        def trigger() -> None:
            g.trigfuncs.append(name)

        return statement, trigger
    elif how == 5 and (g.enums or g.doms or g.comps or g.ranges):
        arg = pick(g.enums + g.doms + g.comps + g.ranges)
        return f"CREATE FUNCTION {name}(x {arg}) RETURNS int LANGUAGE sql RETURN 1", lambda: None
    elif how == 6 and g.views:
        # a cycle: the view replaced to read a function returning its rows
        view = pick(g.views)
        return (
            f"CREATE FUNCTION {name}() RETURNS SETOF {view} LANGUAGE sql AS 'SELECT * FROM {view}';"
            f" CREATE OR REPLACE VIEW {view} AS SELECT * FROM {name}()",
            lambda: None,
        )
    else:
        statement = f"CREATE FUNCTION {name}(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1'"

    def func() -> None:
        g.funcs.append(name)

    return statement, func


def _type(g: Graph, pick: Pick, schema: str, choices: list[int]) -> Make:
    how = choices[0] % 9
    if how == 0:
        name = g.name(schema, "e")
        return f"CREATE TYPE {name} AS ENUM ('x', 'y')", lambda: g.enums.append(name)
    if how in (1, 2, 3):
        name = g.name(schema, "d")
        over = pick(g.doms) if how == 2 and g.doms else "int"
        check = f"{pick(g.funcs)}(VALUE) > 0" if how == 3 and g.funcs else "VALUE > 0"
        return f"CREATE DOMAIN {name} AS {over} CHECK ({check})", lambda: g.doms.append(name)
    if how == 4:
        name = g.name(schema, "c")
        extra = [f", m {t}" for t in g.enums[-1:] + g.doms[-1:]]
        attrs = "a int" + (extra[choices[0] % len(extra)] if extra else ", b int")
        return f"CREATE TYPE {name} AS ({attrs})", lambda: g.comps.append(name)
    if how == 5:
        name = g.name(schema, "r")
        sub = pick(g.doms) if g.doms and choices[0] % 2 else "int4"
        return f"CREATE TYPE {name} AS RANGE (subtype = {sub})", lambda: g.ranges.append(name)
    if how == 6:
        name = g.name(schema, "l")
        return f'CREATE COLLATION {name} FROM "C"', lambda: g.colls.append(name)
    name = g.name(schema, "s")
    return f"CREATE SEQUENCE {name}", lambda: g.seqs.append(name)


def _hang(g: Graph, pick: Pick, schema: str, choices: list[int]) -> Make:
    """On a table: an index, a constraint, a column, a default, a trigger, a policy, a rule,
    statistics."""
    if not g.tables:
        return None
    table, how, n = pick(g.tables), choices[0] % 12, g.name(schema, "h").split(".")[1]
    f = pick(g.funcs) if g.funcs else None
    statement = None
    if how == 0 and f:
        statement = f"CREATE INDEX {n} ON {table} ({f}(a))"
    elif how == 1 and f:
        statement = f"ALTER TABLE {table} ADD CONSTRAINT {n} CHECK ({f}(a) > 0)"
    elif how == 2:
        statement = (
            f"ALTER TABLE {table} ADD CONSTRAINT {n} FOREIGN KEY (a) REFERENCES"
            f" {pick(g.tables)} NOT VALID"
        )
    elif how == 3:
        statement = f"ALTER TABLE {table} ADD COLUMN {_column(g, pick, choices[1], n)}"
    elif how == 4 and f:
        statement = f"ALTER TABLE {table} ALTER COLUMN a SET DEFAULT {f}(0)"
    elif how == 5 and g.trigfuncs:
        when = f" WHEN ({f}(NEW.a) > 0)" if f and choices[1] % 2 else ""
        statement = (
            f"CREATE TRIGGER {n} BEFORE UPDATE ON {table} FOR EACH ROW{when}"
            f" EXECUTE FUNCTION {pick(g.trigfuncs)}()"
        )
    elif how == 6 and f:
        statement = f"CREATE POLICY {n} ON {table} USING ({f}(a) > 0)"
    elif how == 7 and g.readable:
        statement = (
            f"CREATE RULE {n} AS ON DELETE TO {table} DO ALSO SELECT a FROM {pick(g.readable)}"
        )
    elif how == 8 and f:
        statement = f"CREATE STATISTICS {schema}.{n} ON ({f}(a)), a FROM {table}"
    elif how == 9 and g.seqs:
        statement = f"ALTER TABLE {table} ALTER COLUMN a SET DEFAULT nextval('{pick(g.seqs)}')"
    elif how == 10 and f:
        statement = f"CREATE INDEX {n} ON {table} (a) WHERE {f}(a) > 0"
    elif how == 11 and f:
        statement = f"CREATE RULE {n} AS ON DELETE TO {table} DO ALSO SELECT {f}(OLD.a)"
    return None if statement is None else (statement, lambda: None)


def _give(g: Graph, pick: Pick, schema: str, choices: list[int]) -> Make:
    """The admin gives a table, a function or a type to a lease's role."""
    to = (LEASE, OTHER)[choices[1] % 2]
    kinds = [("TABLE", g.tables), ("FUNCTION", g.funcs), ("TYPE", g.enums + g.comps)]
    kind, names = kinds[choices[0] % 3]
    if not names:
        return None
    return f"ALTER {kind} {pick(names)} OWNER TO {to}", lambda: None


MAKERS = (_table, _table, _view, _function, _function, _type, _type, _hang, _hang, _hang, _give)


def build(conn: Any, steps: list[tuple[int, int, list[int]]], pick: Pick) -> Graph:
    """Make the roles, their schemas and `steps` (actor, maker, choices) in the connection's
    open transaction, each in a savepoint: one PostgreSQL refuses is left out."""
    import psycopg

    for statement in _SETUP:
        conn.execute(statement)
    g = Graph()
    for actor, maker, choices in steps:
        role, schema = ACTORS[actor % len(ACTORS)]
        make = MAKERS[maker % len(MAKERS)]
        if make is _give:
            role = None
        made = make(g, pick, schema, choices)
        if made is None:
            continue
        statement, register = made
        as_role = f"SET ROLE {role}; " if role else ""
        try:
            with conn.transaction():
                conn.execute(f"{as_role}{statement}; RESET ROLE")
        except psycopg.Error:
            continue
        g.made.append(f"[{role or 'admin'}] {statement}")
        register()
    return g


@dataclass(frozen=True)
class State:
    objects: frozenset[str]
    rows: dict[str, str]  # table: count (and, with `content`, its rows)


def state(conn: Any, *, content: bool) -> State:
    """The objects of the user schemas and the rows of their tables."""
    objects = frozenset(x for (x,) in conn.execute(_SNAPSHOT).fetchall())
    rows: dict[str, str] = {}
    for (table,) in conn.execute(_TABLES).fetchall():
        what = "md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))" if content else "''"
        ((count, digest),) = conn.execute(f"SELECT count(*), {what} FROM ONLY {table} t").fetchall()
        rows[table] = f"{count} {digest}"
    return State(objects, rows)


class Savepointed:
    """A connection whose each statement runs in a savepoint (`drop_owned` catches a failed
    `DROP OWNED` and goes on, as on an autocommit connection)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        with self.conn.transaction():
            return self.conn.execute(*args, **kwargs)


@dataclass(frozen=True)
class Outcome:
    cascade: State | None  # after DROP OWNED BY LEASE CASCADE (None: it failed)
    drops: State  # after the revocation's drops
    final: State | None  # after the drops and `drop_owned` (None: it failed, retried)
    owned: int  # what LEASE owns at the end


def compare(conn: Any, drop_objects: Callable[[Any, str], None]) -> Outcome:
    """In the open transaction where the graph was built: `DROP OWNED BY LEASE CASCADE` (rolled
    back), then `drop_objects` and `drop_owned` as a revocation runs them."""
    import psycopg

    from troth.secrets.engines import postgres_drops

    cascade: State | None = None
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(f"DROP OWNED BY {LEASE} CASCADE")
            cascade = state(conn, content=True)
    except psycopg.Error:  # PostgreSQL's own failure (review 72t, cascade 1)
        pass
    drop_objects(conn, LEASE)
    drops = state(conn, content=False)
    final: State | None = None
    try:
        postgres_drops.drop_owned(Savepointed(conn), LEASE, LEASE)
        final = state(conn, content=True)
    except psycopg.Error:
        pass
    ((owned,),) = conn.execute(OWNED, (LEASE,)).fetchall()
    return Outcome(cascade, drops, final, int(owned))
