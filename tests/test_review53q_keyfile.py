"""Review 53q, keyfile 1: `troth vault rekey --new-key-file FILE` checked the file's mode and
owner by its path (os.stat), then opened the path again to read it.

Between the check and the read the path could be replaced (a rename over it by whoever can
write its directory): the check passed on a private file of this user's, the key read was
another file's, one others can read or another user wrote, and the rekey (the recovery from
a stolen backup) re-sealed every key under it. Was a strict xfail until the file was opened
once and its mode and owner checked on the open descriptor (fstat), the bytes read from it.
`read_private_file` (node.json, vault.key) already did so (tests/test_review53q_refuted.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.test_vault_rekey import NEW_KEY, make_node, node_and_key_file, opened_under


def test_a_key_file_swapped_after_its_check_is_not_read(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, checked, swapped = "11" * 32, "22" * 32, "33" * 32
    monkeypatch.setenv("TROTH_VAULT_KEY", old)
    path = make_node(troth_home)
    key_file = tmp_path / "new.key"
    key_file.write_text(checked + "\n")
    os.chmod(key_file, 0o600)
    readable = tmp_path / "readable.key"
    readable.write_text(swapped + "\n")
    os.chmod(readable, 0o644)
    real_stat = os.stat

    def stat_then_swap(target: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        result = real_stat(target, *args, **kwargs)
        checker = sys._getframe(1).f_globals.get("__name__")  # the rekey's check, not click's
        if str(target) == str(key_file) and checker == "troth.cli.vault_cmds":
            os.replace(readable, key_file)  # the race, won: right after the check
        return result

    monkeypatch.setattr(os, "stat", stat_then_swap)
    run("vault", "rekey", "--node", "n", "--new-key-file", str(key_file))
    monkeypatch.setattr(os, "stat", real_stat)
    assert opened_under(bytes.fromhex(swapped), path) == []  # never the file others read
    assert opened_under(bytes.fromhex(checked), path)  # the file checked is the one read


def test_a_key_file_others_can_read_is_refused_by_its_descriptor(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = NEW_KEY
    path, key_file = node_and_key_file(troth_home, tmp_path, monkeypatch, 0o640)
    refused = run("vault", "rekey", "--node", "n", "--new-key-file", str(key_file), code=3)
    assert "accessible by others" in refused.stderr
    assert opened_under(bytes.fromhex(new), path) == []
