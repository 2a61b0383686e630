"""Review 34a, vault: a node database whose sealed rows were cut short."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.cli import run
from troth.node import init_node, open_node
from troth.vault import KeyHandle


def _cut(troth_home: Path, sql: str, *params: object) -> None:
    """Change the node database behind troth's back (a damaged or tampered file)."""
    with sqlite3.connect(troth_home / "nodes" / "n" / "node.db") as db:
        db.execute(sql, params)


def test_a_sealed_key_cut_short_is_a_vault_failure(troth_home: Path) -> None:
    """Review 34a, vault 1. A node's sealed primary key, cut to a few bytes (a damaged
    database, a tampered row): unsealing it raised the AES-GCM library's ValueError for the
    short nonce, which the CLI reports as a usage error (exit 2: "a bad option or value") with
    the library's words, so a script retries its command line instead of restoring the
    vault. docs/cli.md: exit 4 when "the database or vault failed"; a VaultError names the
    key.

    Was a strict xfail until `SoftwareVault` refused a sealed row too short for its nonce and
    tag as a VaultError before unsealing it."""
    init_node("n")
    with open_node("n") as node:
        primary = node.identities.create(now=1_790_000_000, name="courier").primary_key
    number = int(KeyHandle.parse(str(primary)).key_id, 16)
    _cut(troth_home, "UPDATE vault_keys SET sealed = substr(sealed, 1, 6) WHERE key_id = ?", number)
    failed = run("identity", "rotate", "courier", "--node", "n", code=4)
    assert f"key {primary} failed to unseal" in failed.stderr


def test_a_key_check_cut_short_is_a_vault_key_failure(troth_home: Path) -> None:
    """Review 34a, vault 1, at open: the vault's key check value (`vault_meta.kek_check`) cut
    short made every command of the node fail as a usage error with the library's words; it
    is the configuration error every other damaged check value gives (exit 3).

    Was a strict xfail until the key check value's length was checked first (ConfigError)."""
    init_node("n")
    _cut(troth_home, "UPDATE vault_meta SET value = substr(value, 1, 5) WHERE name = 'kek_check'")
    failed = run("identity", "list", "--node", "n", code=3)
    assert "does not open this vault" in failed.stderr
