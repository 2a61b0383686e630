"""Review 53f, vault 1: `troth vault rekey --new-key-file FILE` read the new vault key from a
file that others can read (a key written under the default umask, 0644, in /tmp or a shared
directory), the very step the docs prescribe after a stolen backup: the node was re-sealed
under a key every local user could copy, and said nothing. troth refuses such files wherever
it keeps a secret (`read_private_file`: node.json, vault.key; as ssh does private keys); the
new key's file is refused the same way now (exit 3, nothing re-sealed). A pipe (`-`, a
process substitution) is no file that others can open: taken as before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.test_vault_rekey import NEW_KEY, node_and_key_file, opened_under


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_new_vault_key_in_a_file_others_can_read_is_refused(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    old, new = "11" * 32, NEW_KEY
    path, key_file = node_and_key_file(troth_home, tmp_path, monkeypatch, mode)
    refused = run("vault", "rekey", "--node", "n", "--new-key-file", str(key_file), code=3)
    assert "chmod 600" in refused.stderr
    assert new not in refused.stderr
    assert opened_under(bytes.fromhex(new), path) == []  # nothing re-sealed under it
    os.chmod(key_file, 0o600)
    run("vault", "rekey", "--node", "n", "--new-key-file", str(key_file))
    assert opened_under(bytes.fromhex(old), path) == []
    assert opened_under(bytes.fromhex(new), path)
