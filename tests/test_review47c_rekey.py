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
from troth.storage.peers import PeerLock

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


def test_a_rekey_killed_after_its_commit_is_scrubbed_by_the_next_open(troth_home: Path) -> None:
    """Review 47c, rekey 1. A rekey killed after its re-seal committed (before the VACUUM and
    the WAL truncation) left the old KEK's sealed bytes in node.db: the next open finished the
    key file's rename and nothing else, so they stayed until the user happened to rekey again.

    Was a strict xfail until the rekey committed a mark that the scrub is owed (`vault_meta`
    row `rekey_scrub`) with its rows, and every open that has the node alone made the scrub
    (VACUUM, the WAL truncated), cleared the mark, and only then finished the rename."""
    path, blobs = make_node_with_deleted_keys(troth_home)
    old_kek = (path / "vault.key").read_bytes()
    killed = troth("vault", "rekey", "--node", "n", crash="vault.rekey.after-commit")
    assert killed.returncode == CRASH_EXIT_CODE, killed
    assert old_bytes_left(path, blobs)  # the attack's premise
    assert scrub_owed(path)
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
    assert not (path / "vault.key.new").exists()
    assert (path / "vault.key").read_bytes() != old_kek
    assert opened_under(old_kek, path) == []
    assert old_bytes_left(path, blobs) == []
    assert not scrub_owed(path)


def test_an_env_keyed_node_killed_after_the_commit_is_scrubbed_by_the_next_open(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 47c, rekey 2. A node keyed by TROTH_VAULT_KEY has no pending key file: a rekey
    killed after its commit left no trace that a scrub was owed, and no open ever made it.

    Was a strict xfail until the mark (above), which needs no key file."""
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
    assert not scrub_owed(path)


@pytest.mark.parametrize(
    ("point", "owed"),
    [
        ("vault.rekey.before-commit", False),  # rolled back with the rows
        ("vault.rekey.after-commit", True),
        ("vault.rekey.after-vacuum", True),  # scrubbed, the mark not yet cleared
        ("vault.rekey.after-scrub", False),
    ],
)
def test_the_mark_is_committed_with_the_rows_and_cleared_only_after_the_scrub(
    troth_home: Path, point: str, owed: bool
) -> None:
    path, blobs = make_node_with_deleted_keys(troth_home)
    killed = troth("vault", "rekey", "--node", "n", crash=point)
    assert killed.returncode == CRASH_EXIT_CODE, killed
    assert scrub_owed(path) is owed
    assert (path / "vault.key.new").exists()  # renamed only after the scrub, its mark cleared
    if point in ("vault.rekey.after-vacuum", "vault.rekey.after-scrub"):
        assert old_bytes_left(path, blobs) == []
    run_json("identity", "show", "agent", "--node", "n")
    assert not scrub_owed(path)
    assert not (path / "vault.key.new").exists()
    if point != "vault.rekey.before-commit":  # else the rows are the old ones, still
        assert old_bytes_left(path, blobs) == []


@pytest.mark.parametrize("point", ["vault.rekey.after-vacuum", "vault.rekey.after-scrub"])
@pytest.mark.parametrize("source", ["file", "env"])
def test_an_open_killed_while_it_finishes_the_scrub_leaves_it_for_the_next(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, point: str, source: str
) -> None:
    """The open's own steps (the scrub, the mark cleared, the rename), killed at each: the next
    open finishes them; the rename always follows the scrub."""
    if source == "env":
        monkeypatch.setenv("TROTH_VAULT_KEY", OLD_ENV)
    path, blobs = make_node_with_deleted_keys(troth_home)
    count = len(rows(path))
    args = ("--new-key-env", "NEW_VAULT_KEY") if source == "env" else ()
    monkeypatch.setenv("NEW_VAULT_KEY", NEW_ENV)
    killed = troth("vault", "rekey", "--node", "n", *args, crash="vault.rekey.after-commit")
    assert killed.returncode == CRASH_EXIT_CODE, killed
    if source == "env":
        monkeypatch.setenv("TROTH_VAULT_KEY", NEW_ENV)
    opened = troth("identity", "list", "--node", "n", crash=point)
    assert opened.returncode == CRASH_EXIT_CODE, opened
    assert old_bytes_left(path, blobs) == []
    assert scrub_owed(path) is (point == "vault.rekey.after-vacuum")
    assert (path / "vault.key.new").exists() is (source == "file")  # not renamed yet
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
    assert not scrub_owed(path)
    assert not (path / "vault.key.new").exists()
    kek = bytes.fromhex(NEW_ENV) if source == "env" else (path / "vault.key").read_bytes()
    assert len(opened_under(kek, path)) == count
    assert old_bytes_left(path, blobs) == []


@pytest.mark.parametrize("source", ["file", "env"])
def test_an_open_that_does_not_have_the_node_alone_opens_and_leaves_the_scrub_owed(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """Another process has the node open (its shared hold on node.db.vault): an open cannot
    scrub (its reads would keep the WAL from being emptied), and does not wait (a running
    node holds the node open for as long as it runs). It opens, the scrub still owed; a node
    with vault.key has its rename finished (it must open with one key file). The first open
    that has the node alone scrubs."""
    if source == "env":
        monkeypatch.setenv("TROTH_VAULT_KEY", OLD_ENV)
    path, blobs = make_node_with_deleted_keys(troth_home)
    args = ("--new-key-env", "NEW_VAULT_KEY") if source == "env" else ()
    monkeypatch.setenv("NEW_VAULT_KEY", NEW_ENV)
    killed = troth("vault", "rekey", "--node", "n", *args, crash="vault.rekey.after-commit")
    assert killed.returncode == CRASH_EXIT_CODE, killed
    if source == "env":
        monkeypatch.setenv("TROTH_VAULT_KEY", NEW_ENV)
    other = PeerLock(path / "node.db.vault")  # another process's open node
    try:
        assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
        assert scrub_owed(path)
        assert old_bytes_left(path, blobs)
        assert not (path / "vault.key.new").exists()
    finally:
        other.close()
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
    assert not scrub_owed(path)
    assert old_bytes_left(path, blobs) == []


def test_a_scrub_that_fails_in_an_open_is_owed_still_and_the_node_opens(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rekey whose scrub fails (a reader kept the WAL from being emptied) reports it
    (`scrubbed` False: since review 63h, rekey 1, not as a failure, the re-seal committed) and
    leaves the mark, the switch to the new key made; an open whose scrub fails opens all the
    same, the mark kept; the next open whose scrub succeeds clears it."""
    path, blobs = make_node_with_deleted_keys(troth_home)
    with monkeypatch.context() as patched:
        patched.setattr(SqliteDatabase, "truncate_wal", lambda self: False)
        owed = run_json("vault", "rekey", "--node", "n")
        assert owed["scrubbed"] is False
        assert scrub_owed(path)
        assert not (path / "vault.key.new").exists()  # the node opens with one key file
        assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
        assert scrub_owed(path)
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
    assert not scrub_owed(path)
    assert old_bytes_left(path, blobs) == []
