"""Review 34d, node home: the local attack surface of a node's directory and of the daemon that
runs it (docs/protocols.md, "Node control"): two starts at once, a temporary file a killed
writer left, a symlink planted where the control socket's fallback directory goes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest

from troth.errors import ConfigError
from troth.node import init_node, open_node
from troth.node import daemon as node_daemon
from troth.node.daemon import node_status, record_listen, serve, start_daemon, stop_daemon


def test_a_start_that_loses_the_race_leaves_the_running_node_visible(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 34d, node home 1. Two `troth node start n` at once: both see no node running
    (the first daemon has not written its status file yet), both spawn a daemon, and the
    second daemon refuses (the node's lock is held). But the losing start deleted the
    winner's status.json before it spawned: the node kept running, listening and holding its
    lock, yet `troth node status` said "not running", `troth node stop` said "not running"
    and every further start failed with "already running: stop it first". Only a kill by
    hand ended it. Now a start leaves the status file alone (it waits for one naming the pid
    it spawned).

    Was a strict xfail until `_spawn` stopped deleting status.json before it spawned."""
    init_node("n")
    first = start_daemon(troth_home, "n", None)
    try:
        real = node_daemon.node_status
        checks = iter([{"name": "n", "running": False}])  # the check made before it was ready

        def racing(home: Path, name: str) -> dict[str, Any]:
            return next(checks, None) or real(home, name)

        monkeypatch.setattr(node_daemon, "node_status", racing)
        with pytest.raises(ConfigError, match="already running"):
            start_daemon(troth_home, "n", None)
        monkeypatch.setattr(node_daemon, "node_status", real)
        status = node_status(troth_home, "n")
        assert status["running"], status
        assert status["pid"] == first["pid"]
        assert stop_daemon(troth_home, "n")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(first["pid"], signal.SIGTERM)


def test_a_temporary_file_a_killed_writer_left_blocks_no_later_write(troth_home: Path) -> None:
    """Review 34d, node home 2. A node's files are written through a temporary file beside
    them, named after the writer's pid and opened O_EXCL. A writer killed between the two
    (a SIGKILL, the OOM killer, `docker kill`) leaves it there, and every later writer with
    the same pid failed with FileExistsError on that file for good: a node run as a
    container's entrypoint is pid 1 at every restart, so a kill while it wrote status.json
    kept it from ever starting again (and anyone able to create files in a shared directory
    could block `--out /tmp/x` by planting the next pids' names). Now the temporary name is
    unique per write.

    Was a strict xfail until `private_file_writer` took a fresh random temporary name."""
    init_node("n")
    directory = troth_home / "nodes" / "n"
    left = directory / f".node.json.{os.getpid()}.tmp"  # what a killed writer of this pid left
    left.write_bytes(b'{"name": "n", "listen": "half written')
    os.chmod(left, 0o600)
    config = record_listen(troth_home, "n", "127.0.0.1:4999")
    assert config.listen == "127.0.0.1:4999"
    with open_node("n") as node:
        assert node.config.listen == "127.0.0.1:4999"


def test_a_symlink_planted_as_the_socket_directory_changes_no_mode(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 34d, node home 3. A node directory whose path is too long for a Unix socket
    puts its control socket in `$XDG_RUNTIME_DIR` (else the temporary directory: /tmp,
    shared) under `troth-<uid>`. Another local user plants that name in /tmp as a symlink to
    one of the victim's directories; the daemon's `secure_dir` created nothing, then
    chmod-ed through the link: the victim's directory (a web root, a group's shared project
    directory) became 0700 before the node refused the symlink. Now the name is checked
    before anything is done through it: the node refuses, the target is untouched.

    Was a strict xfail until `_socket_path` checked the directory (lstat) before it made it
    private, never following a link."""
    shared = tmp_path / "shared"  # stands for /tmp
    shared.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    os.chmod(victim, 0o755)
    (shared / f"troth-{os.getuid()}").symlink_to(victim)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    home = tmp_path / ("h" * 100)  # <home>/nodes/n/control.sock is over the AF_UNIX limit
    monkeypatch.setenv("TROTH_HOME", str(home))
    init_node("n", home=home)
    with pytest.raises(ConfigError, match="not a private directory"):
        asyncio.run(serve(home, "n", None))
    assert stat.S_IMODE(victim.stat().st_mode) == 0o755
