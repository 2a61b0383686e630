"""`troth vault rekey`: a software vault re-sealed under a new KEK (docs/vault.md, "Recovering
from a stolen backup").

A copy of a node directory holds `vault.key`. `troth identity rotate --compromised` makes keys
no copy holds, but seals them under that same KEK: a later copy of node.db alone (what the
threat model otherwise survives) yields them to the thief. The rekey re-seals every row under a
fresh KEK, crash-safely (a kill at each step leaves a node that opens with exactly one KEK and
every key), and leaves no row or byte sealed under the old one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import SoftHsm
from tests.support.cli import run, run_json
from tests.support.forked import troth_forked
from troth.cli.main import cli
from troth.crypto import Aead, AeadAlgorithm
from troth.errors import CryptoError
from troth.faults import CRASH_EXIT_CODE, CRASH_POINTS
from troth.storage import SqliteDatabase

POINTS = (
    "vault.rekey.before-pending",
    "vault.rekey.after-pending",
    "vault.rekey.before-commit",
    "vault.rekey.after-commit",
    "vault.rekey.after-vacuum",
    "vault.rekey.after-scrub",
    "vault.rekey.after-rename",
)


def node_path(home: Path, name: str = "n") -> Path:
    return home / "nodes" / name


def rows(path: Path) -> list[tuple[int, int, int, bytes]]:
    """Every sealed row of the node's vault, read through SQLite."""
    db = SqliteDatabase(path / "node.db")
    try:
        found = db.fetch_all("SELECT key_id, key_type, purpose, sealed FROM vault_keys")
        return [(r[0], r[1], r[2], bytes(r[3])) for r in found]
    finally:
        db.close()


def aad(number: int, key_type: int, purpose: int) -> bytes:
    key_id = f"{number:016x}".encode()
    if key_type == 16:  # a seal key
        return b"troth.vault.seal-key/1\x00" + key_id
    return b"troth.vault.key/1\x00" + key_id + bytes((0, key_type, purpose))


def opened_under(kek: bytes, path: Path) -> list[int]:
    """The rows of the node's vault that `kek` unseals (the thief's scan)."""
    aead = Aead(AeadAlgorithm.AES_256_GCM, kek)
    opened = []
    for number, key_type, purpose, sealed in rows(path):
        try:
            aead.decrypt(sealed[1:13], sealed[13:], aad(number, key_type, purpose))
        except CryptoError:
            continue
        opened.append(number)
    return opened


