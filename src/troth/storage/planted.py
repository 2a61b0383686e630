"""What a restored copy of node.db may carry that troth never makes, refused when the restore
is found (review 72k, holds2 4 and 5; docs/storage.md, "Rollback guard"): anything that makes
one of troth's writes lose, skip or swap a row, or a read find another's.

Each row below is one kind of difference, the review that found it, and where SQLite reports
it (https://sqlite.org/pragma.html, https://sqlite.org/lang_createtable.html). A copy's table
is compared only where it holds one of troth's names (its migrations', or made lazily on
first use: troth.storage.lazy_tables); a table troth makes that the copy lacks is made when
first used. Each of troth's tables is read once from a database made in memory by this
troth's statements and once per shape an earlier troth made (`EARLIER`): a copy any troth
made passes.

  anywhere in the file (`planted`, first):
    encoding other than UTF-8        PRAGMA encoding; its definitions read as UTF-8 held no
                                     clause (72z planted2 1)
    a trigger not troth's            sqlite_master, its text word for word (72k holds2 4)
    a view                           sqlite_master: one named as a table the restore reads
                                     hid its rows (72v planted 1)
    a conflict clause, a foreign-key  the definition's words (lang_conflict.html, foreignkeys
      action, or a definition not     .html: no pragma reports either): `ON CONFLICT IGNORE`
      UTF-8 text of at most 64 KiB    skipped a write (72v planted 2, 4)
    text past a definition's end     a `;` or a NUL: SQLite applies none of what follows, the
                                     words read here would be (75j planted9 1-3)
    a UNIQUE index not troth's       pragma index_list/index_xinfo (table, columns, order,
                                     collation) and its partial clause's words (73a planted3 1)
  in each table of troth's the copy holds (`_shape`):
    its own UNIQUE / PRIMARY KEY     index_list origin 'u'/'pk' + index_xinfo, or the rowid's
                                     alias (table_info pk) (73h planted4 1-2)
    a CHECK, a generated column      the definition's words; table_xinfo hidden 2/3 (74c
                                     planted6 2)
    AUTOINCREMENT                    the definition's word: no pragma reports it (lang_
                                     createtable.html#rowid; 74l planted8 2)
    its columns' order               table_xinfo by cid: troth writes by position (74l
                                     planted8 1); columns troth never made may follow its
                                     own, none a shape of troth's keys (75j planted9 4)
  in each column of such a table (`_COLUMN_FACTS`), compared with any troth's of its name:
    NOT NULL (a key's aside)         table_xinfo notnull, pk (74c planted6 3)
    DEFAULT                          table_xinfo dflt_value (74c planted6 4)
    its type's affinity              table_xinfo type, by datatype3.html 3.1 (74i planted7 1;
                                     a type past 4 KiB is unreadable, 75d planted 4)
    its collation                    the definition's COLLATE: no pragma reports a column's
                                     (74i planted7 2)
  and the table without one of troth's UNIQUE indexes (73h planted4 4).

Before a restore writes a table of its own (`identity_restore_holds`, ...), `check_made`
compares the copy's with troth's word for word (72k holds2 5). SQLite's names and keywords
fold ASCII only, so the definitions' words are upper-cased so too (75d planted 1-2).
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, Final, NamedTuple

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

_NAME_BYTES: Final = 4096  # names, triggers, types, defaults: troth's are ~120 bytes at most
_DEFINITION_BYTES: Final = 65536  # troth's tables are < 2 KiB; a longer one is another's
_TRIGGERS_AND_VIEWS: Final = (
    f"SELECT type, {text_sql('name', _NAME_BYTES)}, "  # noqa: S608
    f"{text_sql('sql', _NAME_BYTES)} FROM sqlite_master "
    "WHERE type IN ('trigger', 'view') ORDER BY type, name"
)
_TABLES: Final = (
    f"SELECT {text_sql('name', _NAME_BYTES)}, "  # noqa: S608
    f"{text_sql('sql', _DEFINITION_BYTES)} FROM sqlite_master WHERE type = 'table' "
    "ORDER BY name"
)
_TABLE_NAMES: Final = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
_DEFINITION: Final = (
    f"SELECT {text_sql('sql', _DEFINITION_BYTES)} FROM sqlite_master "  # noqa: S608
    "WHERE type = 'table' AND name = ?"
)
_UNIQUE_INDEXES: Final = (
    f"SELECT {text_sql('m.name', _NAME_BYTES)}, "  # noqa: S608
    f"{text_sql('m.sql', _DEFINITION_BYTES)}, m.name, m.tbl_name FROM sqlite_master AS m "
    "JOIN pragma_index_list(m.tbl_name) AS i ON i.name = m.name "
    "WHERE m.type = 'index' AND i.\"unique\" AND i.origin = 'c' ORDER BY m.name"
)
"""Each UNIQUE index made by `CREATE UNIQUE INDEX` (index_list origin 'c'): its name and
text, as read, and as SQLite names it and its table (a table's own UNIQUE is its shape's)."""
_OWN_UNIQUE: Final = (
    "SELECT origin, name FROM pragma_index_list(?) WHERE \"unique\" AND origin IN ('u', 'pk')"
)
_KEY: Final = 'SELECT name, "desc", coll FROM pragma_index_xinfo(?) WHERE key ORDER BY seqno'
"""The columns an index keys (an expression's name NULL), each's order and collation."""
_COLUMNS: Final = (
    f'SELECT name, {text_sql("type", _NAME_BYTES)}, "notnull", '  # noqa: S608
    f"{text_sql('dflt_value', _NAME_BYTES)}, pk, hidden, "
    "(SELECT \"strict\" FROM pragma_table_list(?1) WHERE schema = 'main') "
    "FROM pragma_table_xinfo(?1) ORDER BY cid"
)
"""Each column of a table, generated ones too (table_xinfo), with its table's STRICT."""
_ROWID_NAMES: Final = frozenset({"rowid", "oid", "_rowid_"})
_OWN_LEVELS: Final = (
    (("check", "generated", "autoincrement"), "a UNIQUE or PRIMARY KEY"),
    (("check", "generated"), "its AUTOINCREMENT"),
    ((), "a CHECK or generated column"),
)
"""How a table's own unlike troth's is named: the first of these it differs in, with the
kinds (`_shape`) left out of the comparison."""

_Fetch = Callable[[str, tuple[object, ...]], list[Any]]
_Unique = tuple[str, tuple[tuple[object, ...], ...], tuple[str | None, ...]]
_Own = frozenset[tuple[object, ...]]
_Facts = tuple[object, ...]
"""A column's NOT NULL, DEFAULT, affinity, collation (`_COLUMN_FACTS`)."""

_COLUMN_FACTS: Final = (
    "a NOT NULL column",
    "a column's DEFAULT",
    "a column's type",
    "a column's collation",
)
"""What a refusal names of each of a column's facts, in their order in `_Facts`. A fact None
is compared with nothing (a column not NOT NULL, or a key's); a column troth never made passes
but NOT NULL (a write naming troth's columns leaves it at its DEFAULT)."""


class _Shape(NamedTuple):
    """What of a table is compared (`_shape`): what keeps its rows unique or skips one (each
    its kind first: "pk", "u", "rowid", "check", "generated", "autoincrement"), its columns'
    names in order (folded), and each column's facts (`_COLUMN_FACTS`) by its name folded."""

    own: _Own
    order: tuple[str, ...]
    columns: dict[str, _Facts]


class _Reference(NamedTuple):
    """What troth makes, as every troth that made node.db made it: each UNIQUE index it makes
    (to its name), and each table's shapes (by its name folded)."""

    unique_indexes: dict[_Unique | None, str]
    tables: dict[str, list[_Shape]]


def _folded(name: str) -> str:
    return name.encode().lower().decode()  # SQLite's names: ASCII case folded


def _upper(text: str) -> str:
    return text.encode().upper().decode()  # SQLite's keywords and names: ASCII only


def _text(sql: object) -> str | None:
    """The text of `sql` (its bytes, from `text_sql`); None: not UTF-8, or not read."""
    try:
        return sql.decode() if isinstance(sql, bytes) else None
    except UnicodeDecodeError:
        return None


def _shape(fetch: _Fetch, table: str, *, troths: bool) -> _Shape:
    """The shape of `table` (module docstring's second and third parts), as troth made it
    (`troths`: a column is NOT NULL where it or a key refuses NULL, troth writing none to a
    key) or as a copy holds it (NOT NULL where a column not its key's refuses NULL)."""
    ((sql,),) = fetch(_DEFINITION, (table,)) or ((None,),)
    tokens = list(_tokens(_text(sql) or ""))  # a definition not UTF-8: `_clause` refuses it
    rows = fetch(_COLUMNS, (table,))
    own: set[tuple[object, ...]] = {  # its UNIQUE and PRIMARY KEY, each as an index keys it
        (origin, tuple(tuple(row) for row in fetch(_KEY, (name,))))
        for origin, name in fetch(_OWN_UNIQUE, (table,))
    }
    if not any(origin == "pk" for origin, _ in own):  # a rowid table's INTEGER PRIMARY KEY
        key = sorted((row[4], row[0]) for row in rows if row[4])
        own.add(("rowid", tuple(name for _, name in key)))
    own.update(("check", check) for check in _checks(tokens))
    generated = tuple(row[0] for row in rows if row[5] in (2, 3))  # table_xinfo hidden
    if generated:
        own.add(("generated", generated))
    if "AUTOINCREMENT" in _words(tokens):
        own.add(("autoincrement",))
    collations = _collations(tokens)
    columns: dict[str, _Facts] = {}
    for name, kind, notnull, default, pk, _, strict in rows:
        refuses_null = (notnull or pk) if troths else (notnull and not pk)
        columns[_folded(str(name))] = (
            True if refuses_null else None,
            default,
            _affinity(kind, strict=bool(strict)),
            collations.get(_folded(str(name)), "BINARY"),
        )
    return _Shape(frozenset(own), tuple(_folded(str(row[0])) for row in rows), columns)


def _unique(fetch: _Fetch, name: object, table: object, sql: object) -> _Unique | None:
    """What the UNIQUE index `name` of `table` (`sql`, its text's bytes) keeps unique, as SQLite
    applies it: its table's name folded, each key column's name, order and collation
    (index_xinfo: the column's own when the index names none), and the words of its partial
    clause (after WHERE); None: unreadable. Not its whole text: `ALTER TABLE ... RENAME`
    writes the table's name in it again, quoted (72v planted 1)."""
    text = _text(sql)
    if text is None or not isinstance(name, str) or not isinstance(table, str):
        return None
    tokens = list(_tokens(text))
    if None in tokens:  # text past its end (`_tokens`): not what SQLite applies
        return None
    where = tokens.index("WHERE") if "WHERE" in tokens else len(tokens)
    keyed = tuple(tuple(row) for row in fetch(_KEY, (name,)))
    return _folded(table), keyed, tuple(tokens[where + 1 :])


def _affinity(kind: object, *, strict: bool) -> str:
    """The affinity of a column declared with type `kind` (its text's bytes), by SQLite's rules
    (datatype3.html, 3.1); a STRICT table's ANY keeps what is written as written (BLOB's)."""
    text = _text(kind)
    if text is None:  # not UTF-8, or past 4 KiB (read as 'text'): not BLOB's (75d planted 4)
        return "unreadable"
    text = _upper(text)
    if "INT" in text:
        return "INTEGER"
    if any(word in text for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in text or not text or (strict and text == "ANY"):
        return "BLOB"
    if any(word in text for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _collations(tokens: list[str | None]) -> dict[str, str]:
    """Each column of a table's definition (its `tokens`) declared with a COLLATE, by its name
    folded, to the collation's name (unquoted, upper-cased); the last one declared, as SQLite."""
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
            found[column] = _upper(str(_column_name(tokens[i + 1])))  # its quotes taken off
    return found


def _column_name(token: str | None) -> str | None:
    """The name a column definition starts with (folded, unquoted); None: a table constraint."""
    if token is None or token in ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"):
        return None
    if token[0] in "'\"`[":
        close = "]" if token[0] == "[" else token[0]
        token = token[1:-1].replace(close * 2, close) if close != "]" else token[1:-1]
    return _folded(token)


def _checks(tokens: list[str | None]) -> Iterator[tuple[str | None, ...]]:
    """The tokens of each CHECK constraint in a table's definition (its `tokens`)."""
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


@functools.cache
def _migrated() -> _Reference:
    """What troth makes (`_Reference`): node.db as its migrations make it, before and after
    the table a store rebuilds when opened (`PENDING_BY_TICKET`: either is troth's), with the
    tables made lazily (`made_lazily`), then each table as an earlier troth made it
    (`EARLIER`). Run once a process, in memory."""
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

        indexes = fetch(_UNIQUE_INDEXES, ())
        reference = _Reference(
            {_unique(fetch, name, table, sql): name for _, sql, name, table in indexes}, {}
        )

        def made(name: str) -> None:
            shape = _shape(fetch, name, troths=True)
            shapes = reference.tables.setdefault(_folded(name), [])
            if shape not in shapes:
                shapes.append(shape)

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
        return reference
    finally:
        conn.close()


def planted(db: SqliteDatabase) -> list[str]:
    """What `db` holds that troth does not make (module docstring), each shown as its kind and
    name ("trigger 'gone'", "table 'x' (a conflict clause)"), in the order of its table."""
    encoding = db.fetch_one("PRAGMA encoding")
    found = [] if encoding == ("UTF-8",) else [f"a database encoded {_shown(encoding[0])}"]
    found += [
        f"{kind} {_shown(name)}"
        for kind, name, sql in db.fetch_all(_TRIGGERS_AND_VIEWS)
        if kind != "trigger" or sql not in _made_triggers()
    ]
    for name, sql in db.fetch_all(_TABLES):
        clause = _clause(sql)
        if clause is not None:
            found.append(f"table {_shown(name)} ({clause})")
    reference = _migrated()
    tables: dict[str, str] = {}  # troth's tables `db` holds, by their names folded
    for (name,) in db.fetch_all(_TABLE_NAMES):
        troths = reference.tables.get(_folded(name)) if isinstance(name, str) else None
        if troths is not None:
            tables[_folded(name)] = name
            found += [f"table {_shown(name)} ({what})" for what in _unlike(db, name, troths)]
    uniques: set[_Unique | None] = set()
    for shown, sql, name, table in db.fetch_all(_UNIQUE_INDEXES):
        unique = _unique(db.fetch_all, name, table, sql)
        uniques.add(unique)
        if unique not in reference.unique_indexes:
            found.append(f"index {_shown(shown)}")
    found += [
        f"table {_shown(tables[unique[0]])} (troth's UNIQUE index {index!r} gone)"
        for unique, index in reference.unique_indexes.items()
        if unique is not None and unique[0] in tables and unique not in uniques
    ]
    return found


def _unlike(db: SqliteDatabase, name: str, troths: list[_Shape]) -> Iterator[str]:
    """What of the table `name` of `db` none of `troths` (its shapes) has, as refusals name it:
    its own (keys, then AUTOINCREMENT, then CHECKs and generated columns) or, that troth's,
    its columns' order (one of the shapes with its own: the same, its start, or followed by
    columns troth never made, none named as the rowid, which `ORDER BY rowid` reads, nor one
    another of troth's shapes keys: `secret_leases` keyed by handle as the broker's first
    was, then `locator` unkeyed, 75j planted9 4); then each fact of its columns none of
    troth's of its name has."""
    copy = _shape(db.fetch_all, name, troths=False)
    keyed = _ROWID_NAMES.union(*(_keyed(made) for shape in troths for made in shape.own))
    for left_out, what in _OWN_LEVELS:
        if {made for made in copy.own if made[0] not in left_out} not in [
            {made for made in shape.own if made[0] not in left_out} for shape in troths
        ]:
            yield f"{what} not troth's"
            break
    else:
        if not any(
            copy.order[: len(shape.order)] == shape.order[: len(copy.order)]
            and not keyed & set(copy.order[len(shape.order) :])
            for shape in troths
            if shape.own == copy.own
        ):
            yield "its columns not in troth's order"
    for i, what in enumerate(_COLUMN_FACTS):
        for column, facts in copy.columns.items():
            made = [shape.columns[column][i] for shape in troths if column in shape.columns]
            if facts[i] is not None and facts[i] not in made and (made or i == 0):
                yield f"{what} not troth's"
                break


def _keyed(made: tuple[object, ...]) -> Iterator[str]:
    """The columns (names folded) one of a table's own (`_Shape.own`) keys: a PRIMARY KEY's or
    a UNIQUE's (index_xinfo rows, the name first), the rowid's alias (names); no other's."""
    if made[0] in ("pk", "u", "rowid") and isinstance(made[1], tuple):
        for column in made[1]:
            yield _folded(str(column[0] if isinstance(column, tuple) else column))


def _shown(name: object) -> str:
    return repr(name.decode(errors="replace") if isinstance(name, bytes) else str(name))


def _clause(sql: object) -> str | None:
    """What in the text of a table's definition `sql` (its bytes, from `text_sql`) says what
    a write does beyond the write (outside quotes and comments): "a conflict clause" (`ON
    CONFLICT`), "a foreign-key action" (`ON DELETE`, `ON UPDATE`), "its definition
    unreadable", "text past its definition" (`_tokens`' None: SQLite applies none of it, and
    the rest of this module would read it as the definition's; 75j planted9 1-2); None:
    nothing."""
    text = _text(sql)
    if text is None:
        return "its definition unreadable"
    tokens = list(_tokens(text))
    for first, second in itertools.pairwise(_words(tokens)):
        if first == "ON" and second in _CLAUSES:
            return _CLAUSES[second]
    return "text past its definition" if None in tokens else None


_CLAUSES: Final = {
    "CONFLICT": "a conflict clause",
    "DELETE": "a foreign-key action",
    "UPDATE": "a foreign-key action",
}


def _words(tokens: list[str | None]) -> Iterator[str]:
    """The bare words of `tokens` (`_tokens`): strings, quoted names and comments skipped; none
    past a None (`_clause` refuses a definition holding one)."""
    for token in tokens:
        if token is None:
            return
        if token[0].isalnum() or token[0] in "_$" or ord(token[0]) > 127:
            yield token


def _tokens(sql: str) -> Iterator[str | None]:
    """The tokens of the SQL text `sql` (lang_keywords.html): each bare word upper-cased
    (ASCII), each string or quoted name as written (its quotes too), each other character but
    space; comments skipped. None where SQLite's reading ends before the text's end, then no
    more: a quote never closed, a `;` or a NUL (SQLite prepares a schema row's text as a C
    string, up to its first NUL, and compiles its first statement only: what follows either
    is never applied, though written there with `PRAGMA writable_schema`; 75j planted9 1-3)."""
    sql, nul, _ = sql.partition("\0")
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == ";":
            break
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
            yield _upper(sql[i:j])
            i = j
        else:
            if not c.isspace():
                yield c
            i += 1
    if i < n or nul:
        yield None


@functools.cache
def _made_triggers() -> frozenset[bytes]:
    """The text SQLite keeps (`sqlite_master.sql`, its bytes) of each trigger troth makes."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(AUDIT_TABLE)
        for statement in AUDIT_TRIGGERS:
            conn.execute(statement)
        rows = conn.execute(_TRIGGERS_AND_VIEWS).fetchall()
        return frozenset(sql for _, _, sql in rows if isinstance(sql, bytes))
    finally:
        conn.close()


@functools.cache
def _made_table(create: str) -> tuple[str, bytes]:
    """The name of the table `create` makes, and the text SQLite keeps of it."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(create)
        ((name, sql),) = conn.execute(_TABLES).fetchall()
        return str(name, "utf-8"), bytes(sql)
    finally:
        conn.close()


_SCHEMA_ROW: Final = (
    f"SELECT type, {text_sql('sql', _NAME_BYTES)} FROM sqlite_master "  # noqa: S608
    "WHERE name = ? COLLATE NOCASE"  # SQLite's names: any case (ASCII), 72v planted 3
)


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
