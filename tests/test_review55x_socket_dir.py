"""Review 55x, socket directory: links on the base's path that the lexical walk of review 55r
did not see (docs/protocols.md, "Node daemon")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_review36d_socket_dir import OTHER_UID, long_home, needs_root
from tests.test_review55r_socket_dir import _linked
from troth.errors import ConfigError
from troth.node.node import node_dir
from troth.node.socket_dir import _socket_path


@needs_root
def test_another_users_link_behind_our_link_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 55x, socket dir 1. The base is our link, pointing at another user's link in a
    sticky shared directory, pointing at a directory of ours: only the links on the base's
    path as written were looked at, and the directories of the path it resolves to, so the
    other user's link (theirs to repoint once the node checked `troth-<uid>` through it, as in
    review 55r, socket dir 1) passed. Was a strict xfail until the path was walked as the
    kernel resolves it, every link and directory met looked at."""
    ours, theirs = _linked(tmp_path)
    os.lchown(theirs, OTHER_UID, OTHER_UID)
    mine = theirs.parent / "mine"
    mine.symlink_to(theirs)
    home, _ = long_home(tmp_path, monkeypatch, mine)
    with pytest.raises(ConfigError) as refused:
        _socket_path(node_dir(home, "n"))
    assert f"{theirs} (" in str(refused.value)
    assert not (ours / f"troth-{os.getuid()}").exists()


@needs_root
def test_another_users_link_before_dot_dot_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 55x, socket dir 2. `<shared>/theirs/../ours`, `theirs` another user's link to a
    directory of ours: the kernel follows `theirs` before `..`, but the links were looked for
    on `os.path.abspath` of the base, which drops `theirs/..` as written, so their link passed.
    Was a strict xfail until the path was walked as the kernel resolves it."""
    ours, theirs = _linked(tmp_path)
    os.lchown(theirs, OTHER_UID, OTHER_UID)
    (ours / "deeper").mkdir(0o700)
    theirs.unlink()
    theirs.symlink_to(ours / "deeper")
    os.lchown(theirs, OTHER_UID, OTHER_UID)
    (theirs.parent / "deeper").mkdir(0o700)  # what the path names as written: ours
    home, _ = long_home(tmp_path, monkeypatch, Path(f"{theirs}/../deeper"))
    with pytest.raises(ConfigError) as refused:
        _socket_path(node_dir(home, "n"))
    assert f"{theirs} (" in str(refused.value)
    assert not (ours / "deeper" / f"troth-{os.getuid()}").exists()


def test_a_link_loop_as_base_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 55x, socket dir 3. A base that is a link loop: Path.resolve (Python 3.11) raises
    RuntimeError, not OSError, and it escaped as a traceback (internal error) instead of the
    ConfigError naming the directory. Was a strict xfail until the walk counted its links."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    home, _ = long_home(tmp_path, monkeypatch, loop)
    with pytest.raises(ConfigError):
        _socket_path(node_dir(home, "n"))
