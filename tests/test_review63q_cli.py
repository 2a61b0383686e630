"""Review 63q, cli: the names of the command's own descriptors, and what `--json` keeps.

1. An --out naming one of the command's descriptors is written through it, never replaced
   (review 34d, CLI files 2; 61q, cli 2), and `trace verify --checkpoint` refuses one (63e,
   cli 2) — but a name was one only as text (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`).
   The same link through a directory that is /dev by another name — a symlink to it (`ln -s
   /dev d; --out d/stdout`) or a directory /dev is bind-mounted on (a container's) — or
   `/proc/thread-self/fd/N`, `/proc/PID/fd/N`, was taken as a path: the atomic write replaced
   the link, as root the machine's /dev/stdout itself with a regular 0600 file holding the
   export (seen in a private mount namespace, a tmpfs over /dev); `/proc/thread-self/fd/1`
   failed, exit 4, where /proc/self/fd/1 wrote stdout; and the kept checkpoint's read went on
   to reopen the descriptor (63e cli 2's endless wait on a pipe). `_descriptor` now reads the
   name in its directory's real path (a directory /dev is mounted on counting as /dev), and
   knows thread-self and this process's own pid; the name's last part is still never followed.
2. `--json` drops every log record a command makes (review 63e, cli 4: an in-process node's
   junk-peer line followed the document on stderr) — the warnings too that are the only word
   of something the operator must act on, where `Reporter.warn` promises a warning the
   result's `warnings` list (review 55g, cli 4). `troth revoke identity X --authority A
   --json`, another node's configuration here broken (mode 0644): the revocation stands, but
   the daemons running here were not told and admit X until their next round; without --json
   stderr says so, with --json nothing did (exit 0, no warning). Records of WARNING and above
   are now the result's `warnings` under --json (or the error object's); the rest dropped,
   and past MAX_LOGGED_WARNINGS of them too (`troth mcp serve --json` runs for days).
3. `troth trace export --format otel --endpoint E`, E no http(s) URL with a host (the common
   `localhost:4318/v1/traces`, a mistyped scheme, a port past 65535): the exporter failed at
   once and said why in its log, which the command drops (review 63e, cli 3), and the command
   said "is the OTLP endpoint reachable?", exit 4 (I/O: retry later), for good. The endpoint is
   now checked before anything is read: ConfigError, exit 3, saying what is wrong with it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.support.cli import run, run_json
from tests.test_review57h_cli import _hostile_record
from troth import limits
from troth.cli import common
from troth.cli.main import cli
from troth.cli.output import Reporter, json_command
from troth.node import trace_checks


def _never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard: the replacing write fails the test before it happens (unguarded, as root,
    it replaced the machine's /dev/stderr)."""

    def replaced(target: Path, **_: object) -> None:
        raise AssertionError(f"{target} replaced by a file")

    monkeypatch.setattr(common, "private_file_writer", replaced)


def _never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard: the kept file is never reopened (a pipe's read waited for good)."""

    def read(path: Path) -> bytes:
        raise AssertionError(f"{path} read")

    monkeypatch.setattr(trace_checks, "read_kept", read)


def _name(kind: str, tmp_path: Path, stream: str, number: int) -> str:
    if kind == "dir-link":  # a directory of the user's that is a link to /dev
        (tmp_path / "d").symlink_to("/dev")
        return str(tmp_path / "d" / stream)
    if kind == "thread-self":
        return f"/proc/thread-self/fd/{number}"
    return f"/proc/{os.getpid()}/fd/{number}"  # (the CLI runs in this process)


KINDS = ["dir-link", "thread-self", "own-pid"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_out_naming_stderr_by_another_name_writes_through_it(
    kind: str, tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    out = _name(kind, tmp_path, "stderr", 2)
    result = run_json("identity", "export", "agent", "--out", out)
    assert result["file"] == out
    assert os.path.islink("/dev/stderr")


@pytest.mark.parametrize("kind", KINDS)
def test_the_kept_checkpoint_naming_a_descriptor_by_another_name_is_refused(
    kind: str, tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    _never_read(monkeypatch)
    error = run_json("trace", "verify", "--checkpoint", _name(kind, tmp_path, "stdout", 1), code=2)
    assert "descriptor" in error["message"], error


def test_a_link_to_dev_names_stdin_too(tmp_path: Path) -> None:
    (tmp_path / "d").symlink_to("/dev")
    assert common.names_stdout(str(tmp_path / "d" / "stdout"))
    assert common._reads_stdin(f"/proc/self/task/{os.getpid()}/fd/0")


def test_a_warning_logged_under_json_is_in_the_result(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("authority", "create", "acme")
    run("identity", "create", "victim")
    broken = troth_home / "nodes" / "broken"
    broken.mkdir()
    (broken / "node.json").write_text("{}")  # mode 0644: refused, so no node is listed
    monkeypatch.setattr(logging.root, "handlers", [])  # as in `troth`: the last resort
    args = ["revoke", "identity", "victim", "--authority", "acme", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    warnings = json.loads(result.stdout).get("warnings", [])
    assert any("not told of the revocation" in text for text in warnings), result.stdout
    assert logging.root.handlers == []  # the command's handler gone with it


@pytest.mark.parametrize(
    "endpoint",
    ["localhost:4318/v1/traces", "htp://127.0.0.1:4318/v1/traces", "http://127.0.0.1:99999/v1"],
)
def test_an_otel_endpoint_that_is_no_url_is_a_configuration_error(
    endpoint: str, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hostile_record(troth_home)  # a record to send (with none, "0 spans sent", exit 0)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0.2")
    error = run_json("trace", "export", "--format", "otel", "--endpoint", endpoint, code=3)
    assert error["error"] == "ConfigError", error
    assert "endpoint" in error["message"]


def test_a_json_command_keeps_a_bounded_number_of_logged_warnings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @click.command()
    @json_command
    def noisy(reporter: Reporter) -> None:
        for n in range(10_000):  # a server's run: a warning per refused peer
            logging.getLogger("troth.test63q").warning("peer %d refused", n)
        reporter.result({"done": True})

    monkeypatch.setattr(logging.root, "handlers", [])
    result = CliRunner().invoke(noisy, ["--json"])
    warnings = json.loads(result.stdout)["warnings"]
    assert len(warnings) == limits.MAX_LOGGED_WARNINGS + 1
    assert warnings[0] == "peer 0 refused"
    assert "dropped" in warnings[-1]
