"""Review 53u, control: the node's control socket seen by a local user who is not its owner
(docs/protocols.md, "Node control")."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from troth.errors import ConfigError
from troth.node import init_node
from troth.node.daemon import control, node_status, start_daemon, stop_daemon

# The node: it holds the node's lock (as the real daemon does) and listens on the control
# socket; its status file names it.
_NODE = """
import fcntl, os, socket, sys
lock = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lock, fcntl.LOCK_EX)
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[1])
server.listen()
open(sys.argv[1] + ".ready", "w").close()
while True:
    server.accept()[0].close()
"""

# Another process (another user's, in a node directory left writable by others): it puts its
# own listener at the socket's name and keeps what the CLI sends, answering "ok".
_PLANTED = """
import os, socket, sys
from troth.encoding import cbor
from troth.transport.framing import frame
os.unlink(sys.argv[1])
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[1])
server.listen()
open(sys.argv[1] + ".planted", "w").close()
while True:
    connection, _ = server.accept()
    data = connection.recv(65536)
    with open(sys.argv[2], "ab") as kept:
        kept.write(data)
    connection.sendall(frame(cbor.encode({"ok": True, "result": None})))
    connection.close()
"""


def _wait(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline
        assert process.poll() is None
        time.sleep(0.05)


@pytest.fixture
def planted(troth_home: Path, tmp_path: Path) -> Iterator[Path]:
    """Node `n` running (a stand-in holding its lock), its control socket replaced by another
    process's listener; the file where that listener keeps what it is sent."""
    init_node("n")
    directory = troth_home / "nodes" / "n"
    socket_path = directory / "control.sock"
    kept = tmp_path / "kept"
    node = subprocess.Popen(
        [sys.executable, "-c", _NODE, str(socket_path), str(directory / "node.lock")]
    )
    other: subprocess.Popen[bytes] | None = None
    try:
        _wait(Path(str(socket_path) + ".ready"), node)
        status = {"pid": node.pid, "listening": None, "control": str(socket_path)}
        (directory / "status.json").write_text(json.dumps(status))
        os.chmod(directory / "status.json", 0o600)
        other = subprocess.Popen([sys.executable, "-c", _PLANTED, str(socket_path), str(kept)])
        _wait(Path(str(socket_path) + ".planted"), other)
        yield kept
    finally:
        for process in (node, other):
            if process is not None:
                process.kill()
                process.wait()


def test_a_listener_planted_at_the_socket_is_never_sent_the_request(
    troth_home: Path, planted: Path
) -> None:
    """Review 53u, control 1. The CLI connected to the path in the node's status file and
    sent its request to whatever listened there: a node directory another user can write in
    (made loose after `troth node create`, restored from a copy, a shared home; nothing
    checks it again) let them unlink the control socket and listen at its name, and
    `troth node enroll` handed them the ticket (a lease request its secret's name, and so
    on), and took their answer for the node's. Now the CLI asks the kernel who listens
    (SO_PEERCRED) and talks only to the process that holds the node's lock, the one its
    status names; anything else is refused before a byte is sent."""
    with pytest.raises(ConnectionRefusedError, match="not the node"):
        control(troth_home, "n", "enroll", {"ticket": "troth-ticket-SECRET"})
    assert not planted.exists() or b"SECRET" not in planted.read_bytes()


# A client of another user: it connects to the node's control socket and asks for `status`;
# it prints the answer.
_OTHER_USER = """
import asyncio, os, sys
from troth.node.daemon import _control_request  # imported first: the code is not theirs to read
os.setgid(65534)
os.setuid(65534)
try:
    print(asyncio.run(_control_request(sys.argv[1], "status", {}, 30.0, int(sys.argv[2]))))
except Exception as exc:
    print(type(exc).__name__, exc)
"""


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="runs a client as another user"
)
def test_another_user_who_reaches_the_socket_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 53u, control 2. The node ran any request of whoever could connect to its control
    socket: the socket's mode and its directory's were the only check, and neither is looked
    at again (the node directory is made 0700 by `troth node create` and never checked at
    start; the socket is made with the process's umask and made 0600 only after it listens).
    A node directory left open to others (here, as such a window leaves the socket, the
    socket itself too) let another user run every operation: read the status, enroll, lease,
    publish an MCP upstream (a command line run as the owner). Now the node asks the kernel
    who connected (SO_PEERCRED) and refuses anyone but its own user (and root) before it
    reads the request."""
    home = Path(tempfile.mkdtemp(prefix="t53u-", dir="/tmp"))
    monkeypatch.setenv("TROTH_HOME", str(home))
    try:
        init_node("n", home=home)
        for path in (home, home / "nodes", home / "nodes" / "n"):
            os.chmod(path, 0o755)  # noqa: S103 - the loose directory is the attack
        started = start_daemon(home, "n", None)
        try:
            os.chmod(started["control"], 0o666)  # noqa: S103 - as the window leaves it
            other = subprocess.run(
                [sys.executable, "-c", _OTHER_USER, started["control"], str(started["pid"])],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert other.returncode == 0, other.stderr
            assert "identifier" not in other.stdout, other.stdout
            # answered so, or, when the answer and close came before its request was written,
            # a broken pipe: never served
            refusals = ("PermissionError", "BrokenPipeError", "ConnectionResetError")
            assert other.stdout.startswith(refusals), other.stdout
            assert control(home, "n", "status", {})["name"] == "n"  # its owner still is served
        finally:
            stop_daemon(home, "n")
            with contextlib.suppress(ProcessLookupError):
                os.kill(started["pid"], signal.SIGKILL)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_a_link_at_node_log_is_not_followed(troth_home: Path, tmp_path: Path) -> None:
    """Review 53u, control 3. `troth node start` opened `<node dir>/node.log` to append the
    node's output and chmod-ed it 0600, both through whatever was at that name: a link put
    there (a node directory left open to others, as above) had another file of the owner's
    (a shell profile, a file they share) made private and the node's log appended to it. Now
    node.log is opened without following a link, and must be a regular file of this user."""
    init_node("n")
    victim = tmp_path / "victim"
    victim.write_text("the owner's\n")
    os.chmod(victim, 0o644)  # a file of theirs others read
    (troth_home / "nodes" / "n" / "node.log").symlink_to(victim)
    try:
        with pytest.raises(ConfigError, match=r"node\.log"):
            start_daemon(troth_home, "n", None)
    finally:
        if node_status(troth_home, "n")["running"]:
            stop_daemon(troth_home, "n")
    assert victim.read_text() == "the owner's\n"
    assert victim.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("where", ["nodes/n", "nodes", ""])
def test_a_node_directory_others_can_write_in_is_not_started(troth_home: Path, where: str) -> None:
    """Review 53u, control 4. Controls 1 to 3 above share a cause: a node started in a
    directory another user can write in (made so after `troth node create`, restored from a
    copy with loose modes), where they replace the control socket, the node's log and any
    file not checked at its use. Nothing looked at the directory again after `node create`
    made it 0700. Now a node is not started there (as ssh's StrictModes): the node's
    directory, the nodes directory and the troth home must be this user's (or root's) and
    writable by no one else."""
    init_node("n")
    os.chmod(troth_home / where, 0o777)  # noqa: S103 - the loose directory under test
    try:
        with pytest.raises(ConfigError, match="writable by others"):
            start_daemon(troth_home, "n", None)
    finally:
        os.chmod(troth_home / where, 0o700)
        if node_status(troth_home, "n")["running"]:
            stop_daemon(troth_home, "n")
