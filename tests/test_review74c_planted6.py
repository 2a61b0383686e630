"""Review 74c, planted6: a restore found compares the tables troth makes lazily, outside its
migrations, as it compares the migrations' (73h planted4 3), and what beside a key makes
`INSERT OR IGNORE` skip a row (docs/storage.md, "Rollback guard")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import troth
from tests.support.backups import planted_at
from tests.test_review73a_planted3 import edited_node_db
from troth.secrets import store_schema
from troth.secrets.lease import LeaseState
from troth.secrets.store import SqliteSecretStore
from troth.storage import SqliteDatabase
from troth.storage.lazy_tables import EARLIER, made_lazily
from troth.storage.planted import _made_table, _migrated, planted
from troth.storage.sqlite_stores import SqliteIdentityStore

_SRC = Path(troth.__file__).parent
_RETIRED = "CREATE TABLE retired_keys (handle TEXT PRIMARY KEY{}) WITHOUT ROWID"


def _planted(tmp_path: Path, *statements: str) -> list[str]:
    """What `planted` finds in a new node.db with `statements` run on it."""
    tmp_path.mkdir()
    return planted_at(edited_node_db(tmp_path, *statements))


def test_every_table_made_lazily_is_compared() -> None:
    """74c planted6 1: every table troth makes with `CREATE TABLE IF NOT EXISTS` anywhere in
    its source is one a restore found compares (the migrations' or the registry's,
    troth.storage.lazy_tables): a module making a new one must register it."""
    made = {
        name.lower()
        for path in _SRC.rglob("*.py")
        for name in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", path.read_text())
    }
    assert made - {"rollback_raised"} - set(_migrated()[1]) == set()
    assert "trace_outbox_held" in made


def test_each_shape_troth_made_of_a_lazily_made_table_passes(tmp_path: Path) -> None:
    """74c planted6 1, no false refusal: a node.db holding every table troth makes lazily,
    as it makes them now, holds nothing planted; nor one holding them as an earlier troth made
    them (the broker's first `secret_leases`, keyed by its handle, its chains' table holding
    their bytes: the git history of each statement; 74l: its second, each in a node.db of its
    own, two being `secret_leases`)."""
    assert _planted(tmp_path / "now", *made_lazily()) == []
    for i, earlier in enumerate(EARLIER):
        drop = f"DROP TABLE {_made_table(earlier)[0]}"
        assert _planted(tmp_path / f"earlier{i}", *made_lazily(), drop, earlier) == []


_GENERATED = "a CHECK or generated column not troth's"


@pytest.mark.parametrize(
    ("clause", "found"),
    [
        (" CHECK (handle < 'vault-m')", [_GENERATED]),
        (
            ", g GENERATED ALWAYS AS (iif(handle < 'vault-m', 1, NULL)) NOT NULL",
            [_GENERATED, "a NOT NULL column not troth's"],
        ),
    ],
)
def test_a_constraint_beside_the_key_does_not_skip_a_retired_key(
    tmp_path: Path, clause: str, found: list[str]
) -> None:
    """74c planted6 2: a copy holding `retired_keys` made with its key as troth's but a CHECK
    (or a generated column NOT NULL) refusing some handles: troth records a retired vault key
    with `INSERT OR IGNORE`, which skips a row a CHECK or NOT NULL refuses as it skips a
    duplicate, so the key `vault-z` was never recorded retired (73h compared the keys only).
    A table troth makes whose CHECKs or generated columns are not troth's is refused."""
    path = edited_node_db(tmp_path, "DROP TABLE retired_keys", _RETIRED.format(clause))
    db = SqliteDatabase(path)
    try:
        store = SqliteIdentityStore(db)
        store.add_retired_keys(["vault-a", "vault-z"])
        assert store.retired_keys(10) == ["vault-a"]  # vault-z skipped
        assert planted(db) == [f"table 'retired_keys' ({what})" for what in found]
    finally:
        db.close()


def test_a_not_null_column_planted_does_not_skip_a_refuted_change(tmp_path: Path) -> None:
    """74c planted6 3: a copy holding `refuted_changes` made with troth's key and an added
    column `x INTEGER NOT NULL` (no default): troth records a change shown made up with
    `INSERT OR IGNORE` naming its columns, which skips the row the NOT NULL refuses, so the
    authority's word on that identity was no longer kept out. A table troth makes with a NOT
    NULL column no troth gave it NOT NULL is refused."""
    path = edited_node_db(
        tmp_path,
        "DROP TABLE refuted_changes",
        "CREATE TABLE refuted_changes (identifier BLOB NOT NULL, idx INTEGER NOT NULL, "
        "change_hash BLOB NOT NULL, copy_seq INTEGER NOT NULL DEFAULT 0, x INTEGER NOT NULL, "
        "PRIMARY KEY (identifier, idx, change_hash)) WITHOUT ROWID",
    )
    db = SqliteDatabase(path)
    try:
        SqliteIdentityStore(db).add_refuted(b"\x01" * 32, [(1, b"\x02" * 32)])
        assert db.fetch_one("SELECT count(*) FROM refuted_changes") == (0,)  # skipped
        assert planted(db) == ["table 'refuted_changes' (a NOT NULL column not troth's)"]
    finally:
        db.close()


def test_a_default_planted_does_not_keep_a_revocation_from_coming_due(tmp_path: Path) -> None:
    """74c planted6 4: a copy holding `secret_leases` as troth makes it but `retry_at`
    defaulting to 9e18 (troth's: 0, due now): a lease troth writes after the restore
    (`INSERT_LEASE` names no `retry_at`) and then revokes is due only at `retry_at` (a broker
    restarted with it PENDING, or killed before its upstream revocation, finds it through
    `due_revocations`), so its upstream credential was never revoked. A table troth makes
    whose column defaults to what no troth gave it is refused."""
    leases = next(s for s in store_schema._SCHEMA if "secret_leases (" in s)
    planted_leases = leases.replace(
        "retry_at INTEGER NOT NULL DEFAULT 0", "retry_at INTEGER NOT NULL DEFAULT 9e18"
    )
    assert planted_leases != leases
    db = SqliteDatabase(edited_node_db(tmp_path, planted_leases))
    try:
        store = SqliteSecretStore(db)
        row = (1, b"\x01" * 16, *(b"\x02" * 32,) * 2, "s", "e", "", *(b"\x03" * 32,) * 2)
        revoking = (1, 2, 1, 1, 2, int(LeaseState.REVOKING), 1, b"")
        db.execute(store_schema.INSERT_LEASE[(False, False)], (*row, *revoking))
        assert store.due_revocations(10, limit=10) == []  # never due
        assert planted(db) == ["table 'secret_leases' (a column's DEFAULT not troth's)"]
    finally:
        db.close()
