"""Review 48d, rekey: the switch-over an open finishes for a killed `troth vault rekey`
(troth.node.rekey.settle_pending_key; docs/vault.md, "Changing the vault key").

An open that finds `vault.key.new` renames it over `vault.key` when the key check opens under
it. The key check is a row of node.db, and whoever can write node.db (a tampered backup
restored, a copy of node.db alone in the threat model, now written) can put there a check of a
key of their own choosing, and plant that key as `vault.key.new`: the open then replaced the
node's real vault key by theirs. The real key was gone (every key sealed under it lost for
good), and every key the node made afterwards was sealed under a key the attacker holds, so a
later copy of node.db yielded it."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.test_vault_rekey import make_node, opened_under, troth
from troth.crypto import Aead, AeadAlgorithm
from troth.faults import CRASH_EXIT_CODE
from troth.node.home import write_private_file
from troth.storage import SqliteDatabase


def _plant(path: Path, kek: bytes) -> None:
    """A key check of `kek` written into node.db, and `kek` as the pending key."""
    nonce = os.urandom(Aead.NONCE_SIZE)
    check = nonce + Aead(AeadAlgorithm.AES_256_GCM, kek).encrypt(
        nonce, b"troth vault key check", b"troth.vault.kek-check/1"
    )
    db = SqliteDatabase(path / "node.db")
    try:
        db.execute("UPDATE vault_meta SET value = ? WHERE name = 'kek_check'", (check,))
    finally:
        db.close()
    write_private_file(path / "vault.key.new", kek)


@pytest.mark.parametrize("rows_left", [True, False])
def test_a_planted_key_and_key_check_do_not_replace_the_vault_key(
    troth_home: Path, rows_left: bool
) -> None:
    """Review 48d, rekey 1. Was a strict xfail: the open renamed the planted key over
    vault.key. Now a rekey commits, with its rows, a tag of the new key under the old one
    (`vault_meta` row `rekey_to`: HMAC-SHA-256 keyed by the old KEK), and an open renames
    vault.key.new only when vault.key authenticates it: a key planted by someone without the
    vault key is refused (ConfigError, exit 3), both files kept. With no row left (the
    attacker deleted them all), nothing in node.db could tell a planted key from a real one."""
    path = make_node(troth_home)
    kek = (path / "vault.key").read_bytes()
    if not rows_left:
        db = SqliteDatabase(path / "node.db")
        try:
            db.execute("DELETE FROM vault_keys")
        finally:
            db.close()
    planted = bytes(range(32))
    _plant(path, planted)
    run("identity", "list", "--node", "n", code=3)
    assert (path / "vault.key").read_bytes() == kek
    assert (path / "vault.key.new").read_bytes() == planted
    if rows_left:
        assert opened_under(kek, path)  # the keys are the node's still


def test_a_rekey_killed_after_its_commit_is_still_finished(troth_home: Path) -> None:
    path = make_node(troth_home)
    old = (path / "vault.key").read_bytes()
    killed = troth("vault", "rekey", "--node", "n", crash="vault.rekey.after-scrub")
    assert killed.returncode == CRASH_EXIT_CODE, killed
    new = (path / "vault.key.new").read_bytes()
    db = SqliteDatabase(path / "node.db")
    try:
        tag = db.fetch_one("SELECT value FROM vault_meta WHERE name = 'rekey_to'")
    finally:
        db.close()
    assert tag is not None  # docs/formats.md, "vault_meta.rekey_to"
    assert bytes(tag[0]) == hmac.new(old, b"troth.vault.rekey-to/1\x00" + new, "sha256").digest()
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
    assert (path / "vault.key").read_bytes() == new != old
    assert not (path / "vault.key.new").exists()
