"""Review 53q: attacks tried that the code already stopped (passing tests, kept as pins)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from troth.errors import ConfigError
from troth.node.home import read_private_file


def test_read_private_file_checks_the_descriptor_it_reads_not_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """keyfile 1's check-then-open race is not in `read_private_file` (node.json, vault.key):
    it opens the path once and checks mode and owner with fstat on that descriptor, so no
    path lookup stands between the check and the read: with every by-path stat refused, it
    still reads a private file and still refuses one others can read."""
    path = tmp_path / "node.json"
    path.write_bytes(b"{}")
    path.chmod(0o600)

    def no_path_stat(*args: Any, **kwargs: Any) -> os.stat_result:
        raise AssertionError("checked by path")

    monkeypatch.setattr(os, "stat", no_path_stat)
    monkeypatch.setattr(os, "lstat", no_path_stat)
    assert read_private_file(path) == b"{}"
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="accessible by others"):
        read_private_file(path)
