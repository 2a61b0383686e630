"""Review 55r, socket directory: the base `troth-<uid>` is made in, when it is reached through
a link (docs/protocols.md, "Node daemon")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_review36d_socket_dir import OTHER_UID, long_home, needs_root
from troth.errors import ConfigError
from troth.node.node import node_dir
from troth.node.socket_dir import _socket_path


def _linked(tmp_path: Path) -> tuple[Path, Path]:
    """A private directory of ours, and a link to it in a sticky shared directory (as /tmp)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # noqa: S103 - what /tmp is
    ours = tmp_path / "ours"
    ours.mkdir(0o700)
    link = shared / "run"
    link.symlink_to(ours)
    return ours, link


@needs_root
def test_a_base_reached_through_another_users_link_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 55r, socket dir 1. `$XDG_RUNTIME_DIR` (or `$TMPDIR`) naming a link in a sticky
    shared directory (/tmp) that another user made, pointing at a directory of ours: the base
    was resolved and only the directories it names were looked at, so it passed. The link is
    its owner's to replace (the sticky bit keeps others' entries, not theirs): once the node
    has checked `troth-<uid>` through it, they point it at a tree of theirs, and the node binds
    its control socket there (if it starts after), the CLI connects to whatever they put at the
    socket's name, and they delete the node's socket: every check of `troth-<uid>` is moot, as
    in review 36d, socket dir 2. Now every link on the base's path must be this user's or
    root's, in a directory no one else may rename in, as the directories are. Was a strict
    xfail until `_no_renames_by_others` looked at the links on the base's path."""
    ours, link = _linked(tmp_path)
    os.lchown(link, OTHER_UID, OTHER_UID)  # another user's link, to a directory of ours
    home, _ = long_home(tmp_path, monkeypatch, link)
    with pytest.raises(ConfigError) as refused:
        _socket_path(node_dir(home, "n"))
    assert str(link) in str(refused.value)
    assert f"uid {OTHER_UID}" in str(refused.value)
    assert not (ours / f"troth-{os.getuid()}").exists()


def test_a_base_reached_through_our_own_link_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control of socket dir 1: our own link in a sticky directory (as macOS's /tmp, a
    link of root's) passes, and `troth-<uid>` is made 0700 where it points."""
    ours, link = _linked(tmp_path)
    home, _ = long_home(tmp_path, monkeypatch, link)
    path = _socket_path(node_dir(home, "n"))
    assert path.parent == link / f"troth-{os.getuid()}"
    assert (ours / f"troth-{os.getuid()}").is_dir()
