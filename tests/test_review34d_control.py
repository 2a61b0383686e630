"""Review 34d, control: the node's control socket seen from the CLI that uses it
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

from troth.cli.output import EXIT_IO
from troth.node import init_node

# A stand-in for a node killed while it ran a request: it takes each control connection, reads
# the request, and closes it without an answer (as a SIGKILL-ed or crashed daemon's does). Its
# command line names troth.node and the node, as the real daemon's does.
_SILENT_NODE = """
import socket, sys
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[1])
server.listen()
open(sys.argv[1] + ".ready", "w").close()
while True:
    connection, _ = server.accept()
    connection.recv(65536)
    connection.close()
"""


@pytest.fixture
def silent_node(troth_home: Path) -> Iterator[str]:
    """Node `n`, whose status file names a process that closes every control request unanswered."""
    init_node("n")
    directory = troth_home / "nodes" / "n"
    socket_path = directory / "control.sock"
    process = subprocess.Popen(
        [sys.executable, "-c", _SILENT_NODE, str(socket_path), "troth.node", "n"]
    )
    try:
        ready = Path(str(socket_path) + ".ready")
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline
            assert process.poll() is None
            time.sleep(0.05)
        status = {"pid": process.pid, "listening": None, "control": str(socket_path)}
        (directory / "status.json").write_text(json.dumps(status))
        os.chmod(directory / "status.json", 0o600)
        yield "n"
    finally:
        process.kill()
        process.wait()


def test_a_node_gone_mid_request_is_an_io_error_in_json(silent_node: str) -> None:
    """Review 34d, control 1. A node stopped or killed while it runs a request (an enrollment,
    a lease, `node status` at the moment it stops) closes the control connection without an
    answer: the CLI failed with asyncio's IncompleteReadError, an EOFError that click takes
    for an aborted prompt: an empty line on stderr, exit 1 ("invalid") and, with --json, no
    JSON at all — nothing said the request may or may not have run. Now it is an I/O error
    (exit 4) saying the node closed the connection without an answer, a JSON object with
    --json.

    Was a strict xfail until `_control_request` turned a connection closed before the answer
    into a ConnectionError."""
    result = subprocess.run(
        [sys.executable, "-m", "troth.cli.main", "node", "status", silent_node, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == EXIT_IO, (result.stdout, result.stderr)
    error = json.loads(result.stdout)
    assert error["exit_code"] == EXIT_IO
    assert "without an answer" in error["message"]
    assert "Traceback" not in result.stderr
