"""Review 53f, node home: node.json's `kek_source` is read by two rules that disagree on a
value that is neither "env" nor "file" (a hand edit: "File", "file ", "env-var").

`_load_kek` takes anything but "env" for the key file, `_check_database_kept` and `troth
vault rekey` anything but "file" for the environment. So a node.json saying `"kek_source":
"File"` was accepted: its vault.key beside a deleted node.db no longer stopped the open (the
node started afresh on an empty database, review 44d's guard skipped), and `troth vault
rekey --new-key-env VAR` re-sealed every key under the new key without writing it to
vault.key, which the next open still read: the vault opened nowhere (every key lost but by
hand). Now such a value is refused when node.json is read (ConfigError, exit 3)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import run
from troth.errors import ConfigError, StorageError
from troth.node.node import init_node, open_node
from troth.node.rekey import rekey_vault


def _set_kek_source(home: Path, name: str, value: str) -> None:
    path = home / "nodes" / name / "node.json"
    config = json.loads(path.read_bytes())
    config["kek_source"] = value
    path.write_text(json.dumps(config))
    os.chmod(path, 0o600)


def test_an_unknown_kek_source_is_refused_not_read_two_ways(troth_home: Path) -> None:
    """node home 1: the guard of a deleted node.db beside its vault.key held for "file" only."""
    init_node("n1")
    with open_node("n1") as node:
        node.identities.create(now=1_800_000_000, name="agent")
    _set_kek_source(troth_home, "n1", "File")
    database = troth_home / "nodes" / "n1" / "node.db"
    for leftover in (database, database.with_name("node.db-wal")):
        leftover.unlink(missing_ok=True)
    with pytest.raises(ConfigError, match="kek_source"):
        open_node("n1").close()
    assert not database.exists()  # no fresh database made beside the key that sealed the old


def test_a_rekey_of_an_unknown_kek_source_is_refused_before_any_reseal(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node home 1: the rekey re-sealed under a key it wrote nowhere the node reads."""
    init_node("n1")
    with open_node("n1") as node:
        node.identities.create(now=1_800_000_000, name="agent")
    _set_kek_source(troth_home, "n1", "file ")
    with pytest.raises(ConfigError, match="kek_source"):
        rekey_vault("n1", new_kek=bytes(range(32)))
    _set_kek_source(troth_home, "n1", "file")
    with open_node("n1") as node:  # every key still opens under vault.key
        assert node.identities.get("agent", now=1_800_000_000).identity.change_count == 1


def _damage_schema(database: Path) -> None:
    """A node.db whose schema holds bytes that are not UTF-8 (a disk error, a bad copy): SQLite's
    error for it quotes them, and Python's sqlite3 raises UnicodeDecodeError decoding it."""
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        (name,) = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' LIMIT 1"
        ).fetchone()
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_master SET name = CAST(X'ff74' AS TEXT), "
            "sql = CAST(X'435245415445205441424c45ff2028' AS TEXT) WHERE name = ?",
            (name,),
        )
    finally:
        conn.close()


def test_a_node_db_damaged_in_its_schema_is_a_storage_error(troth_home: Path) -> None:
    """node home 2: a node.db whose schema is damaged failed with the UnicodeDecodeError of
    Python's sqlite3 (a ValueError: exit 2, "usage", the message naming no file), where the
    exit code table says 4 (the database failed) and every other damage says so."""
    init_node("n1")
    with open_node("n1") as node:
        node.identities.create(now=1_800_000_000, name="agent")
    database = troth_home / "nodes" / "n1" / "node.db"
    _damage_schema(database)
    with pytest.raises(StorageError, match=r"node\.db"):
        open_node("n1").close()
    result = run("identity", "list", "--node", "n1", code=4)
    assert "node.db" in result.stderr


def test_no_fresh_vault_key_is_written_beside_sealed_keys_without_a_check(
    troth_home: Path,
) -> None:
    """node home 3: `_load_kek` judged "the vault holds sealed keys" by the key check row
    alone (review 38c, vault 1), so a node.db holding sealed keys but no check row (a restore
    without `vault_meta`, the case of review 45d, vault 1) beside a missing vault.key got a
    fresh random vault.key written, and the open then said that this key does not open the
    vault: the damage (a missing key file) was reported as a wrong key, and a key that opens
    nothing was left where the real one is to be restored."""
    init_node("n1")
    with open_node("n1") as node:
        node.identities.create(now=1_800_000_000, name="agent")
    path = troth_home / "nodes" / "n1"
    kept = (path / "vault.key").read_bytes()
    (path / "vault.key").unlink()
    conn = sqlite3.connect(path / "node.db", isolation_level=None)
    try:
        conn.execute("DELETE FROM vault_meta WHERE name = 'kek_check'")
    finally:
        conn.close()
    with pytest.raises(ConfigError, match=r"vault\.key is missing"):
        open_node("n1").close()
    assert not (path / "vault.key").exists()
    (path / "vault.key").write_bytes(kept)  # the real key restored: the node opens
    os.chmod(path / "vault.key", 0o600)
    with open_node("n1") as node:
        assert node.identities.get("agent", now=1_800_000_000).identity.change_count == 1
