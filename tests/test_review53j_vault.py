"""Review 53j, vault 1: `troth vault rekey --new-key-file FILE` checked the file's mode, not its
owner.

Review 53f (vault 1) refuses a new vault key in a file group or others can read; review 53k
(home 1) made every private file troth reads refuse one owned by anyone but this user or root
(`read_private_file`: run as root over a path another user can write, that user chose what
root trusted). The new key's file was checked by its mode alone: a file another user owns,
mode 600, was taken, and the rekey (the recovery from a stolen backup) re-sealed every key
under a key its owner wrote, and knows. Was a strict xfail until the key file was refused
the same way (exit 3, nothing re-sealed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run
from tests.test_review53k_home import _owned_by_another
from tests.test_vault_rekey import NEW_KEY, node_and_key_file, opened_under


def test_a_new_vault_key_in_a_file_another_user_owns_is_refused(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = NEW_KEY
    path, key_file = node_and_key_file(troth_home, tmp_path, monkeypatch, 0o600)
    _owned_by_another(key_file, monkeypatch)
    refused = run("vault", "rekey", "--node", "n", "--new-key-file", str(key_file), code=3)
    assert "owned by uid" in refused.stderr
    assert new not in refused.stderr
    assert opened_under(bytes.fromhex(new), path) == []  # nothing re-sealed under it
