"""Review 53u, control: the node's control socket seen by a local user who is not its owner
(docs/protocols.md, "Node control")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from troth.node import init_node
from troth.node.daemon import control

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
