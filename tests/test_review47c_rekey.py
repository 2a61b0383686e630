"""Review 47c: `troth vault rekey` (troth.node.rekey) killed between the re-seal's commit and
the end of its scrub (node.db vacuumed, its write-ahead log truncated: docs/vault.md,
"Changing the vault key"). The re-sealed rows are committed, but node.db's free pages (rows
deleted before the rekey) and its older page versions still hold bytes sealed under the old
KEK, which a stolen backup holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.test_vault_rekey import node_path, opened_under, rows, troth
from troth.faults import CRASH_EXIT_CODE
from troth.storage import SqliteDatabase

OLD_ENV, NEW_ENV = "11" * 32, "22" * 32


def make_node_with_deleted_keys(home: Path) -> tuple[Path, list[bytes]]:
    """A node whose node.db holds, besides its rows, the sealed bytes of rows deleted as most
    SQLite builds delete (secure_delete off: left in free pages); every sealed blob it held."""
    run("node", "create", "n")
    run("identity", "create", "agent", "--node", "n")
    path = node_path(home)
    kept = {number for number, *_ in rows(path)}
    run("identity", "create", "spare", "--node", "n")
    blobs = [sealed for *_, sealed in rows(path)]
    db = SqliteDatabase(path / "node.db")
    db.connection().execute("PRAGMA secure_delete = OFF")
    for number, *_ in rows(path):
        if number not in kept:
            db.execute("DELETE FROM vault_keys WHERE key_id = ?", (number,))
    check = db.fetch_one("SELECT value FROM vault_meta WHERE name = 'kek_check'")
    db.close()
    return path, [*blobs, bytes(check[0])]


def old_bytes_left(path: Path, blobs: list[bytes]) -> list[str]:
    """The files of node.db (the database, its write-ahead log) holding a sealed blob's
    ciphertext from before the rekey."""
    found = []
    for name in ("node.db", "node.db-wal"):
        file = path / name
        if file.exists():
            data = file.read_bytes()
            found += [name for blob in blobs if blob[13:] in data]
    return found


def scrub_owed(path: Path) -> bool:
    db = SqliteDatabase(path / "node.db")
    try:
        return db.fetch_one("SELECT 1 FROM vault_meta WHERE name = 'rekey_scrub'") is not None
    finally:
        db.close()


@pytest.mark.xfail(
    strict=True,
    reason="review 47c, rekey 1: an open after a rekey killed past its commit does not scrub",
)
def test_a_rekey_killed_after_its_commit_is_scrubbed_by_the_next_open(troth_home: Path) -> None:
    """Review 47c, rekey 1. A rekey killed after its re-seal committed (before the VACUUM and
    the WAL truncation) left the old KEK's sealed bytes in node.db: the next open finished the
    key file's rename and nothing else, so they stayed until the user happened to rekey again.
    """
    path, blobs = make_node_with_deleted_keys(troth_home)
    old_kek = (path / "vault.key").read_bytes()
    killed = troth("vault", "rekey", "--node", "n", crash="vault.rekey.after-commit")
    assert killed.returncode == CRASH_EXIT_CODE, killed
    assert old_bytes_left(path, blobs)  # the attack's premise
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
    assert not (path / "vault.key.new").exists()
    assert (path / "vault.key").read_bytes() != old_kek
    assert opened_under(old_kek, path) == []
    assert old_bytes_left(path, blobs) == []


@pytest.mark.xfail(
    strict=True,
    reason="review 47c, rekey 2: a TROTH_VAULT_KEY node records no scrub owed at all",
)
def test_an_env_keyed_node_killed_after_the_commit_is_scrubbed_by_the_next_open(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 47c, rekey 2. A node keyed by TROTH_VAULT_KEY has no pending key file: a rekey
    killed after its commit left no trace that a scrub was owed, and no open ever made it."""
    monkeypatch.setenv("TROTH_VAULT_KEY", OLD_ENV)
    path, blobs = make_node_with_deleted_keys(troth_home)
    monkeypatch.setenv("NEW_VAULT_KEY", NEW_ENV)
    killed = troth(
        "vault", "rekey", "--node", "n", "--new-key-env", "NEW_VAULT_KEY",
        crash="vault.rekey.after-commit",
    )  # fmt: skip
    assert killed.returncode == CRASH_EXIT_CODE, killed
    assert old_bytes_left(path, blobs)
    monkeypatch.setenv("TROTH_VAULT_KEY", NEW_ENV)
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
    assert opened_under(bytes.fromhex(OLD_ENV), path) == []
    assert old_bytes_left(path, blobs) == []
