"""What a restored copy of node.db may carry that troth never makes, refused when the restore
is found (review 72k, holds2 4 and 5; docs/storage.md, "Rollback guard"): a trigger, and a
table a restore writes made otherwise.

A trigger runs with every write to its table, in the writer's transaction: one a copy of
node.db carries when it is put back (made in the copy, say, with the table it fires on)
undoes what the restore found fails closed on as it is written (an identity's hold deleted as
the restore writes it: the identity the copy holds, rotated since, signed with the keys its
rotation retired), or later, with any write. troth makes two, the secrets audit log's
(`secret_audit`: no row updated or deleted); a restore found on a copy holding any other is
refused (`RollbackGuard.check`), nothing recorded, until the operator drops it. So too a
table the restore writes (`identity_restore_holds`, `authority_restore_hold`, ...) the copy
holds made otherwise (`check_made`): one whose `held_at` is `UNIQUE ON CONFLICT REPLACE` kept
one identity's hold of all those the restore wrote at one time. And a view: troth makes none,
and one in the name of a table the restore reads (`identities`, renamed in the copy, shown
through a view hiding each identity's key until the restore was recorded) held no identity
(review 72v, planted 1): a restore found on a copy holding any view is refused too. And a
table of any name defined with a conflict clause (`ON CONFLICT IGNORE`, `REPLACE`, ...: troth
writes none in a table, its statements say how each conflict goes): the restore's `UPDATE
tickets SET uses_left = 0` was ignored for a ticket whose 0 a used one's `UNIQUE (uses_left)
ON CONFLICT IGNORE` conflicted with, and it was redeemed again (review 72v, planted 2). So
too a foreign-key action (`ON DELETE CASCADE`, ...; troth writes none, and node.db's
connections enforce foreign keys): the policy restore's held-back rows, each defaulting to a
link to one authority's row, went with it when the operator confirmed that one (planted 4).
And a copy made again in UTF-16 (`PRAGMA encoding`): troth makes node.db in UTF-8, and the
definitions' UTF-16 bytes, read as UTF-8, held no clause (review 72z, planted2 1).
And a UNIQUE index troth does not make (it makes two, `identities_name` and
`revocations_once`, compared by what they keep unique: `_unique`): an index carries no
conflict clause, but a write with `INSERT OR IGNORE`, `OR REPLACE` or `ON CONFLICT DO NOTHING`
(no target) meets every uniqueness: one on `authority_revoke_again (kind)`, a table
`check_made` compares, kept one identity of each kind the authority's hold was given to
revoke again (review 73a, planted3 1). An index that is not UNIQUE changes no row written
or read, only how it is found. So too a table troth's migrations make whose own uniqueness
(its UNIQUE and PRIMARY KEY, the column its rowid is named by: `_own`) is not what troth
makes it: `members` made again keyed by `added_by` lost a member to the next one that hand
enrolled (`INSERT OR REPLACE`), and made with no key kept a member's old attributes beside
its new, read first (review 73h, planted4 1-2). And one of troth's tables without one of its
UNIQUE indexes: `identities` without `identities_name` let a second local identity take a name
one had, and the name found the first (73h planted4 4). The tables troth makes lazily, in
modules above this one, are compared alike (troth.storage.lazy_tables, review 74c, planted6 1;
73h planted4 3): a copy's `trace_outbox_held` with `reason` UNIQUE let one agent's hold delete
another's (`INSERT OR REPLACE`). And beside a key, a CHECK or a generated column not troth's
(planted6 2), or a column NOT NULL no troth made NOT NULL (planted6 3): `INSERT OR IGNORE`
skips a row a CHECK or NOT NULL refuses, as `retired_keys` with a CHECK on `handle` skipped a
key retired, `refuted_changes` with a NOT NULL column added every change shown made up; and
a column's DEFAULT no troth gave it (planted6 4): `secret_leases.retry_at` defaulting far ahead
kept a lease written after the restore from ever coming due for its revocation; and a column's
type whose affinity no troth gave it (review 74i, planted7 1: `secret_store.name` made NUMERIC
stored the secrets `01` and `1` as one), or its collation (planted7 2: `secret_leases.secret`
compared NOCASE found another secret's leases); and its columns' order (review 74l, planted8
1: troth writes most tables by position, and `secret_store` with `engine` before `name` took a
secret's engine for its name, a second `static` secret replacing the first), or a key's
AUTOINCREMENT not troth's (planted8 2: `feed_syncs_due` without it gave a sync mark's number
twice).
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, Final

from troth.errors import StorageError
from troth.storage.lazy_tables import EARLIER, made_lazily
from troth.storage.row_types import text_sql
from troth.storage.sqlite import SqliteDatabase
from troth.storage.sqlite_schema import NODE_MIGRATIONS, PENDING_BY_TICKET

__all__ = ["AUDIT_TABLE", "AUDIT_TRIGGERS", "check_made", "planted"]

AUDIT_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS secret_audit (\n"
    "    seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,\n"
    "    identity BLOB, secret TEXT, lease BLOB, detail TEXT NOT NULL, digest BLOB\n"
    ")"
)
"""The secrets audit log's table (troth.secrets.audit)."""
AUDIT_TRIGGERS: Final = tuple(
    f"CREATE TRIGGER IF NOT EXISTS secret_audit_no_{action.lower()} BEFORE {action} ON "
    "secret_audit\nBEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    for action in ("UPDATE", "DELETE")
)
"""The triggers troth makes: the audit log's rows are never updated nor deleted."""
_TRIGGER_TEXT_BYTES: Final = 4096  # troth's are ~120 bytes; a longer one is another
_TRIGGERS: Final = (
    f"SELECT type, {text_sql('name', _TRIGGER_TEXT_BYTES)}, "  # noqa: S608
    f"{text_sql('sql', _TRIGGER_TEXT_BYTES)} FROM sqlite_master "
    "WHERE type IN ('trigger', 'view') ORDER BY type, name"
)