def copy_node(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def make_node(home: Path) -> Path:
    run("node", "create", "n")
    run("identity", "create", "agent", "--node", "n")
    run("identity", "create", "other", "--node", "n")
    return node_path(home)


NEW_KEY = "22" * 32
"""The new vault key `node_and_key_file` writes (hex), the old one being "11" * 32."""


def node_and_key_file(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> tuple[Path, Path]:
    """Node `n` keyed by the environment ("11" * 32), and a file of `mode` holding NEW_KEY (for
    `vault rekey --new-key-file`): the node's directory and the file."""
    monkeypatch.setenv("TROTH_VAULT_KEY", "11" * 32)
    path = make_node(home)
    key_file = tmp_path / "new.key"
    key_file.write_text(NEW_KEY + "\n")
    os.chmod(key_file, mode)
    return path, key_file


def test_after_a_stolen_backup_the_thiefs_kek_opens_no_later_key(troth_home: Path) -> None:
    """The documented recovery (vault rekey, then rotate --compromised): the thief's vault.key
    unseals no row of a node.db copied afterwards, and opens no node with it."""
    path = make_node(troth_home)
    thief_kek = (path / "vault.key").read_bytes()
    assert opened_under(thief_kek, path)  # the backup: every key
    run("vault", "rekey", "--node", "n")
    run("identity", "rotate", "agent", "--compromised", "--node", "n")
    run("identity", "rotate", "other", "--compromised", "--node", "n")
    assert rows(path)
    assert opened_under(thief_kek, path) == []
    later = copy_node(path, troth_home / "nodes" / "thief")
    (later / "vault.key").write_bytes(thief_kek)
    run("identity", "list", "--node", "thief", code=3)  # the key check refuses the old KEK
    # the node itself works with the new key
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"


def test_the_points_are_declared() -> None:
    assert set(POINTS) <= set(CRASH_POINTS)


def test_no_byte_sealed_under_the_old_kek_is_left_in_the_node_directory(troth_home: Path) -> None:
    """Every sealed row and the key check change, and none of their old bytes is in any file
    of the node directory (node.db's free pages, its write-ahead log)."""
    path = make_node(troth_home)
    deleted = [sealed for *_, sealed in rows(path)]
    run("identity", "rotate", "other", "--node", "n")  # a key deleted: freed, sealed under it
    kept = {number for number, *_ in rows(path)}
    run("identity", "create", "spare", "--node", "n")  # its rows deleted below, sealed bytes left
    db = SqliteDatabase(path / "node.db")
    db.connection().execute("PRAGMA secure_delete = OFF")  # as most SQLite builds delete
    for number, *_, sealed in rows(path):
        if number not in kept:
            deleted.append(sealed)
            db.execute("DELETE FROM vault_keys WHERE key_id = ?", (number,))
    db.close()
    old_kek = (path / "vault.key").read_bytes()
    before = [sealed for *_, sealed in rows(path)]
    db = SqliteDatabase(path / "node.db")
    check = bytes(db.fetch_one("SELECT value FROM vault_meta WHERE name = 'kek_check'")[0])
    db.close()
    result = run_json("vault", "rekey", "--node", "n")
    assert result["keys"] == len(before)
    assert result["kek_source"] == "file"
    assert (path / "vault.key").read_bytes() != old_kek
    assert not (path / "vault.key.new").exists()
    assert opened_under(old_kek, path) == []
    new_kek = (path / "vault.key").read_bytes()
    assert len(opened_under(new_kek, path)) == len(before)
    for file in path.iterdir():
        if file.is_file():
            data = file.read_bytes()
            assert old_kek not in data
            for blob in [check, *before, *deleted]:
                assert blob[13:] not in data, file.name
    run_json("identity", "rotate", "agent", "--node", "n")  # the keys still sign


def troth(*args: str, crash: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """`troth *args` in a forked process (tests.support.forked), killed at `crash`, `env` added
    to its environment; its exit code not checked."""
    return troth_forked(*args, crash=crash, env=env, check=False)


@pytest.mark.parametrize("point", POINTS)
def test_a_rekey_killed_at_any_step_leaves_one_working_key(troth_home: Path, point: str) -> None:
    """Killed at each step: the node opens (settling vault.key.new), with exactly one KEK
    that unseals every row, no pending key left; a second rekey then retires the first KEK."""
    path = make_node(troth_home)
    old_kek = (path / "vault.key").read_bytes()
    count = len(rows(path))
    killed = troth("vault", "rekey", "--node", "n", crash=point)
    assert killed.returncode == CRASH_EXIT_CODE, killed
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
    assert not (path / "vault.key.new").exists()
    kek = (path / "vault.key").read_bytes()
    committed = point not in POINTS[:3]
    assert (kek != old_kek) is committed
    assert len(opened_under(kek, path)) == count
    assert opened_under(old_kek, path) == ([] if committed else [r[0] for r in rows(path)])
    run_json("identity", "rotate", "agent", "--node", "n")  # every key signs
    again = troth("vault", "rekey", "--node", "n", "--json")
    assert again.returncode == 0, again
    assert opened_under(old_kek, path) == opened_under(kek, path) == []
    assert len(opened_under((path / "vault.key").read_bytes(), path)) == len(rows(path))


def test_a_running_node_or_an_open_one_is_refused(troth_home: Path) -> None:
    from troth.node import open_node
    from troth.node.daemon import _running_lock

    path = make_node(troth_home)
    kek = (path / "vault.key").read_bytes()
    with _running_lock(path, "n"):
        refused = run("vault", "rekey", "--node", "n", code=3)
    assert "troth node stop n" in refused.stderr
    with open_node("n"):  # another process's open node: its shared hold on node.db.vault
        refused = run("vault", "rekey", "--node", "n", code=3)
    assert "another process has node 'n' open" in refused.stderr
    assert (path / "vault.key").read_bytes() == kek
    assert not (path / "vault.key.new").exists()
    run("vault", "rekey", "--node", "n")


def test_a_node_keyed_by_the_environment_takes_its_new_key_from_the_caller(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = "11" * 32, "22" * 32
    monkeypatch.setenv("TROTH_VAULT_KEY", old)
    path = make_node(troth_home)
    assert not (path / "vault.key").exists()
    missing = run("vault", "rekey", "--node", "n", code=3)
    assert "--new-key-env" in missing.stderr
    monkeypatch.setenv("NEW_VAULT_KEY", old)
    run("vault", "rekey", "--node", "n", "--new-key-env", "NEW_VAULT_KEY", code=3)  # the same
    monkeypatch.setenv("NEW_VAULT_KEY", new)
    done = run("vault", "rekey", "--node", "n", "--new-key-env", "NEW_VAULT_KEY", "--json")
    assert new not in done.stdout
    assert old not in done.stdout
    assert json_of(done.stdout)["key_file"] is None
    assert not (path / "vault.key").exists()
    assert not (path / "vault.key.new").exists()
    assert opened_under(bytes.fromhex(old), path) == []
    run("identity", "list", "--node", "n", code=3)  # still the old TROTH_VAULT_KEY
    monkeypatch.setenv("TROTH_VAULT_KEY", new)
    run("identity", "rotate", "agent", "--node", "n")
    third = "33" * 32
    stdin = CliRunner().invoke(
        cli, ["vault", "rekey", "--node", "n", "--new-key-file", "-"], input=third + "\n"
    )
    assert stdin.exit_code == 0, stdin.output
    assert third not in stdin.output
    monkeypatch.setenv("TROTH_VAULT_KEY", third)
    run("identity", "rotate", "agent", "--node", "n")
    bad = run("vault", "rekey", "--node", "n", "--new-key-env", "TROTH_HOME", code=2)
    assert "64 hex digits" in bad.stderr


def test_a_row_that_does_not_unseal_stops_the_rekey_with_nothing_changed(troth_home: Path) -> None:
    path = make_node(troth_home)
    kek = (path / "vault.key").read_bytes()
    db = SqliteDatabase(path / "node.db")
    number = db.fetch_one("SELECT min(key_id) FROM vault_keys")[0]
    db.execute(
        "UPDATE vault_keys SET sealed = ? WHERE key_id = ?", (b"\x01" + b"\x00" * 40, number)
    )
    db.close()
    before = rows(path)
    failed = run("vault", "rekey", "--node", "n", code=4)
    assert f"{number:016x}" in failed.stderr
    assert rows(path) == before
    assert (path / "vault.key").read_bytes() == kek
    assert not (path / "vault.key.new").exists()


def json_of(text: str) -> dict[str, object]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def test_a_pkcs11_nodes_software_part_is_resealed_without_its_token(
    troth_home: Path, softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PKCS#11 node keeps its X25519 channel keys in the software vault (under vault.key):
    those are re-sealed; the token is not opened (no PIN needed), its keys untouched."""
    softhsm.init_node("n", monkeypatch)
    run("identity", "create", "agent", "--node", "n")
    path = node_path(troth_home)
    old_kek = (path / "vault.key").read_bytes()
    count = len(rows(path))
    monkeypatch.delenv("TEST_HSM_PIN")
    assert run_json("vault", "rekey", "--node", "n")["keys"] == count
    assert opened_under(old_kek, path) == []
    monkeypatch.setenv("TEST_HSM_PIN", softhsm.pin)
    run("identity", "rotate", "agent", "--node", "n")
