"""Review 46h: `troth vault rekey` (troth.node.rekey) attacked from the node directory: what a
file planted beside the keys, by someone who can write there but holds no KEK, does to every
open of the node (docs/vault.md, "Changing the vault key")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run, run_json


def make_node(home: Path) -> Path:
    run("node", "create", "n")
    run("identity", "create", "agent", "--node", "n")
    return home / "nodes" / "n"


def test_a_directory_planted_as_the_pending_key_is_a_clear_config_error(
    troth_home: Path,
) -> None:
    """Review 46h, rekey 1. Every open of a node with vault.key settles a `vault.key.new` it
    finds: when vault.key opens the key check, the pending key is unlinked. A directory planted
    there (by anyone who can write the node directory) made that unlink raise a bare
    IsADirectoryError from every open and from `troth vault rekey` (exit 4, "[Errno 21]"), with
    no word of what the file is or what to do. A pending key a rekey left is always a regular
    file (written by rename): anything else is now a ConfigError naming it (exit 3), vault.key
    untouched.

    Was a strict xfail until `settle_pending_key` refused a `vault.key.new` that is not a
    regular file (lstat: a symbolic link included)."""
    path = make_node(troth_home)
    kek = (path / "vault.key").read_bytes()
    (path / "vault.key.new").mkdir()
    for args in (("identity", "list"), ("vault", "rekey")):
        failed = run_json(*args, "--node", "n", code=3)
        assert failed["error"] == "ConfigError"
        assert "vault.key.new" in failed["message"]
        assert "remove it" in failed["message"]
    assert (path / "vault.key").read_bytes() == kek
    (path / "vault.key.new").rmdir()
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"


_OPEN = """
import sys
from troth.node import open_node
from troth.errors import TrothError
try:
    open_node("n").close()
except TrothError as exc:
    print(type(exc).__name__, exc)
    sys.exit(3)
print("opened")
"""


@pytest.mark.parametrize("name", ["node.db.vault", "node.db.vault.gate"])
def test_a_fifo_planted_as_the_vault_lock_file_hangs_no_open(troth_home: Path, name: str) -> None:
    """Review 46h, rekey 2. Every open of a node holds `node.db.vault` shared (so a rekey runs
    alone); the lock file was opened for appending, waiting: a FIFO planted in its place (by
    anyone who can write the node directory) hung every command on the node for good, as one at
    node.json did before review 46b, home 1. A lock file is now opened without waiting, and
    one that is not a regular file, or is a symbolic link (an O_CREAT through a dangling one
    made a file wherever it pointed), is a StorageError naming it.

    Was a strict xfail until troth.storage.peers opened its lock files with O_NONBLOCK and
    O_NOFOLLOW and refused any but a regular file. The same for the gate every open of the
    node now opens beside it (review 47j, peers 3: troth.storage.peers)."""
    path = make_node(troth_home)
    lock = path / name
    lock.unlink()
    os.mkfifo(lock, 0o600)
    env = dict(os.environ, PYTHONPATH="src")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _OPEN], capture_output=True, text=True, timeout=20, env=env
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the open hung on the FIFO")
    assert done.returncode == 3, done
    assert done.stdout.startswith("StorageError")
    assert name in done.stdout
    lock.unlink()
    elsewhere = troth_home / "made-through-the-link"
    lock.symlink_to(elsewhere)
    done = subprocess.run(
        [sys.executable, "-c", _OPEN], capture_output=True, text=True, timeout=20, env=env
    )
    assert done.returncode == 3, done
    assert not elsewhere.exists()
    lock.unlink()
    lock.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _OPEN], capture_output=True, text=True, timeout=20, env=env
    )
    assert done.returncode == 3, done
    assert name in done.stdout