@functools.cache
def _made() -> frozenset[bytes]:
    """The text SQLite keeps (`sqlite_master.sql`, its bytes) of each trigger troth makes."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(AUDIT_TABLE)
        for statement in AUDIT_TRIGGERS:
            conn.execute(statement)
        rows = conn.execute(_TRIGGERS).fetchall()
        return frozenset(sql for _, _, sql in rows if isinstance(sql, bytes))
    finally:
        conn.close()


_TABLE_TEXT_BYTES: Final = 65536  # troth's are < 2 KiB; a longer one is another's
_TABLES: Final = (
    f"SELECT {text_sql('name', _TRIGGER_TEXT_BYTES)}, "  # noqa: S608
    f"{text_sql('sql', _TABLE_TEXT_BYTES)} FROM sqlite_master WHERE type = 'table' "
    "ORDER BY name"
)


_UNIQUE: Final = (
    f"SELECT {text_sql('m.name', _TRIGGER_TEXT_BYTES)}, "  # noqa: S608
    f"{text_sql('m.sql', _TABLE_TEXT_BYTES)}, m.name, m.tbl_name FROM sqlite_master AS m "
    "JOIN pragma_index_list(m.tbl_name) AS i ON i.name = m.name "
    "WHERE m.type = 'index' AND i.\"unique\" AND i.origin = 'c' ORDER BY m.name"
)
"""Each UNIQUE index made by `CREATE UNIQUE INDEX` (SQLite's word: `pragma_index_list`): its
name and text, as read, and as SQLite names it and its table (a table's own UNIQUE is its
definition's, read with it)."""
_KEY: Final = 'SELECT name, "desc", coll FROM pragma_index_xinfo(?) WHERE key ORDER BY seqno'
"""The columns an index keys (an expression's name NULL), each's order and collation."""
_Fetch = Callable[[str, tuple[object, ...]], list[Any]]
_Unique = tuple[str, tuple[tuple[object, ...], ...], tuple[str | None, ...] | None]


def _unique(fetch: _Fetch, name: object, table: object, sql: object) -> _Unique | None:
    """What the UNIQUE index `name` of `table` (`sql`, its text's bytes) keeps unique, as SQLite
    applies it: its table's name folded (ASCII, as SQLite's names), each key column's name,
    order and collation (`pragma_index_xinfo`: the column's own when the index names none),
    and the words of its partial clause (after WHERE); None: unreadable. Its text is not
    compared whole: `ALTER TABLE ... RENAME` writes the table's name in it again, quoted
    (72v planted 1's `identities` renamed and renamed back)."""
    try:
        text = sql.decode() if isinstance(sql, bytes) else None
    except UnicodeDecodeError:
        text = None
    if text is None or not isinstance(name, str) or not isinstance(table, str):
        return None
    tokens = list(_tokens(text))
    where = tokens.index("WHERE") if "WHERE" in tokens else len(tokens)
    keyed = tuple(tuple(row) for row in fetch(_KEY, (name,)))
    return _folded(table), keyed, tuple(tokens[where + 1 :])


_OWN: Final = (
    "SELECT origin, name FROM pragma_index_list(?) WHERE \"unique\" AND origin IN ('u', 'pk')"
)
"""Each uniqueness a table's definition makes with an index (its UNIQUE, its PRIMARY KEY)."""
_PK: Final = "SELECT name FROM pragma_table_info(?) WHERE pk ORDER BY pk"
_TABLE_NAMES: Final = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
_Own = frozenset[tuple[object, ...]]


_DEFINITION: Final = (
    f"SELECT {text_sql('sql', _TABLE_TEXT_BYTES)} FROM sqlite_master "  # noqa: S608
    "WHERE type = 'table' AND name = ?"
)
_GENERATED: Final = "SELECT name FROM pragma_table_xinfo(?) WHERE hidden IN (2, 3) ORDER BY cid"


def _own(fetch: _Fetch, table: str) -> _Own:
    """What the definition of `table` keeps unique (73h planted4 1): each of its UNIQUE and its
    PRIMARY KEY (origin, key columns with order and collation: `pragma_index_xinfo`), or the
    column its rowid is named by (a rowid table's INTEGER PRIMARY KEY: no index); and what
    makes a write skip a row beside a key (74c planted6 2: `INSERT OR IGNORE` skips a row a
    CHECK or a generated column's constraint refuses): each CHECK's words, its generated
    columns (troth makes none)."""
    own: set[tuple[object, ...]] = {
        (origin, tuple(tuple(row) for row in fetch(_KEY, (name,))))
        for origin, name in fetch(_OWN, (table,))
    }
    if not any(origin == "pk" for origin, _ in own):
        own.add(("rowid", tuple(row[0] for row in fetch(_PK, (table,)))))
    ((sql,),) = fetch(_DEFINITION, (table,)) or ((None,),)
    own.update(("check", check) for check in _checks(sql))
    generated = tuple(row[0] for row in fetch(_GENERATED, (table,)))
    if generated:
        own.add(("generated", generated))
    if _autoincrement(sql):  # 74l planted8 2: a mark's number given twice
        own.add(("autoincrement",))
    return frozenset(own)


def _autoincrement(sql: object) -> bool:
    """Whether a table's definition `sql` (its bytes) keys its rowid `AUTOINCREMENT` (no
    pragma reports it: a deleted newest row's rowid is never given again); a definition not
    UTF-8 says not (`_clause` refuses it)."""
    try:
        return isinstance(sql, bytes) and "AUTOINCREMENT" in _words(sql.decode())
    except UnicodeDecodeError:
        return False


_ORDER: Final = "SELECT name FROM pragma_table_xinfo(?) ORDER BY cid"
_ROWID_NAMES: Final = frozenset({"rowid", "oid", "_rowid_"})


def _order(fetch: _Fetch, table: str) -> tuple[str, ...]:
    """The names (folded) of the columns of `table`, in order: troth writes most of its tables
    by position (`INSERT INTO secret_store VALUES (?, ?, ...)`, 74l planted8 1)."""
    return tuple(_folded(str(row[0])) for row in fetch(_ORDER, (table,)))


def _in_order(order: tuple[str, ...], troths: frozenset[tuple[str, ...]]) -> bool:
    """Whether the columns `order` of a copy's table are in the order of one of `troths` (its
    shapes, each as troth makes it): the same, its start (a table made before troth added
    the rest: ALTER TABLE ADD COLUMN adds at the end), or followed by columns troth never
    made (a write by position fails on their count, one by name leaves them at their
    DEFAULT: a NOT NULL, CHECK, key or generated one is refused apart), none named as SQLite
    names the rowid (`ORDER BY rowid` would read it)."""
    return any(
        order[: len(made)] == made[: len(order)] and not _ROWID_NAMES & set(order[len(made) :])
        for made in troths
    )


_NOT_NULL: Final = 'SELECT name FROM pragma_table_xinfo(?) WHERE "notnull" AND NOT pk'
_NOT_NULL_OR_KEY: Final = 'SELECT name FROM pragma_table_xinfo(?) WHERE "notnull" OR pk'


def _not_null(fetch: _Fetch, table: str, *, keys: bool = False) -> frozenset[str]:
    """The columns of `table` made NOT NULL (generated ones too), by their names folded, its
    PRIMARY KEY's left out (`keys`: put in; troth writes no NULL key): a write with `INSERT
    OR IGNORE` skips a row one refuses (74c planted6 3)."""
    query = _NOT_NULL_OR_KEY if keys else _NOT_NULL
    return frozenset(_folded(str(row[0])) for row in fetch(query, (table,)))


_DEFAULTS: Final = (
    f"SELECT name, {text_sql('dflt_value', _TRIGGER_TEXT_BYTES)} FROM pragma_table_xinfo(?)"  # noqa: S608
)


def _defaults(fetch: _Fetch, table: str) -> list[tuple[str, object]]:
    """Each column of `table` (its name folded) with its DEFAULT's text (bytes; None: none):
    a row troth writes without naming the column takes it (74c planted6 4: a lease's
    `retry_at` defaulting far ahead was never due for its revocation)."""
    return [(_folded(str(name)), default) for name, default in fetch(_DEFAULTS, (table,))]


_TYPES: Final = (
    f"SELECT name, {text_sql('type', _TRIGGER_TEXT_BYTES)}, "  # noqa: S608
    "(SELECT \"strict\" FROM pragma_table_list(?1) WHERE schema = 'main') "
    "FROM pragma_table_xinfo(?1)"
)
_Column = tuple[str, str]


def _columns(fetch: _Fetch, table: str) -> dict[str, _Column]:
    """Each column of `table` (its name folded) with how SQLite stores and compares what is
    written to it: its type's affinity (74i planted7 1: `secret_store.name` made NUMERIC made
    the secrets `01` and `1` one) and its collation (planted7 2: `secret_leases.secret`
    compared NOCASE found another secret's leases)."""
    ((sql,),) = fetch(_DEFINITION, (table,)) or ((None,),)
    collations = _collations(sql)
    return {
        _folded(str(name)): (
            _affinity(kind, strict=bool(strict)),
            collations.get(_folded(str(name)), "BINARY"),
        )
        for name, kind, strict in fetch(_TYPES, (table,))
    }


def _affinity(kind: object, *, strict: bool) -> str:
    """The affinity of a column declared with type `kind` (its text's bytes), by SQLite's rules
    (datatype3.html, 3.1); a STRICT table's ANY keeps what is written as written (BLOB's)."""
    try:
        text = kind.decode().upper() if isinstance(kind, bytes) else ""
    except UnicodeDecodeError:
        return "unreadable"
    if "INT" in text:
        return "INTEGER"
    if any(word in text for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in text or not text or (strict and text == "ANY"):
        return "BLOB"
    if any(word in text for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _collations(sql: object) -> dict[str, str]:
    """Each column of a table's definition `sql` (its bytes) declared with a COLLATE, by its
    name folded, to the collation's name (unquoted, upper-cased: SQLite's names are ASCII);
    a definition not UTF-8 names none (`_clause` refuses it)."""
    try:
        tokens = list(_tokens(sql.decode())) if isinstance(sql, bytes) else []
    except UnicodeDecodeError:
        tokens = []
    found: dict[str, str] = {}
    depth, column, starts = 0, None, False
    for i, word in enumerate(tokens):
        if word in ("(", ")"):
            depth += 1 if word == "(" else -1
            starts = word == "(" and depth == 1
        elif depth != 1:
            continue
        elif starts:  # a column's definition starts with its name
            column, starts = _column_name(word), False
        elif word == ",":
            starts = True
        elif word == "COLLATE" and column is not None and i + 1 < len(tokens):
            found[column] = str(_column_name(tokens[i + 1])).upper()  # its quotes taken off
    return found


def _column_name(token: str | None) -> str | None:
    """The name a column definition starts with (folded, unquoted); None: a table constraint."""
    if token is None or token in ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"):
        return None
    if token[0] in "'\"`[":
        close = "]" if token[0] == "[" else token[0]
        token = token[1:-1].replace(close * 2, close) if close != "]" else token[1:-1]
    return _folded(token)


def _keys(own: _Own, *, without: tuple[str, ...] = ("check", "generated", "autoincrement")) -> _Own:
    """The keys of a table's `own` (its UNIQUE, PRIMARY KEY, rowid), without its CHECKs
    (`without`: the kinds left out)."""
    return frozenset(made for made in own if made[0] not in without)


def _checks(sql: object) -> Iterator[tuple[str | None, ...]]:
    """The tokens of each CHECK constraint in a table's definition `sql` (its bytes): none
    read from a definition not UTF-8 (`_clause` refuses it)."""
    try:
        tokens = list(_tokens(sql.decode())) if isinstance(sql, bytes) else []
    except UnicodeDecodeError:
        tokens = []
    for i, word in enumerate(tokens):
        if word != "CHECK":
            continue
        depth, j = 0, i + 1
        while j < len(tokens):
            depth += {"(": 1, ")": -1}.get(tokens[j] or "", 0)
            j += 1
            if depth <= 0:
                break
        yield tuple(tokens[i + 1 : j])


def _folded(name: str) -> str:
    return name.encode().lower().decode()  # SQLite's names: ASCII case folded


@functools.cache
def _migrated() -> tuple[
    dict[_Unique | None, str],
    dict[str, frozenset[_Own]],
    dict[str, frozenset[str]],
    dict[str, dict[str, frozenset[object]]],
    dict[str, dict[str, frozenset[_Column]]],
    dict[str, frozenset[tuple[_Own, tuple[str, ...]]]],
]:
    """What troth's migrations of node.db make unique, as every troth that migrated node.db
        made it: each UNIQUE index's (`_unique`, to its name: `identities_name`,
        `revocations_once`), and each table's own (`_own`, by its name folded), before and after
        the table a store rebuilds when opened (`PENDING_BY_TICKET`: either is troth's), the tables
        made lazily (`made_lazily`) and as earlier troths made them (`EARLIER`); and each table's
        columns NOT NULL in any of them (`_not_null`), and each column's defaults in any of them
        (`_defaults`), its affinities and collations (`_columns`); and each table's columns in
    order, with the own of the shape they are in (`_order`). Run once a process, in memory."""
    conn = sqlite3.connect(":memory:")
    try:
        for migration in NODE_MIGRATIONS:
            if callable(migration):
                migration(conn)
                continue
            for statement in migration.split(";"):
                if statement.strip():
                    conn.execute(statement)

        def fetch(sql: str, params: tuple[object, ...]) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        indexes = {
            _unique(fetch, name, table, sql): name for _, sql, name, table in fetch(_UNIQUE, ())
        }
        tables: dict[str, set[_Own]] = {}
        not_null: dict[str, set[str]] = {}
        defaults: dict[str, dict[str, set[object]]] = {}
        columns: dict[str, dict[str, set[_Column]]] = {}
        orders: dict[str, set[tuple[_Own, tuple[str, ...]]]] = {}

        def made(name: str) -> None:
            own = _own(fetch, name)
            tables.setdefault(_folded(name), set()).add(own)
            orders.setdefault(_folded(name), set()).add((own, _order(fetch, name)))  # 74l 1
            not_null.setdefault(_folded(name), set()).update(_not_null(fetch, name, keys=True))
            for column, default in _defaults(fetch, name):
                defaults.setdefault(_folded(name), {}).setdefault(column, set()).add(default)
            for column, shape in _columns(fetch, name).items():  # 74i planted7 1-2
                columns.setdefault(_folded(name), {}).setdefault(column, set()).add(shape)

        # the tables made lazily (74c planted6 1), and as earlier troths made them
        for rebuild in ((), PENDING_BY_TICKET, made_lazily()):
            for statement in rebuild:
                conn.execute(statement)
            for (name,) in fetch(_TABLE_NAMES, ()):
                made(name)
        for earlier in EARLIER:
            name, _ = _made_table(earlier)
            conn.execute(f"DROP TABLE IF EXISTS {name}")
            conn.execute(earlier)
            made(name)
        return (
            indexes,
            {name: frozenset(own) for name, own in tables.items()},
            {name: frozenset(columns) for name, columns in not_null.items()},
            {
                name: {column: frozenset(made) for column, made in columns.items()}
                for name, columns in defaults.items()
            },
            {
                name: {column: frozenset(made) for column, made in shapes.items()}
                for name, shapes in columns.items()
            },
            {name: frozenset(shapes) for name, shapes in orders.items()},
        )
    finally:
        conn.close()


def planted(db: SqliteDatabase) -> list[str]:
    """What `db` holds that troth does not make, each shown as its kind and name ("trigger
    'gone'"), in order: a trigger not troth's (its audit log's, word for word), a view (troth
    makes none), a table defined with a conflict clause or a foreign-key action (or whose
    definition is not UTF-8 text of at most 64 KiB); a name not text of at most 4 KiB shown
    as its type. First a database encoded other than UTF-8 (troth makes node.db in UTF-8:
    the definitions' bytes in UTF-16 read as UTF-8 held no word longer than a letter, review
    72z, planted2 1); then a table troth's migrations make whose own UNIQUE or PRIMARY KEY
    is not troth's (73h, planted4 1); then a UNIQUE index keeping unique what none of
    troth's does (its table, key columns, their order and collation, partial clause: 73a,
    planted3 1); last a table of troth's without one of troth's UNIQUE indexes (73h,
    planted4 4). A table troth makes lazily is one of troth's (74c, planted6 1); its CHECKs
    and generated columns are compared with its keys, its NOT NULL columns with those any
    troth made NOT NULL, its columns' defaults with any troth gave them (planted6 2-4), their
    types' affinities and collations with troth's (74i planted7 1-2), its columns' order and
    AUTOINCREMENT with those of a shape of troth's with its keys (74l planted8 1-2)."""
    made = _made()
    encoding = db.fetch_one("PRAGMA encoding")
    found = [] if encoding == ("UTF-8",) else [f"a database encoded {_shown(encoding[0])}"]
    found += [
        f"{kind} {_shown(name)}"
        for kind, name, sql in db.fetch_all(_TRIGGERS)
        if kind != "trigger" or sql not in made
    ]
    for name, sql in db.fetch_all(_TABLES):
        clause = _clause(sql)
        if clause is not None:
            found.append(f"table {_shown(name)} ({clause})")
    made_unique, made_own, made_not_null, made_defaults, made_columns, made_orders = _migrated()
    tables: dict[str, str] = {}  # troth's tables `db` holds, by their names folded
    for (name,) in db.fetch_all(_TABLE_NAMES):  # 73h planted4 1: OR REPLACE deleted rows by it
        troths = made_own.get(_folded(name)) if isinstance(name, str) else None
        if troths is not None:
            tables[_folded(name)] = name
            own = _own(db.fetch_all, name)
            if own not in troths:  # 74c planted6 2: OR IGNORE skipped a row a CHECK refused
                found.append(f"table {_shown(name)} ({_unlike(own, troths)} not troth's)")
            elif not _in_order(  # 74l planted8 1: a secret's engine written as its name
                _order(db.fetch_all, name),
                frozenset(order for made, order in made_orders[_folded(name)] if made == own),
            ):
                found.append(f"table {_shown(name)} (its columns not in troth's order)")
            if not _not_null(db.fetch_all, name) <= made_not_null[_folded(name)]:
                found.append(f"table {_shown(name)} (a NOT NULL column not troth's)")
            troths_defaults = made_defaults.get(_folded(name), {})
            if any(  # 74c planted6 4: a lease's retry never due
                default not in troths_defaults.get(column, (default,))
                for column, default in _defaults(db.fetch_all, name)
            ):
                found.append(f"table {_shown(name)} (a column's DEFAULT not troth's)")
            shapes = made_columns.get(_folded(name), {})
            columns = _columns(db.fetch_all, name)
            for what, part in (("type", 0), ("collation", 1)):  # 74i planted7 1-2
                if any(
                    shape[part] not in {made[part] for made in shapes[column]}
                    for column, shape in columns.items()
                    if column in shapes
                ):  # two secrets made one; another secret's leases found
                    found.append(f"table {_shown(name)} (a column's {what} not troth's)")
    uniques: set[_Unique | None] = set()
    for shown, sql, name, table in db.fetch_all(_UNIQUE):
        unique = _unique(db.fetch_all, name, table, sql)
        uniques.add(unique)
        if unique not in made_unique:  # 73a planted3 1: untargeted DO NOTHING dropped rows
            found.append(f"index {_shown(shown)}")
    found += [  # 73h planted4 4: a second identity took a name one had
        f"table {_shown(tables[unique[0]])} (troth's UNIQUE index {index!r} gone)"
        for unique, index in made_unique.items()
        if unique is not None and unique[0] in tables and unique not in uniques
    ]
    return found


def _unlike(own: _Own, troths: frozenset[_Own]) -> str:
    """What of a table's `own` none of `troths` (its shapes) has, as the refusal names it."""
    if _keys(own) not in {_keys(made) for made in troths}:
        return "a UNIQUE or PRIMARY KEY"
    kinds = ("check", "generated")
    if _keys(own, without=kinds) not in {_keys(made, without=kinds) for made in troths}:
        return "its AUTOINCREMENT"
    return "a CHECK or generated column"


def _shown(name: object) -> str:
    return repr(name.decode(errors="replace") if isinstance(name, bytes) else str(name))


def _clause(sql: object) -> str | None:
    """What in the text of a table's definition `sql` (its bytes, from `text_sql`) says what
    a write does beyond the write (outside quotes and comments): "a conflict clause" (`ON
    CONFLICT`), "a foreign-key action" (`ON DELETE`, `ON UPDATE`), "its definition
    unreadable"; None: nothing."""
    try:
        text = sql.decode() if isinstance(sql, bytes) else None
    except UnicodeDecodeError:
        text = None
    if text is None:
        return "its definition unreadable"
    for first, second in itertools.pairwise(_words(text)):
        if first == "ON" and second in _CLAUSES:
            return _CLAUSES[second]
    return None


_CLAUSES: Final = {
    "CONFLICT": "a conflict clause",
    "DELETE": "a foreign-key action",
    "UPDATE": "a foreign-key action",
}


def _words(sql: str) -> Iterator[str]:
    """The bare words of the SQL text `sql`, upper-cased: strings, quoted names and comments
    skipped; a quote never closed ends them as a conflict clause would (read as one)."""
    for token in _tokens(sql):
        if token is None:
            yield from ("ON", "CONFLICT")
            return
        if token[0].isalnum() or token[0] in "_$" or ord(token[0]) > 127:
            yield token


def _tokens(sql: str) -> Iterator[str | None]:
    """The tokens of the SQL text `sql`: each bare word upper-cased, each string or quoted name
    as written (its quotes too), each other character but space; comments skipped; None for a
    quote never closed, then no more."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"`[":
            close, j = ("]" if c == "[" else c), i + 1
            while (j := sql.find(close, j)) >= 0 and close != "]" and sql.startswith(close, j + 1):
                j += 2  # a quote doubled inside the quotes
            if j < 0:
                yield None
                return
            yield sql[i : j + 1]
            i = j + 1
        elif sql.startswith(("--", "/*"), i):
            end = "\n" if c == "-" else "*/"
            j = sql.find(end, i + 2)
            i = n if j < 0 else j + len(end)
        elif c.isalnum() or c in "_$" or ord(c) > 127:
            j = i
            while j < n and (sql[j].isalnum() or sql[j] in "_$" or ord(sql[j]) > 127):
                j += 1
            yield sql[i:j].upper()
            i = j
        else:
            if not c.isspace():
                yield c
            i += 1


_SCHEMA_ROW: Final = (
    f"SELECT type, {text_sql('sql', _TRIGGER_TEXT_BYTES)} FROM sqlite_master "  # noqa: S608
    "WHERE name = ? COLLATE NOCASE"  # SQLite's names: any case (ASCII), 72v planted 3
)


@functools.cache
def _made_table(create: str) -> tuple[str, bytes]:
    """The name of the table `create` makes, and the text SQLite keeps of it."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(create)
        ((name, sql),) = conn.execute(
            f"SELECT name, {text_sql('sql', _TRIGGER_TEXT_BYTES)} FROM sqlite_master "  # noqa: S608
            "WHERE type = 'table'"
        ).fetchall()
        return str(name), bytes(sql)
    finally:
        conn.close()


def check_made(db: SqliteDatabase, create: str) -> None:
    """Before a restore found writes the table `create` makes (`CREATE TABLE IF NOT EXISTS`):
    StorageError where `db` holds that name made otherwise (another definition, a view), which
    may undo what the restore holds (module docstring); none, or troth's, passes."""
    name, made = _made_table(create)
    row = db.fetch_one(_SCHEMA_ROW, (name,))
    if row is None or (row[0] == "table" and row[1] == made):
        return
    raise StorageError(
        f"{db.path} is a restored copy holding {name!r} made as troth never makes it: it may "
        f"undo what the restore holds; drop it (sqlite3 node.db 'DROP {str(row[0]).upper()} "
        f'{name}\') and open node.db again (docs/storage.md, "Rollback guard")'
    )
