"""Review 46h: attacks on `troth vault rekey` (troth.node.rekey) that failed, kept as tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import NOW, SoftHsm
from tests.support.cli import run, run_json
from tests.test_vault_rekey import opened_under, rows
from troth.node import open_node
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault.software import kek_opens_check

OLD = "11" * 32
NEW = "22" * 32


def opens_check(kek: bytes, path: Path) -> bool:
    db = SqliteDatabase(path / "node.db")
    try:
        return kek_opens_check(SqliteKeyStore(db), kek)
    finally:
        db.close()


def make_node(home: Path) -> Path:
    run("node", "create", "n")
    run("identity", "create", "agent", "--node", "n")
    return home / "nodes" / "n"


def test_a_planted_pending_key_is_never_adopted(troth_home: Path) -> None:
    """A `vault.key.new` planted by someone who holds no KEK (a key of their own, a huge file)
    opens no key check: beside a working vault.key it is removed and the node opens under
    its own key; with vault.key gone, the open refuses both and adopts neither."""
    path = make_node(troth_home)
    kek = (path / "vault.key").read_bytes()
    pending = path / "vault.key.new"
    for planted in (os.urandom(32), b"\0" * 10_000_000):
        pending.write_bytes(planted)
        pending.chmod(0o600)
        assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
        assert not pending.exists()
        assert (path / "vault.key").read_bytes() == kek
    pending.write_bytes(os.urandom(32))
    pending.chmod(0o600)
    (path / "vault.key").rename(path / "kept")
    failed = run_json("identity", "list", "--node", "n", code=3)
    assert "neither" in failed["message"]
    assert pending.exists()
    assert not (path / "vault.key").exists()
    (path / "kept").rename(path / "vault.key")
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"


def test_a_symlink_planted_as_the_pending_key_is_refused_and_its_target_kept(
    troth_home: Path,
) -> None:
    """A symbolic link at vault.key.new to a file of the victim's is refused (review 46h,
    rekey 1): neither followed, renamed over vault.key, nor its target removed."""
    path = make_node(troth_home)
    kek = (path / "vault.key").read_bytes()
    target = troth_home / "victim"
    target.write_bytes(kek)  # even one holding the right key
    target.chmod(0o600)
    (path / "vault.key.new").symlink_to(target)
    assert run_json("identity", "list", "--node", "n", code=3)["error"] == "ConfigError"
    assert target.read_bytes() == kek
    assert not (path / "vault.key").is_symlink()
    (path / "vault.key.new").unlink()
    run("identity", "list", "--node", "n")


def test_a_rekey_over_a_planted_pending_key_writes_its_own_0600(troth_home: Path) -> None:
    """The planted file is settled (removed) first; the rekey's key is fresh, 0600, and the
    only key file left (no temporary, no pending)."""
    path = make_node(troth_home)
    planted = os.urandom(32)
    (path / "vault.key.new").write_bytes(planted)
    (path / "vault.key.new").chmod(0o600)
    result = run_json("vault", "rekey", "--node", "n")
    assert result["keys"] == len(rows(path))
    kek = (path / "vault.key").read_bytes()
    assert kek != planted
    assert len(opened_under(kek, path)) == len(rows(path))
    assert stat.S_IMODE((path / "vault.key").stat().st_mode) == 0o600
    assert sorted(p.name for p in path.iterdir() if "vault.key" in p.name) == ["vault.key"]
    assert not [p for p in path.iterdir() if p.name.endswith(".tmp")]


def test_an_env_keyed_node_refuses_bad_new_keys_and_keeps_every_row(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new key given badly (none, short, not hex or base64, the current one, an unset
    variable): a typed error, exit 2 or 3, no row changed. After the rekey, the old
    TROTH_VAULT_KEY left set is a clear ConfigError and the new key still opens every row."""
    monkeypatch.setenv("TROTH_VAULT_KEY", OLD)
    path = make_node(troth_home)
    before = rows(path)
    for env, args, code, error in (
        ({}, (), 3, "ConfigError"),
        ({"K": "abcd"}, ("--new-key-env", "K"), 2, "UsageError"),
        ({"K": "zz" * 32}, ("--new-key-env", "K"), 2, "UsageError"),
        ({"K": OLD}, ("--new-key-env", "K"), 3, "ConfigError"),
        ({}, ("--new-key-env", "UNSET_46H"), 3, "ConfigError"),
    ):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        failed = run_json("vault", "rekey", "--node", "n", *args, code=code)
        assert failed["error"] == error, failed
        assert rows(path) == before
    monkeypatch.setenv("K", NEW)
    assert run_json("vault", "rekey", "--node", "n", "--new-key-env", "K")["key_file"] is None
    forgot = run_json("identity", "list", "--node", "n", code=3)
    assert "does not open this vault" in forgot["message"]
    assert len(opened_under(bytes.fromhex(NEW), path)) == len(before)
    monkeypatch.setenv("TROTH_VAULT_KEY", NEW)
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"


def test_a_pkcs11_node_rekeys_its_software_part_and_keeps_signing(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A composite vault: the software part (its key check, X25519 keys and seal keys if any)
    is re-sealed without the token opened (no PIN set), and the identity, whose keys are in the
    token, still signs after the rekey."""
    softhsm.init_node("hsm", monkeypatch)
    with open_node("hsm") as node:
        node.identities.create(now=NOW, name="agent")
    path = troth_home / "nodes" / "hsm"
    old = (path / "vault.key").read_bytes()
    assert opens_check(old, path)
    pin = os.environ.pop("TEST_HSM_PIN", None)
    try:
        result = run_json("vault", "rekey", "--node", "hsm")
    finally:
        if pin is not None:
            os.environ["TEST_HSM_PIN"] = pin
    assert result["keys"] == len(rows(path))
    assert opened_under(old, path) == []
    assert not opens_check(old, path)
    assert opens_check((path / "vault.key").read_bytes(), path)
    with open_node("hsm") as node:
        signer = node.identities.signer("agent", now=NOW + 30)
        assert signer.sign(b"still the owner")
