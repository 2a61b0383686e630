"""Review 46b, refuted: attacks on the CLI's input files and a node's control socket that
failed, pinned. Each input file is read up to its limit in troth.limits before anything parses
it (`read_input`: exit 4 past it), and what is read is judged by the strict decoders (exit 1);
the control socket is 0600 in a 0700 directory, and refuses what is not a request."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_review46b_inputs import _request, _serving
from troth import limits
from troth.cli.main import cli
from troth.encoding import cbor
from troth.node import daemon, init_node
from troth.node.daemon import answer_error

ANCHOR = "T" + "0" * 64
SRC = str(Path(__file__).parents[1] / "src")

_HOSTILE: dict[str, bytes | str] = {
    "directory": "DIR",
    "empty": b"",
    "not UTF-8": b"\xff\xfe\x80garbage\xc3",
    "BOM": b"\xef\xbb\xbf{}",
    "deep arrays": b"[" * 50_000,
    "duplicate keys": b'{"a": 1, "a": 2}',
    "NaN": b'{"a": NaN, "b": Infinity}',
    "5000-digit integer": b'{"a": 1' + b"0" * 5000 + b"}",
    "sparse 2 GiB": "SPARSE",
    "link to /dev/zero": "ZERO",
    "/dev/urandom": "/dev/urandom",
}

_COMMANDS: dict[str, tuple[str, ...]] = {
    "identity verify": ("identity", "verify", "{}"),
    "credential verify": ("credential", "verify", "{}", "--trust", ANCHOR),
    "vc verify": ("credential", "verify", "--format", "vc", "{}", "--trust", ANCHOR),
    "credential show": ("credential", "show", "--file", "{}"),
    "trace verify --file": ("trace", "verify", "--file", "{}"),
    "trace verify --checkpoint": ("trace", "verify", "--checkpoint", "{}"),
    "policy push": ("policy", "push", "{}"),
}


def _hostile(kind: str, tmp_path: Path) -> str:
    value = _HOSTILE[kind]
    path = tmp_path / "input"
    if value == "DIR":
        path.mkdir()
    elif value == "SPARSE":
        with open(path, "wb") as file:
            file.truncate(2 * 1024**3)
    elif value == "ZERO":
        path.symlink_to("/dev/zero")
    elif isinstance(value, str):
        return value
    else:
        path.write_bytes(value)
    return str(path)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero and /dev/urandom")
@pytest.mark.parametrize("command", sorted(_COMMANDS))
@pytest.mark.parametrize("kind", sorted(_HOSTILE))
def test_a_hostile_input_file_is_a_typed_error(kind: str, command: str, tmp_path: Path) -> None:
    """Every kind of hostile file, at every reader: exit 1 (read, and judged invalid), 2 (a
    directory: click's usage error) or 4 (not read: over its limit), an error on stderr, never
    a traceback (CliRunner re-raises one), a hang or a read past the reader's limit (a sparse
    2 GiB file and a link to /dev/zero fail after limit + 1 bytes)."""
    if (kind, command) == ("empty", "trace verify --file"):
        pytest.skip("an empty export is unanchored, 0 records: test_review46b_inputs, cli 1")
    path = _hostile(kind, tmp_path)
    args = [path if word == "{}" else word for word in _COMMANDS[command]]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code in (1, 2, 4), (result.stdout, result.stderr)
    assert result.stderr.strip()
    if kind in ("sparse 2 GiB", "link to /dev/zero"):
        assert result.exit_code == 4, result.stderr
        assert "larger than" in result.stderr or "longer than" in result.stderr


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"a": 1, "a": 2}', "duplicate member name 'a'"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "is outside"),
        (b"\xef\xbb\xbf{}", "BOM"),
        (b"[" * 50_000, "nested deeper than"),
    ],
)
def test_json_files_are_read_one_way_only(content: bytes, reason: str, tmp_path: Path) -> None:
    """A VC, a tools map, a secret configuration: I-JSON only (a duplicate key, NaN, an integer
    past 2**53, a BOM, nesting past the limit: exit 1 naming why), never Python's own reading
    of them (the last key wins, NaN, a 5000-digit int's ValueError)."""
    path = tmp_path / "tools.json"
    path.write_bytes(content)
    policies = tmp_path / "policies.cedar"
    policies.write_text('@id("a") permit(principal, action, resource);')
    args = ["policy", "bundle", "create", "--policies", str(policies), "--tools", str(path)]
    args += ["--revision", "1", "--as", "x", "--authority", ANCHOR, "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 1, result.stderr
    assert reason in result.stderr


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="Linux /proc only")
def test_a_fifo_without_a_writer_waits_and_ctrl_c_ends_it(tmp_path: Path) -> None:
    """A FIFO is read as a file (`<(...)`, review 30c files 1: its writer may open it after the
    reader), so one no one writes waits, as `cat` does. Ctrl-C ends it: exit 130, "troth:
    interrupted", never a traceback."""
    fifo = tmp_path / "chain"
    os.mkfifo(fifo)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "troth.cli.main",
            "credential",
            "verify",
            str(fifo),
            "--trust",
            ANCHOR,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    try:
        wchan = Path(f"/proc/{child.pid}/wchan")
        for _ in range(400):  # until it waits for the FIFO's writer (~8 s at most)
            if wchan.read_text() == "wait_for_partner":
                break
            time.sleep(0.02)
        else:
            pytest.skip("the child never waited in the FIFO's open (another kernel?)")
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=8)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err
    assert b"troth: interrupted" in err
    assert b"Traceback" not in err


