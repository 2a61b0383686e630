"""Review 36d, socket directory: the re-review of review 36b's `troth-<uid>` check (the
directory a node's control socket falls back to when its node directory's path is too long
for AF_UNIX; docs/protocols.md, "Node daemon")."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import stat
from pathlib import Path

import pytest

from troth.errors import ConfigError
from troth.node import init_node
from troth.node.daemon import node_status, serve, start_daemon, stop_daemon
from troth.node.node import node_dir

OTHER_UID = 65534  # nobody: another local user
needs_root = pytest.mark.skipif(os.getuid() != 0, reason="planting as another user needs root")


def long_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: Path) -> tuple[Path, Path]:
    """A home whose node `n`'s control socket falls back to `<base>/troth-<uid>`; the home
    and that directory."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    home = tmp_path / ("h" * 100)  # <home>/nodes/n/control.sock is over the AF_UNIX limit
    monkeypatch.setenv("TROTH_HOME", str(home))
    init_node("n", home=home)
    return home, base / f"troth-{os.getuid()}"


def socket_name(home: Path) -> str:
    return hashlib.sha256(str(node_dir(home, "n")).encode()).hexdigest()[:20] + ".sock"


@needs_root
def test_a_private_directory_holding_another_users_entry_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Socket dir 1: review 36b looked at the entries only of a directory it found loose. One
    already 0700 (tightened by hand after another user wrote there, or by a troth before
    review 36b, which chmod-ed without looking) kept what they put there: their directory at
    the socket's name failed the node's start with a bare "Is a directory" naming no one, as
    review 36b's socket dir 2 did for the loose case. Now any entry of another user is
    refused, the directory loose or not, with the ConfigError naming it, and nothing of
    theirs is removed. Was a strict xfail until `_socket_path` looked at the entries of
    every `troth-<uid>` it uses."""
    base = tmp_path / "shared"
    base.mkdir()
    home, runtime = long_home(tmp_path, monkeypatch, base)
    runtime.mkdir(0o700)
    planted = runtime / socket_name(home)
    planted.mkdir()
    os.chown(planted, OTHER_UID, OTHER_UID)
    with pytest.raises(ConfigError) as refused:
        asyncio.run(asyncio.wait_for(serve(home, "n", None), 60))  # (never runs on)
    reason = str(refused.value)
    assert f"{planted.name} belongs to uid {OTHER_UID}" in reason
    assert str(runtime) in reason
    assert planted.is_dir()


def test_a_base_others_may_rename_in_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Socket dir 2: every check of `troth-<uid>` (ours, a directory, 0700, nothing of
    another user's) holds only while no one else can rename it. In /tmp the sticky bit
    guarantees that; `$XDG_RUNTIME_DIR` or `$TMPDIR` pointing at a directory anyone may
    write to without the sticky bit does not: another user renames our checked directory away
    and puts theirs (or a link to a directory of ours, which the chmod then follows) in its
    place, and the node binds its control socket where they choose, and the CLI connects to
    whatever socket they leave at that name. Such a base is refused (a ConfigError naming it)
    before `troth-<uid>` is made or touched in it. Was a strict xfail until `_socket_path`
    checked the base directory."""
    base = tmp_path / "shared"
    base.mkdir()
    os.chmod(base, 0o777)  # noqa: S103 - world-writable, not sticky: the base under test
    home, runtime = long_home(tmp_path, monkeypatch, base)
    with pytest.raises(ConfigError) as refused:
        asyncio.run(asyncio.wait_for(serve(home, "n", None), 60))  # (never runs on)
    reason = str(refused.value)
    assert str(base) in reason
    assert "sticky" in reason
    assert not runtime.exists()


def test_a_base_under_a_directory_others_may_rename_in_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Socket dir 3: the base itself ours and private, but in a directory anyone may write to
    without the sticky bit (`$XDG_RUNTIME_DIR=/shared/run`): another user renames `run`, with
    our checked `troth-<uid>` in it, away and puts a tree of theirs at that name, as in socket
    dir 2 one level up. Every directory on the base's path must let no other user rename
    what is in it. Was a strict xfail until `_no_renames_by_others` looked at the base's
    parents too."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # noqa: S103 - world-writable, not sticky: the parent under test
    base = shared / "run"
    base.mkdir(0o700)
    home, runtime = long_home(tmp_path, monkeypatch, base)
    with pytest.raises(ConfigError) as refused:
        asyncio.run(asyncio.wait_for(serve(home, "n", None), 60))  # (never runs on)
    reason = str(refused.value)
    assert str(shared) in reason
    assert "sticky" in reason
    assert not runtime.exists()


def test_a_sticky_shared_base_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control of socket dir 2: a world-writable base with the sticky bit (what /tmp
    is) passes: the node starts with `troth-<uid>` made 0700 in it."""
    base = tmp_path / "shared"
    base.mkdir()
    os.chmod(base, 0o1777)  # noqa: S103 - what /tmp is
    home, runtime = long_home(tmp_path, monkeypatch, base)
    started = start_daemon(home, "n", None)
    try:
        assert node_status(home, "n")["running"]
        info = runtime.lstat()
        assert stat.S_ISDIR(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o700
    finally:
        stop_daemon(home, "n")
        with contextlib.suppress(ProcessLookupError):
            os.kill(started["pid"], signal.SIGKILL)
