"""Review 46b, inputs: what the CLI reads from files and a node's control socket reads from its
clients (docs/protocols.md, "Node control"). The control socket is 0600 in a 0700 directory:
its clients are this user's processes (a script, a stuck CLI), so what is pinned here is that
a client which misbehaves costs the node a bounded amount, for a bounded time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from troth import limits
from troth.cli.main import cli
from troth.encoding import cbor
from troth.errors import ConfigError
from troth.node import daemon, init_node
from troth.node.home import read_private_file
from troth.transport.framing import frame


async def _serving(home: Path, body: Callable[[str], Awaitable[None]]) -> None:
    """Node `n` served in this process (`daemon.serve`) while `body(control socket)` runs;
    stopped by the SIGTERM it handles once it runs."""
    task = asyncio.create_task(daemon.serve(home, "n", None))
    for _ in range(400):  # at most ~8 s to come up (its status file says "starting" before)
        if daemon.node_status(home, "n")["running"] or task.done():
            break
        await asyncio.sleep(0.02)
    if task.done():
        await task  # its error
    if not daemon.node_status(home, "n")["running"]:
        task.cancel()
        raise AssertionError("the node did not come up")
    try:
        await body(daemon.node_status(home, "n")["control"])
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # its handler: the loop's, set by serve
        await asyncio.wait_for(task, 10)


def _handlers() -> list[asyncio.Task[object]]:
    """The control connections' handlers running now."""
    return [
        task
        for task in asyncio.all_tasks()
        if "_run.<locals>.handle" in getattr(task.get_coro(), "__qualname__", "")
    ]


def _request(op: str, **arguments: str) -> bytes:
    return frame(cbor.encode({"op": op, "args": arguments}), limits.MAX_CONTROL_REQUEST)


