"""Review 63e, cli: the files the command line writes, named as stdin.

1. An --out, and `troth trace verify --checkpoint` (the kept checkpoint: read, then replaced),
   refuse `-` (review 44c, CLI 2 and 4: stdin cannot be written or replaced), but took
   stdin's other names as files: `--checkpoint /dev/stdin < kept` read the checkpoint from
   stdin and then wrote the newest over the name, atomically, so the link /dev/stdin itself
   was replaced by a regular file (0600) holding the note (as root, the machine's /dev/stdin
   for every process after, as review 61q, cli 2 found for /dev/stdout: seen here in a private
   mount namespace); `--out /dev/stdin` did the same with an export, and `/dev/fd/0` or
   `/proc/self/fd/0` wrote into stdin's descriptor (exit 4 after the work, or the output on a
   terminal). Every name of stdin (`-`, /dev/stdin, /dev/fd/0, /proc/self/fd/0, a link to
   one: `troth.cli.common._reads_stdin`) is now refused as `-` is, a usage error (exit 2),
   before anything is read or written.
2. `troth trace verify --checkpoint /dev/stdout` (or /dev/stderr, /dev/fd/N: one of the
   process's descriptors, which an --out writes through: review 34d, CLI files 2) read the
   kept checkpoint by reopening the descriptor's file and then wrote the newest through it:
   with stdout a pipe the read waited on the pipe's other end, the command's own reader, for
   good (the command hung: a verifier's cron job never ended); on a file, the note of the
   command's own output was judged ("checkpoint invalid", exit 1). A kept checkpoint is a file
   read and then replaced: a descriptor's name is now refused, a usage error (exit 2).
3. `troth trace export --format otel --endpoint URL --json`, the collector refusing the spans:
   the OpenTelemetry exporter's own log lines reached stderr (Python's last-resort handler),
   where `--json` promises nothing but the one document on stdout; an endpoint that does not
   answer got one per retry, each naming the endpoint with its query (`?api_key=...`: a
   collector's key copied from argv into the job's log).
   The command line now keeps the exporter's logging to itself: the failure is the command's
   error, once. Still open (strict xfail, the library's): an endpoint that does not answer
   (connection refused) exits 3, "configuration", where the exit code table says a network
   that did not answer is 4, I/O (`troth.trace.otel._export` raises ConfigError).
4. The same for troth's own logging: a command run through an in-process node (`message
   send`, `secret lease`, `channel create` when the node is not running) logged what the
   node runtime logs (`tcp 127.0.0.1:PORT (out): closing: unknown frame version 98`, for a
   peer that sent junk) to stderr through Python's last resort, past `--json`'s document.
   With `--json` a command's log records are now dropped (the result or the error says it);
   `troth node start --foreground` still logs (its own handler, `force`d).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.cli import run, run_json
from tests.test_review57h_cli import _hostile_record
from troth.cli import common
from troth.cli.main import cli


def _never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard: the replacing write fails the test before it happens (unguarded, as root,
    it replaced the machine's /dev/stdin)."""

    def replaced(target: Path, **_: object) -> None:
        raise AssertionError(f"{target} replaced by a file")

    monkeypatch.setattr(common, "private_file_writer", replaced)


STDIN_NAMES = ["/dev/stdin", "//dev/stdin", "/dev/fd/0", "/proc/self/fd/0", "LINK"]


def _name(name: str, tmp_path: Path) -> str:
    if name == "LINK":  # a link to stdin, in a directory of the user's
        link = tmp_path / "kept.checkpoint"
        link.symlink_to("/dev/stdin")
        return str(link)
    return name


@pytest.mark.parametrize("name", STDIN_NAMES)
def test_an_out_naming_stdin_is_refused_as_dash_is(
    name: str, tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    out = _name(name, tmp_path)
    error = run_json("identity", "export", "agent", "--out", out, code=2)
    assert "stdin" in error["message"], error
    assert name != "LINK" or os.path.islink(out)  # the link kept, not replaced


@pytest.mark.parametrize("name", STDIN_NAMES)
def test_the_kept_checkpoint_naming_stdin_is_refused_as_dash_is(
    name: str, tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    kept = _name(name, tmp_path)
    error = run_json("trace", "verify", "--checkpoint", kept, code=2)
    assert "stdin" in error["message"], error
    assert name != "LINK" or os.path.islink(kept)


@pytest.mark.parametrize("name", ["/dev/stdout", "/dev/stderr", "/dev/fd/1", "/proc/self/fd/2"])
def test_the_kept_checkpoint_naming_a_descriptor_is_refused(
    name: str, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    error = run_json("trace", "verify", "--checkpoint", name, code=2)
    assert "descriptor" in error["message"], error


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A collector that refuses every batch (400): the exporter logs, and does not retry."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_collector() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    finally:
        server.shutdown()
        server.server_close()


def test_an_otel_export_refused_with_json_prints_nothing_on_stderr(
    troth_home: Path, refusing_collector: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hostile_record(troth_home)
    # logging as in `troth` itself: no handler, so Python's last resort writes to stderr
    monkeypatch.setattr(logging.root, "handlers", [])
    endpoint = refusing_collector + "?api_key=s3cret-key"
    result = CliRunner().invoke(
        cli, ["trace", "export", "--format", "otel", "--endpoint", endpoint, "--json"]
    )
    assert result.exit_code != 0
    assert result.stderr == "", result.stderr  # (the exporter's lines named the key)
    assert "s3cret-key" not in result.stdout


def test_an_otel_endpoint_that_does_not_answer_is_an_io_failure(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hostile_record(troth_home)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0.2")
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/v1/traces"
    error = run_json("trace", "export", "--format", "otel", "--endpoint", endpoint, code=4)
    assert error["exit_code"] == 4


@pytest.fixture
def junk_peer() -> Iterator[str]:
    """A TCP peer that answers a connection with bytes that are no troth frame."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)

    def answer() -> None:
        with contextlib.suppress(OSError):
            connection, _ = server.accept()
            with connection:
                connection.sendall(b"b" + bytes(range(256)) * 4)
                connection.recv(1)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"/tcp/127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        thread.join(5)


def test_a_command_through_an_in_process_node_with_json_logs_nothing_on_stderr(
    troth_home: Path, junk_peer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    monkeypatch.setattr(logging.root, "handlers", [])  # as in `troth`: the last resort
    result = CliRunner().invoke(
        cli, ["message", "send", f"{junk_peer}/service/echo", "hi", "--json"]
    )
    assert result.exit_code == 4, result.output
    assert json.loads(result.stdout)["ok"] is False  # (closed: Unreachable or ChannelError)
    assert result.stderr == "", result.stderr
