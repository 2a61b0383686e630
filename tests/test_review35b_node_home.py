"""Review 35b, node home: the lock check review 34d, node home 6 added to tell the node's pid
(a status file's pid is the node's only while it holds node.lock, per /proc/locks)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Run in a private mount namespace (root only): an overlay whose upper directory is on another
# file system than its lower one, as a container's home may be. stat() reports the upper file
# system's device for a file there, /proc/locks the overlay's (as btrfs does for every file:
# its stat device is a subvolume's, util-linux #2349).
_SCRIPT = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from pathlib import Path

    base = Path(sys.argv[1])
    for part in ("lower", "up", "home"):
        (base / part).mkdir()
    def mount(*args):
        subprocess.run(["mount", *args], check=True)
    mount("-t", "tmpfs", "tmpfs", str(base / "up"))
    (base / "up" / "u").mkdir()
    (base / "up" / "w").mkdir()
    mount("-t", "overlay", "overlay", "-o",
          f"lowerdir={base / 'lower'},upperdir={base / 'up' / 'u'},workdir={base / 'up' / 'w'}",
          str(base / "home"))
    home = base / "home"
    os.environ["TROTH_HOME"] = str(home)
    from troth.node import init_node
    from troth.node.daemon import node_status, start_daemon, stop_daemon
    from troth.errors import ConfigError

    init_node("n", home=home)
    result = {}
    try:
        result["started"] = start_daemon(home, "n", None)["running"]
    except ConfigError as exc:
        result["start_error"] = str(exc)
    status = node_status(home, "n")
    result["status"] = status["running"]
    result["stopped"] = stop_daemon(home, "n")
    lock = home / "nodes" / "n" / "node.lock"
    probe = subprocess.run(["flock", "-n", str(lock), "true"])
    result["lock_free"] = probe.returncode == 0
    print(json.dumps(result))
    """
)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("flock") is None,
    reason="an overlay mount in a private mount namespace needs root, unshare and flock",
)
def test_a_node_whose_lock_stat_and_proc_locks_name_other_devices_starts_and_stops(
    tmp_path: Path,
) -> None:
    """Review 35b, node home 1. Review 34d, node home 6 took a status file's pid for the node
    only when /proc/locks lists it holding an flock on node.lock, matched by device and inode,
    and never when it lists it holding any other flock. But /proc/locks names a file's device
    as its file system's superblock does, stat() as the file system reports it, and the two
    differ on btrfs (every file: stat reports a subvolume's anonymous device) and on an
    overlay whose layers are on different file systems (a container's home): the node's own
    lock matched nothing, and, as the node holds an flock, it was "another node". `troth node
    start` waited 15 s for a node it never recognised, then killed it ("did not become
    ready"); a node started by hand was "not running" to status, stop and every control
    command, and `troth node stop` could not stop it.

    Was a strict xfail until `_is_our_node` asked the process itself, where /proc/locks listed
    it holding an flock that did not match: one of its descriptors is node.lock (stat through
    /proc/PID/fd, the same device as the CLI's) and holds an flock (/proc/PID/fdinfo)."""
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-c", _SCRIPT, tmp_path],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "start_error" not in result, result["start_error"]
    assert result == {"started": True, "status": True, "stopped": True, "lock_free": True}
