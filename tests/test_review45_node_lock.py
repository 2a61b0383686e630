"""Review 45 (lead), node lock: `<node dir>/node.lock` (flock) keeps a second runtime off a node
directory, but a node.lock deleted while the node ran (a clean-up, a stray `rm`) let a second
start create a new file, lock it and run beside the first: two runtimes on one node.db, one
control socket taken over. Fixed: the runtime also holds a flock on the node directory itself,
which outlives the lock file's deletion (a directory holding node.db is not removed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.errors import ConfigError
from troth.node.daemon import _running_lock


def test_a_deleted_node_lock_lets_no_second_runtime_run(tmp_path: Path) -> None:
    with _running_lock(tmp_path, "n"):
        (tmp_path / "node.lock").unlink()
        with pytest.raises(ConfigError, match="already running"), _running_lock(tmp_path, "n"):
            pass


def test_the_lock_is_free_again_once_the_runtime_ends(tmp_path: Path) -> None:
    with _running_lock(tmp_path, "n"):
        pass
    (tmp_path / "node.lock").unlink()
    with _running_lock(tmp_path, "n"):  # neither lock outlives its holder
        assert (tmp_path / "node.lock").exists()


def test_a_second_runtime_is_refused_while_the_lock_file_is_there(tmp_path: Path) -> None:
    with (
        _running_lock(tmp_path, "n"),
        pytest.raises(ConfigError, match="already running"),
        _running_lock(tmp_path, "n"),
    ):
        pass