def test_a_client_that_never_reads_its_answer_is_dropped(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 46b, control 1. A client sends a request and never reads the answer: the node
    wrote the answer and waited for it to drain with no deadline, so the connection, its
    handler and the answer (up to MAX_CONTROL_ANSWER, 16 MiB) were held until the client
    went away, however long (the request had 10 s to come; its answer had forever). A route
    of 120,000 NULs comes back quoted in the RoutingError (4 bytes each): ~480 KB, more than
    the socket buffers hold. The handler now gives the answer CONTROL_IO_TIMEOUT to drain,
    then drops the connection. Was a strict xfail until the write had that deadline."""
    monkeypatch.setattr(daemon, "CONTROL_IO_TIMEOUT", 0.5, raising=False)
    init_node("n", home=troth_home)

    async def body(path: str) -> None:
        _reader, writer = await asyncio.open_unix_connection(path)
        writer.write(_request("channel.create", to="\0" * 120_000))
        await writer.drain()
        for _ in range(400):  # the handler's end, or ~8 s
            await asyncio.sleep(0.02)
            if not _handlers():
                break
        held = bool(_handlers())
        writer.transport.abort()
        assert not held, "the handler still waits for a client that never reads"

    asyncio.run(_serving(troth_home, body))


def test_a_request_cut_short_is_logged_without_a_traceback(
    troth_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review 46b, control 2. A client that connects and closes before a whole request (a
    killed CLI, a probe) is the client's failure, answered and logged as such in one line:
    each was logged with a full traceback (`log.exception`), node.log growing by a traceback
    per connection. Was a strict xfail until a request cut short was a caller's error."""
    init_node("n", home=troth_home)

    async def body(path: str) -> None:
        _, writer = await asyncio.open_unix_connection(path)
        writer.write(_request("status")[:3])
        await writer.drain()
        writer.close()
        for _ in range(400):
            await asyncio.sleep(0.02)
            if not _handlers():
                break

    with caplog.at_level(logging.INFO, logger="troth.node.daemon"):
        asyncio.run(_serving(troth_home, body))
    tracebacks = [r for r in caplog.records if r.name == "troth.node.daemon" and r.exc_info]
    assert tracebacks == []


def test_a_node_json_that_is_a_fifo_does_not_hang_the_cli(troth_home: Path) -> None:
    """Review 46b, home 1. Every command that names identities or authorities reads the
    node.json of every node in the home (`Directory`): one that is a FIFO (a restored or
    copied home, a mistake) made `troth authority list` wait forever for a writer; any file
    was read whole. `read_private_file` opens without waiting, takes regular files only, and
    reads at most its limit. Was a strict xfail until it did."""
    init_node("n", home=troth_home)
    odd = troth_home / "nodes" / "x"
    odd.mkdir(mode=0o700)
    os.mkfifo(odd / "node.json", 0o600)
    try:
        child = subprocess.run(
            [sys.executable, "-m", "troth.cli.main", "authority", "list"],
            capture_output=True,
            text=True,
            timeout=8,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("troth authority list waited on a FIFO at nodes/x/node.json")
    assert child.returncode == 0, child.stderr
    with pytest.raises(ConfigError, match="not a regular file"):
        read_private_file(odd / "node.json")


def test_a_huge_private_file_is_not_read_whole(tmp_path: Path) -> None:
    """Review 46b, home 2. A node.json of 64 MiB (sparse: costs no disk) was read whole
    before its size was judged; now reading stops past the limit (ConfigError naming it)."""
    big = tmp_path / "node.json"
    with open(big, "wb") as file:
        file.truncate(64 * 1024 * 1024)
    os.chmod(big, 0o600)
    tracemalloc.start()
    try:
        with contextlib.suppress(ConfigError):
            read_private_file(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * limits.MAX_NODE_FILE_BYTES
    with pytest.raises(ConfigError, match=f"larger than {limits.MAX_NODE_FILE_BYTES} bytes"):
        read_private_file(big)


def test_an_empty_export_says_the_file_holds_nothing(tmp_path: Path) -> None:
    """Review 46b, cli 1. `troth trace verify --file` of an empty file (a cut download, a
    truncation to nothing) said "unanchored: 0 record(s) verified (the log has no checkpoint
    yet: troth trace checkpoint)": advice about the node's own log, which was not read, for a
    file that holds nothing. It is still unanchored (exit 0; --require-anchor: exit 1), and
    says the file holds no record. Was a strict xfail until `verify` said so for a file."""
    empty = tmp_path / "export.jsonl"
    empty.write_bytes(b"")
    result = CliRunner().invoke(cli, ["trace", "verify", "--file", str(empty)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("unanchored: 0 record(s) verified")
    assert "troth trace checkpoint" not in result.stdout
    assert "the file holds no record" in result.stdout
    strict = ["trace", "verify", "--file", str(empty), "--require-anchor"]
    assert CliRunner().invoke(cli, strict).exit_code == 1


ANCHOR = "T" + "0" * 64
_SIGNING = ("--revision", "1", "--as", "x", "--authority", ANCHOR, "--out", "o")


@pytest.mark.parametrize(
    "args",
    [
        ("secret", "put", "s", "--engine", "http-inject", "--config", "-"),
        ("secret", "put", "s", "--engine", "postgres", "--config", "-", "--value-file", "-"),
        ("policy", "test", "--bundle", "-", "--chain", "-", "--tool", "t", "--feed", "f"),
        ("credential", "verify", "-", "--format", "vc", "--issuer-history", "-", "--trust", ANCHOR),
        ("policy", "bundle", "create", "--policies", "-", "--tools", "-", *_SIGNING),
    ],
)
def test_stdin_is_named_for_one_input_only(args: tuple[str, ...]) -> None:
    """Review 46b, cli 2. Two inputs of one command given as `-` (or `secret put --config -`,
    whose value is read from stdin by default): the first read all of stdin, the second read
    nothing, and the command judged that (exit 1: a "configuration invalid" for a secret's
    value piped in as its configuration, the value parsed and named in the error as JSON). A
    usage error now (exit 2) naming both, before anything is read. Was a strict xfail until
    `stdin_once` refused it."""
    result = CliRunner().invoke(cli, list(args), input=b'{"a": 1}')
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "stdin" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("identity", "verify", "-"),
        ("enroll", "-", "--as", "x"),
        ("trace", "verify", "--file", "-"),
        ("secret", "put", "s", "--engine", "postgres", "--config", "c.json"),
        ("lease", "revoke", "-", "--as", "x", "--broker", "/tcp/127.0.0.1:1"),
    ],
)
def test_a_closed_stdin_is_an_io_error(args: tuple[str, ...], tmp_path: Path) -> None:
    """Review 46b, cli 3. `-` (or a secret's value, read from stdin by default) with stdin
    closed (`<&-`, as some supervisors start a process): Python has no sys.stdin, and the
    command died in an AttributeError traceback, exit 1, which a script reads as a verdict
    ("read, and invalid"). It is an I/O error now (exit 4) saying stdin is closed. Was a
    strict xfail until `stdin_bytes` said so."""
    (tmp_path / "c.json").write_text("{}")
    if args[0] == "lease":  # the lease is read once the identity is known
        assert CliRunner().invoke(cli, ["identity", "create", "x"]).exit_code == 0
    child = subprocess.run(
        [sys.executable, "-m", "troth.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=8,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
        preexec_fn=lambda: os.close(0),
    )
    assert "Traceback" not in child.stderr, child.stderr
    assert child.returncode == 4, child.stderr
    assert "stdin is closed" in child.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("../../etc",), "invalid node name"),
        (("nosuch",), "no node 'nosuch'"),
        (("n", "--tcp-listen", "bad"), "is not host:port"),
    ],
)
def test_the_daemon_says_what_is_wrong_with_its_command_line(
    args: tuple[str, ...], says: str, troth_home: Path
) -> None:
    """Review 46b, node main 1. `python -m troth.node NAME` (docs/protocols.md: the daemon,
    which `troth node start` runs) with a name that is not a node name, a node that does not
    exist, or a listen address that is not host:port died in a traceback, exit 1; it says
    what is wrong, exit 2 (a usage error), as `troth node start` does. Was a strict xfail
    until `main` caught them."""
    init_node("n", home=troth_home)
    child = subprocess.run(
        [sys.executable, "-m", "troth.node", *args],
        capture_output=True,
        text=True,
        timeout=8,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    assert "Traceback" not in child.stderr, child.stderr
    assert child.returncode == 2, child.stderr
    assert says in child.stderr
