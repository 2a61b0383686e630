"""Review 34d, node home: the local attack surface of a node's directory and of the daemon that
runs it (docs/protocols.md, "Node control"): two starts at once, a temporary file a killed
writer left, a symlink planted where the control socket's fallback directory goes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import MemNet, run_memnet
from troth.errors import ConfigError, ConflictError
from troth.node import daemon as node_daemon
from troth.node import init_node, open_node
from troth.node.control import perform
from troth.node.daemon import node_status, record_listen, serve, start_daemon, stop_daemon

NOBODY = 65534


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
    os.chmod(victim, 0o755)  # noqa: S103 - a directory others may read (a web root)
    (shared / f"troth-{os.getuid()}").symlink_to(victim)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    home = tmp_path / ("h" * 100)  # <home>/nodes/n/control.sock is over the AF_UNIX limit
    monkeypatch.setenv("TROTH_HOME", str(home))
    init_node("n", home=home)
    with pytest.raises(ConfigError, match="not a private directory"):
        asyncio.run(serve(home, "n", None))
    assert stat.S_IMODE(victim.stat().st_mode) == 0o755


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_mcp_serve_of_one_name_at_once_leave_no_upstream_behind(tmp_path: Path) -> None:
    """Review 34d, node home 4. `mcp.serve orders` twice at once on a running node (two
    `troth mcp serve orders`, a script retrying): each checked the name free, then spawned
    its upstream and waited for its tools; the second to finish replaced the first in the
    node's services, then failed as the route was taken (RoutingError). Its upstream ran on,
    served by nothing, until the node stopped, and the first, still served, was no longer
    among the services the node closes when it stops. Now the name is taken before the
    upstream is spawned: the second is refused (ConflictError) and spawns nothing.

    Was a strict xfail until `publish_upstream` reserved the name before it started."""
    pids = tmp_path / "pids"
    pids.mkdir()
    upstream = tmp_path / "upstream.py"
    orders = Path(__file__).parent / "support" / "mcp_orders.py"
    upstream.write_text(
        "import os, runpy\n"
        f"open(os.path.join({str(pids)!r}, str(os.getpid())), 'w').close()\n"
        f"runpy.run_path({str(orders)!r}, run_name='__main__')\n"
    )
    command = f"{sys.executable} {upstream}"

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        serve_args = {"name": "orders", "upstream": command, "cwd": None}
        answers = await asyncio.gather(
            perform(hub, "mcp.serve", serve_args),
            perform(hub, "mcp.serve", serve_args),
            return_exceptions=True,
        )
        running = [int(p.name) for p in pids.iterdir() if _alive(int(p.name))]
        assert len(running) == 1, (running, answers)  # the served upstream, and no other
        published = [a for a in answers if isinstance(a, dict)]
        refused = [a for a in answers if isinstance(a, BaseException)]
        assert len(published) == 1, answers
        assert len(refused) == 1, answers
        assert isinstance(refused[0], ConflictError), answers
        assert "already published" in str(refused[0])

    run_memnet(test, tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="a process of another user needs root")
def test_another_users_process_on_a_stale_pid_is_not_the_node(troth_home: Path) -> None:
    """Review 34d, node home 5. A node that crashed (a kill, the OOM killer, a reboot) leaves
    its status file naming its pid. Another local user sees the node's command line in the
    process list (`python -m troth.node hub`: world-readable), then forks until a process of
    theirs gets that pid, with `troth.node hub` in its own command line. Whether a pid is the
    node was judged by the command line alone: `troth node start hub` refused ("already
    running") and `troth node stop hub` failed (PermissionError, exit 4) for as long as the
    other user's process lived. Now a process of another user is never taken for the node.

    Was a strict xfail until `_is_our_node` required the process to be this user's."""
    init_node("hub")
    impostor = subprocess.Popen(
        ["/bin/sh", "-c", "sleep 60; :", "troth.node", "hub"], user=NOBODY, group=NOBODY
    )
    try:
        directory = troth_home / "nodes" / "hub"
        stale = {"pid": impostor.pid, "listening": None, "control": str(directory / "x.sock")}
        (directory / "status.json").write_text(json.dumps(stale))
        os.chmod(directory / "status.json", 0o600)
        assert not node_status(troth_home, "hub")["running"]
        assert stop_daemon(troth_home, "hub") is False
        assert impostor.poll() is None  # and it was sent nothing
    finally:
        impostor.kill()
        impostor.wait()


def test_a_stale_pid_taken_by_another_homes_node_is_not_this_node(
    troth_home: Path, tmp_path: Path
) -> None:
    """Review 34d, node home 6. Node `n` of this home crashed, its status file naming its pid;
    the pid now belongs to node `n` of another home (the default node of two homes, a test
    home and the real one; pids are reused, and in a container a daemon gets the same pid at
    each start). Whether the pid was this node was judged by its command line, which is the
    same: `troth node status n` said running, `troth node start n` refused ("already
    running") and `troth node stop n` stopped the other home's node. Now the pid is this
    node's only while that process holds this node's lock (node.lock, /proc/locks).

    Was a strict xfail until `_is_our_node` asked /proc/locks who holds this node's lock."""
    other = tmp_path / "other-home"
    init_node("n", home=other)
    running = start_daemon(other, "n", None)
    try:
        init_node("n")
        directory = troth_home / "nodes" / "n"
        stale = {"pid": running["pid"], "listening": None, "control": str(directory / "x.sock")}
        (directory / "status.json").write_text(json.dumps(stale))
        os.chmod(directory / "status.json", 0o600)
        assert not node_status(troth_home, "n")["running"]
        assert stop_daemon(troth_home, "n") is False
        assert node_status(other, "n")["running"]  # the other home's node runs on
    finally:
        stop_daemon(other, "n")
        with contextlib.suppress(ProcessLookupError):
            os.kill(running["pid"], signal.SIGKILL)


def test_a_node_in_a_home_with_a_non_ascii_path_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 34d, node home 7. The control socket goes to a runtime directory when its path
    is too long for AF_UNIX (108 bytes), but the length was counted in characters: a home
    whose path is under 100 characters and over 108 bytes (accented or CJK directory names:
    2-3 bytes each in UTF-8) put the socket in the node directory, where bind() failed, and
    the node never started ("AF_UNIX path too long"). Now the length is counted in bytes.

    Was a strict xfail until `_socket_path` measured the encoded path."""
    room = 99 - len(str(tmp_path)) - 1 - len("/nodes/n/control.sock")
    if room < 12:
        pytest.skip("the temporary directory's path is too long for this test")
    home = tmp_path / ("€" * room)  # 3 bytes each
    assert len(os.fsencode(home / "nodes" / "n" / "control.sock")) > 108
    monkeypatch.setenv("TROTH_HOME", str(home))
    (tmp_path / "run").mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    init_node("n", home=home)
    started = start_daemon(home, "n", None)
    try:
        assert node_status(home, "n")["running"]
    finally:
        stop_daemon(home, "n")
        with contextlib.suppress(ProcessLookupError):
            os.kill(started["pid"], signal.SIGKILL)