async def _ask(path: str, data: bytes) -> object:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return cbor.decode(answer[5:])


@pytest.mark.parametrize(
    ("request_bytes", "kind", "says"),
    [
        (_request("no.such"), "NotFound", "unknown control operation"),
        (_request("channel.create"), "DecodeError", "argument 'to' is required"),
        (_request("status", extra="x"), "DecodeError", "unknown arguments: extra"),
        (
            _request("mcp.serve", name="x", upstream="'unterminated"),
            "ValueError",
            "No closing quotation",
        ),
        (b"\xff" * 5, "DecodeError", "unknown frame version"),
        (b"\x00\xff\xff\xff\xff", "DecodeError", ""),
    ],
)
def test_what_is_not_a_request_is_refused(
    request_bytes: bytes, kind: str, says: str, troth_home: Path
) -> None:
    """Unknown ops, missing or unknown arguments, a bad command line, a frame that is not one
    or claims 4 GiB: an error answer of its class, nothing run, the node still answering."""
    init_node("n", home=troth_home)
    answers: list[object] = []

    async def body(path: str) -> None:
        answers.append(await _ask(path, request_bytes))
        answers.append(await _ask(path, _request("status")))

    asyncio.run(_serving(troth_home, body))
    refused, status = answers
    assert isinstance(refused, dict)
    assert isinstance(status, dict)
    assert (refused["ok"], refused["kind"]) == (False, kind), refused
    assert says in str(answer_error(refused))
    assert status["ok"] is True


def test_wrongly_typed_requests_are_refused(troth_home: Path) -> None:
    """Arguments of the wrong type, arguments not a map, an op not text, a request not a map."""
    init_node("n", home=troth_home)
    bad = [
        {"op": "channel.create", "args": {"to": 5}},
        {"op": "status", "args": [1]},
        {"op": 5},
        [1, 2],
    ]
    answers: list[object] = []

    async def body(path: str) -> None:
        for value in bad:
            request = daemon._control_frame(value, limits.MAX_CONTROL_REQUEST)
            answers.append(await _ask(path, request))

    asyncio.run(_serving(troth_home, body))
    assert [a["kind"] for a in answers if isinstance(a, dict)] == ["DecodeError"] * len(bad)


def test_a_thousand_idle_connections_leave_the_node_answering(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 clients connect and send nothing: the node answers another meanwhile, and drops
    each idle one at CONTROL_IO_TIMEOUT (here 0.5 s)."""
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 2500:
        pytest.skip("needs 2,500 descriptors (both ends of 1,000 connections in one process)")
    monkeypatch.setattr(daemon, "CONTROL_IO_TIMEOUT", 0.5)
    init_node("n", home=troth_home)
    answers: list[object] = []

    async def body(path: str) -> None:
        idle = [await asyncio.open_unix_connection(path) for _ in range(1000)]
        answers.append(await _ask(path, _request("status")))
        closed = await asyncio.wait_for(asyncio.gather(*(r.read() for r, _ in idle)), 8)
        answers.append(len(closed))
        for _, writer in idle:
            writer.close()

    asyncio.run(_serving(troth_home, body))
    status, dropped = answers
    assert isinstance(status, dict)
    assert status["ok"] is True
    assert dropped == 1000


@pytest.mark.skipif(os.getuid() != 0, reason="connecting as another user needs root")
def test_another_user_cannot_reach_the_control_socket(troth_home: Path) -> None:
    """The socket is 0600 in a 0700 directory: another local user (nobody) is refused."""
    init_node("n", home=troth_home)
    outcome: list[object] = []

    async def body(path: str) -> None:
        modes = (os.stat(path).st_mode, os.stat(os.path.dirname(path)).st_mode)
        outcome.append(tuple(stat.S_IMODE(mode) for mode in modes))
        outcome.append(_connect_as(65534, path))

    asyncio.run(_serving(troth_home, body))
    assert outcome == [(0o600, 0o700), "refused"]


def _connect_as(uid: int, path: str) -> str:
    """What a process of user `uid` gets connecting to `path`: "connected", "refused"
    (PermissionError) or "failed" (another error)."""
    pid = os.fork()
    if pid == 0:  # the child: only system calls, then out
        code = 1
        try:
            os.setuid(uid)
            socket.socket(socket.AF_UNIX).connect(path)
            code = 0
        except PermissionError:
            code = 13
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return {0: "connected", 13: "refused"}.get(os.waitstatus_to_exitcode(status), "failed")


def test_status_file_past_its_limit_is_not_running(troth_home: Path) -> None:
    """A status.json past MAX_NODE_FILE_BYTES (a sparse 2 GiB one) is read to its limit only:
    the node is not running, said at once."""
    init_node("n", home=troth_home)
    status = troth_home / "nodes" / "n" / "status.json"
    with open(status, "wb") as file:
        file.write(json.dumps({"pid": os.getpid()}).encode())
        file.truncate(2 * 1024**3)
    status.chmod(0o600)  # as the node writes it: refused for its size, not its mode
    assert daemon.node_status(troth_home, "n")["running"] is False
