"""Review 63h, rekey: `troth vault rekey` (troth.node.rekey) attacked after its commit.

rekey 1: a rekey whose scrub failed after the re-seal committed (a process reading node.db
kept its write-ahead log from being emptied: a backup tool, `sqlite3`, a monitor; or a VACUUM
that found the disk full) raised StorageError (exit 4, "its write-ahead log could not be
emptied (busy)") though every key was already sealed under the new key. On a node whose key is
TROTH_VAULT_KEY nothing said so: the operator, told the rekey failed, kept the old key (which
opens nothing any more) and may well have thrown the new one away (a script that stores it only
when the rekey succeeds), and with it every key of the node. The scrub is now owed as an open
that cannot scrub leaves it (the mark committed with the rows: the next open that has the node
alone makes it); the rekey finishes the switch and reports success, `scrubbed` False, the CLI
saying what is left to do.

rekey 2: the rekey's re-seal of the broker's blobs (troth.secrets.reseal) read every upstream
secret of node.db into memory at once (its name, configuration and sealed value: up to 32 KiB
each, `MAX_SECRET_CONFIG_BYTES` and `MAX_SECRET_VALUE_BYTES`, no bound on their number), where
the vault's own re-seal reads its rows a chunk at a time (`SoftwareVault.rekey`): a broker of
10,000 secrets held some 300 MB. The secrets are now read and re-sealed a chunk at a time.

rekey 3: two opens settling one killed rekey's switch at once (the daemon's start and a
command): the one that read vault.key (the old key), then the pending key, judged the pending
key's tag by vault.key read again, which the other open had meanwhile replaced with the pending
key itself; the tag did not match, and the open failed with ConfigError ("no rekey under
vault.key made it (node.db written by someone without the vault key?)") on a node nothing was
wrong with. The tag is now judged by the vault.key the open read first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.test_review47c_rekey import scrub_owed
from tests.test_review62i_rekey import blobs, broker, broker_node, opens, seal_values
from tests.test_vault_rekey import make_node, opened_under, troth
from troth.faults import CRASH_EXIT_CODE
from troth.node import rekey as node_rekey
from troth.node.home import read_private_file
from troth.node.rekey import rekey_vault
from troth.secrets.upstreams import secret_aad
from troth.storage import SqliteDatabase

OLD, NEW = "11" * 32, "22" * 32


@contextmanager
def reader(path: Path) -> Iterator[None]:
    """A process's read transaction on node.db (not a troth open: no `node.db.vault` held),
    kept for the block: the WAL cannot be emptied meanwhile."""
    conn = sqlite3.connect(path / "node.db")
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM vault_keys").fetchone()
        yield
    finally:
        conn.close()


@pytest.mark.parametrize("source", ["env", "file"])
def test_a_rekey_whose_scrub_a_reader_blocks_reports_success_and_leaves_the_scrub_owed(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """rekey 1: the rekey succeeds with the scrub owed; the node opens under the new key only
    (from vault.key, or TROTH_VAULT_KEY set to it); the next open alone scrubs."""
    if source == "env":
        monkeypatch.setenv("TROTH_VAULT_KEY", OLD)
    path = make_node(troth_home)
    old = bytes.fromhex(OLD) if source == "env" else (path / "vault.key").read_bytes()
    monkeypatch.setenv("NEW_VAULT_KEY", NEW)
    given = ["--new-key-env", "NEW_VAULT_KEY"] if source == "env" else []
    with reader(path):
        done = run_json("vault", "rekey", "--node", "n", *given)
        assert done["scrubbed"] is False
        assert scrub_owed(path)
    assert not (path / "vault.key.new").exists()  # the switch is finished: one key file
    new = bytes.fromhex(NEW) if source == "env" else (path / "vault.key").read_bytes()
    assert new != old
    assert opened_under(old, path) == []
    if source == "env":
        run("identity", "show", "agent", "--node", "n", code=3)  # the old key opens nothing
        monkeypatch.setenv("TROTH_VAULT_KEY", NEW)
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
    assert not scrub_owed(path)  # that open had the node alone
    assert len(opened_under(new, path)) >= 2


SECRETS = 1200
"""More upstream secrets than one read of the re-seal may hold (1000 rows, as the vault's)."""


def test_the_brokers_secrets_are_resealed_a_chunk_at_a_time(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rekey 2: no read during the rekey returns more than 1000 rows, and every one of the
    broker's SECRETS secrets opens under its seal key's new value afterwards (under no old)."""
    path = broker_node(troth_home)
    with broker() as opened:
        record = opened.store.get_secret("orders-api")
        assert record is not None
        key, engine, config = opened.keys.seal_key, record.engine, record.config
        rows = []
        for at in range(SECRETS):
            name = f"s{at:05d}"
            value = f"Bearer {at}".encode()
            sealed = opened.vault.seal(key, value, secret_aad(name, engine, config))
            rows.append((name, engine, config, sealed, 1))
        with opened.store.transaction():
            opened.store.db.execute_many("INSERT INTO secret_store VALUES (?, ?, ?, ?, ?)", rows)
    old = seal_values(path, (path / "vault.key").read_bytes())
    most = 0
    fetch_all = SqliteDatabase.fetch_all

    def counted(self: SqliteDatabase, *args: object, **kwargs: object) -> list[object]:
        nonlocal most
        found = fetch_all(self, *args, **kwargs)  # type: ignore[arg-type]
        most = max(most, len(found))
        return found

    with monkeypatch.context() as patched:
        patched.setattr(SqliteDatabase, "fetch_all", counted)
        rekey_vault("n", home=troth_home)
    assert most <= 1000
    new = seal_values(path, (path / "vault.key").read_bytes())
    key, after = blobs(path)
    assert len(after) == SECRETS + 3
    assert all(opens(new[key.key_id][0], key, *blob) for blob in after)
    assert not any(opens(old[key.key_id][0], key, *blob) for blob in after)


def test_two_opens_settling_one_killed_rekey_at_once_both_open(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rekey 3: this open reads vault.key (the old key, which opens no key check), then
    vault.key.new; the other open renames it over vault.key right then. This one opens."""
    path = make_node(troth_home)
    killed = troth("vault", "rekey", "--node", "n", crash="vault.rekey.after-scrub")
    assert killed.returncode == CRASH_EXIT_CODE, killed
    new = (path / "vault.key.new").read_bytes()

    def other_open_renames(file: Path) -> bytes:
        data = read_private_file(file)
        if file.name == "vault.key.new":  # the other open finishes the switch meanwhile
            (path / "vault.key.new").replace(path / "vault.key")
        return data

    monkeypatch.setattr(node_rekey, "read_private_file", other_open_renames)
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
    assert (path / "vault.key").read_bytes() == new
    assert not (path / "vault.key.new").exists()
