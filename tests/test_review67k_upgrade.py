"""Review 67k: migration 19 (`troth.storage.raised_times`: the rollback guard's raise time moved
from the old `rollback_raised` table into its count's row), seen by review 67h.

upgrade 1. The migration set each scope's time to SQLite's `max()` of the count row's time and
   the old table's, and SQLite orders every TEXT value after every number: a text time in either
   (node.db edited, or a value no troth wrote) beat the real integer time in the other, was
   stored in `raised_at`, and read as no time at all (`COUNT_READ` takes integers only, review
   66z, upgrade 2): the scope's raise time, kept to judge a restored node.db, was lost. Only
   integer times are compared now; a scope with none keeps none.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from troth.storage.raised_times import COUNT_READ, keep_raise_times_in_counts

TIME = 1_790_000_000


def _before(path: Path, counted: object, legacy: object) -> sqlite3.Connection:
    """A node.db's two tables as a troth before schema 19 left them next to one that ran the
    migration once (a count row with its time, and the old table made again)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE rollback_counters (scope TEXT PRIMARY KEY, counter INTEGER NOT NULL, "
        "raised_at INTEGER)"
    )
    conn.execute("INSERT INTO rollback_counters VALUES ('identity', 3, ?)", (counted,))
    conn.execute(
        "CREATE TABLE rollback_raised (scope TEXT PRIMARY KEY, raised_at INTEGER NOT NULL) "
        "WITHOUT ROWID"
    )
    conn.execute("INSERT INTO rollback_raised VALUES ('identity', ?)", (legacy,))
    return conn


@pytest.mark.parametrize(
    ("counted", "legacy", "kept"),
    [
        (TIME, "later", TIME),  # a text time in the old table beat the count row's
        ("later", TIME, TIME),  # and a text time in the count row beat the old table's
        (TIME, TIME + 5, TIME + 5),  # (integers: the later, as before)
        (None, TIME, TIME),
        (None, "later", None),  # no integer time anywhere: none
    ],
)
def test_a_text_time_does_not_beat_an_integer_one(
    tmp_path: Path, counted: object, legacy: object, kept: int | None
) -> None:
    """Upgrade 1: the integer time is kept (it was replaced by the text, read as none)."""
    conn = _before(tmp_path / "node.db", counted, legacy)
    keep_raise_times_in_counts(conn)
    assert conn.execute(COUNT_READ, ("identity",)).fetchone() == (3, kept)
    conn.close()
