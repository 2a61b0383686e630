"""Review 34d, control: the node's control socket seen from the CLI that uses it
(docs/protocols.md, "Node control")."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from troth import limits
from troth.cli.output import EXIT_IO
from troth.node import init_node
from troth.node.daemon import control, start_daemon, stop_daemon

# A stand-in for a node killed while it ran a request: it takes each control connection, reads
# the request, and closes it without an answer (as a SIGKILL-ed or crashed daemon's does). It
# holds the node's lock, as the real daemon does.
_SILENT_NODE = """
import fcntl, os, socket, sys
lock = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lock, fcntl.LOCK_EX)  # it runs the node: it holds its lock
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
        [sys.executable, "-c", _SILENT_NODE, str(socket_path), str(directory / "node.lock")]
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


_MANY_TOOLS = 1200
"""Tools of names near MAX_TOOL_NAME, their names alone past MAX_TRANSPORT_FRAME (asserted):
half the tools of names half as long this test listed before (71m, ci), the same answer's
size, half the SDK's registrations (most of the test's time)."""
_NAME_PAD = limits.MAX_TOOL_NAME - len("tool_00000_") - 6
_MANY_TOOLS_SERVER = f"""
from mcp.server import MCPServer

app = MCPServer("catalogue")
for i in range({_MANY_TOOLS}):
    def tool() -> str:
        return "ok"
    app.add_tool(tool, name=f"tool_{{i:05d}}_" + "x" * {_NAME_PAD})
app.run()
"""


def test_an_answer_over_a_transport_frame_reaches_the_cli(troth_home: Path, tmp_path: Path) -> None:
    """Review 34d, control 2. The control socket framed with the network's frame limit (128
    KiB), answers too: an answer that did not fit (`mcp.serve` of an upstream with a large
    catalogue, `channel list` on a hub with several hundred channels) raised in the
    daemon's handler after the operation was done, and the connection closed without an
    answer. `troth mcp serve` failed while the node served the upstream (and a retry was
    refused: already published). Now the control socket (local, the owner's) takes answers
    up to MAX_CONTROL_ANSWER (16 MiB), and one past even that is answered as an error.

    Was a strict xfail until the control protocol framed answers with MAX_CONTROL_ANSWER."""
    upstream = tmp_path / "catalogue.py"
    upstream.write_text(_MANY_TOOLS_SERVER)
    init_node("n")
    started = start_daemon(troth_home, "n", None)
    try:
        answer = control(
            troth_home,
            "n",
            "mcp.serve",
            {"name": "catalogue", "upstream": f"{sys.executable} {upstream}", "cwd": None},
            timeout=120,
        )
        assert len(answer["tools"]) == _MANY_TOOLS
        assert sum(map(len, answer["tools"])) > limits.MAX_TRANSPORT_FRAME  # what is tested
        assert answer["service"] == "mcp.catalogue"
    finally:
        stop_daemon(troth_home, "n")
        with contextlib.suppress(ProcessLookupError):
            os.kill(started["pid"], signal.SIGKILL)


def test_a_node_that_does_not_answer_says_so(troth_home: Path) -> None:
    """Review 34d, control 3. A node that takes a request and does not answer in time (hung,
    stopped with SIGSTOP, or the operation is slow: an enrollment over a slow route) failed
    the command with asyncio's bare TimeoutError: `troth: ` and nothing else on stderr (with
    --json, an empty message), saying neither which node, nor that the request may still be
    done. Now the error names the operation and the time waited, and says it may still be
    done.

    Was a strict xfail until `_control_request` said what timed out."""
    init_node("n")
    started = start_daemon(troth_home, "n", None)
    os.kill(started["pid"], signal.SIGSTOP)
    try:
        with pytest.raises(TimeoutError) as raised:
            control(troth_home, "n", "status", {}, timeout=1)
        assert "did not answer status within 1 s" in str(raised.value)
    finally:
        os.kill(started["pid"], signal.SIGCONT)
        stop_daemon(troth_home, "n")
