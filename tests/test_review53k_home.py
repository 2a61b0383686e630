"""Review 53k, home 1: `read_private_file` checked a file's mode, not its owner.

node.json (the vault, its PKCS#11 module, the key source), status.json and the books are read
with it. Run as root over a home another user can write (`sudo troth ...` with the user's
TROTH_HOME), a file that user owns, mode 600, was read and trusted: they chose the PKCS#11
module root then loaded. Like ssh with its configuration, a file owned by anyone but the
current user or root is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from troth.errors import ConfigError
from troth.node.home import read_private_file

_NOBODY = 65534


def _owned_by_another(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `path` another user's (as root: chown it; else: pretend to run as another uid)."""
    uid = os.geteuid()
    if uid == 0:
        os.chown(path, _NOBODY, _NOBODY)
    else:
        monkeypatch.setattr(os, "geteuid", lambda: uid + 1)


def test_a_private_file_another_user_owns_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "node.json"
    path.write_bytes(b"{}")
    path.chmod(0o600)
    _owned_by_another(path, monkeypatch)
    with pytest.raises(ConfigError, match="owned by uid"):
        read_private_file(path)


def test_a_private_file_of_this_user_is_read(tmp_path: Path) -> None:
    path = tmp_path / "node.json"
    path.write_bytes(b"{}")
    path.chmod(0o600)
    assert read_private_file(path) == b"{}"
