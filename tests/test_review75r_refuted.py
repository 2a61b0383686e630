"""Review 75r: attacks that did not work on 75j's reading of schema texts
(troth.storage.planted) and on the log identity of a node's trace log opened, bound and
declared lost at once (troth.trace.log_identity)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backups import planted_at
from tests.support.cli import run
from tests.support.killed import killed_after
from tests.test_review73a_planted3 import edited_node_db
from tests.test_review75r_schema import CLOCK, racing_reads
from troth.errors import StorageError
from troth.faults import CRASH_EXIT_CODE
from troth.node import open_node, troth_home
from troth.storage import SqliteDatabase
from troth.trace import open_node_log
from troth.trace.log_identity import node_log_identity

_NO_AUTOINCREMENT = (
    "DROP TABLE feed_syncs_due",
    "CREATE TABLE feed_syncs_due (id INTEGER PRIMARY KEY, authority BLOB NOT NULL, "
    "address TEXT NOT NULL, marked_at INTEGER NOT NULL)",
    "CREATE INDEX feed_syncs_due_authority ON feed_syncs_due (authority)",
)
"""`feed_syncs_due` without troth's AUTOINCREMENT (74l planted8 2)."""


def _appended(words: str, name: str = "feed_syncs_due") -> tuple[str, str]:
    return (
        "PRAGMA writable_schema = ON",
        f"UPDATE sqlite_master SET sql = sql || {words} WHERE name = '{name}'",  # noqa: S608
    )


@pytest.mark.parametrize(
    "words", ["' /* AUTOINCREMENT'", "' -- x' || char(13) || ' AUTOINCREMENT'"]
)
def test_a_comment_to_the_texts_end_hides_no_word(tmp_path: Path, words: str) -> None:
    """Tried: `AUTOINCREMENT` after a table's `)`, in a `/*` comment never closed or a `--`
    comment with no newline (a CR is not one): SQLite reads both to the text's end and opens
    the copy; `planted` skips them as SQLite does, and refuses the AUTOINCREMENT it lacks."""
    path = edited_node_db(tmp_path, *_NO_AUTOINCREMENT, *_appended(words))
    assert planted_at(path) == ["table 'feed_syncs_due' (its AUTOINCREMENT not troth's)"]


@pytest.mark.parametrize("comment", ["' /* a note'", "' /* ; */ -- ;'"])
def test_a_comment_after_troths_table_passes(tmp_path: Path, comment: str) -> None:
    """Tried: a comment after troth's own table's `)` (SQLite keeps a CREATE's text as written,
    comments too), a `;` in it: nothing past its definition is read, the copy is troth's."""
    path = edited_node_db(tmp_path, *_appended(comment))
    assert planted_at(path) == []


@pytest.mark.parametrize(
    "edit",
    [
        "sql = NULL",
        "name = 'zz'",
        "name = 'zz', tbl_name = 'zz'",
        "tbl_name = 'zz'",
        "type = 'view'",
    ],
)
def test_a_schema_row_unlike_its_text_is_not_opened(tmp_path: Path, edit: str) -> None:
    """Tried: `feed_syncs_due`'s row in sqlite_master with no text (an autoindex's NULL), or its
    name, table name or type unlike its text's, so `planted` would compare another table or
    none: SQLite refuses to read the schema (`malformed database schema`), node.db is not
    opened."""
    path = edited_node_db(
        tmp_path,
        *_NO_AUTOINCREMENT,
        "PRAGMA writable_schema = ON",
        f"UPDATE sqlite_master SET {edit} WHERE name = 'feed_syncs_due'",  # noqa: S608
    )
    with pytest.raises(StorageError, match="malformed database schema"):
        SqliteDatabase(path)


@pytest.mark.parametrize(
    "point",
    [
        "identity.create.after-commit",
        "trace.log-identity.after-reserve",
        "trace.log-identity.before-bind",
    ],
)
def test_an_opening_killed_while_another_opens(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    """Tried: a first opening of a node's log, and another process's killed at each of its
    crash points between the first's read of trace.db (nothing bound) and its write lock on
    node.db: the first binds the killed one's reservation when node.db holds it (killed after
    its commit), else makes its own; the log is never named damaged, and a later opening finds
    the same log identity."""
    run("node", "create", "n")
    with open_node("n", home=troth_home()) as node, open_node_log(node, clock=CLOCK) as log:
        with log.store.transaction():  # a first opening's log again: nothing bound nor made
            log.store.execute("DELETE FROM meta WHERE name = 'log_identity'")
        with node.db.transaction():
            node.db.execute("DELETE FROM trace_log_identities")

        def killed_opening() -> None:  # another process's first opening
            with open_node("n", home=troth_home()) as other, open_node_log(other, clock=CLOCK):
                pass

        codes: list[int] = []
        racing_reads(
            monkeypatch, log.store, lambda: codes.append(killed_after(0, killed_opening, point))
        )
        made = node_log_identity(node, log.store, now=CLOCK.now())
        assert codes == [CRASH_EXIT_CODE]
        monkeypatch.undo()
        assert node_log_identity(node, log.store, now=CLOCK.now()) == made
