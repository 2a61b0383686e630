"""Review 61n (the command line as a user and an attacker meet it): findings, each first a
strict xfail. Run in-process through the console script (`troth.cli.main.main`) with this
process's streams replaced: stderr closed (`2>&-`), a pipe whose reader is gone (`2>&1 | head
-0`), stdout a file the test reads."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.cli import run, run_json
from troth.cli.main import cli, main

JUNK_CHAIN_TRUST = ("--trust", "T" + "0" * 64)


@contextlib.contextmanager
def broken_pipe() -> Iterator[io.TextIOWrapper]:
    """A text stream to a pipe whose reader is gone: every write (flushed) is EPIPE."""
    reader, writer = os.pipe()
    os.close(reader)
    stream = open(writer, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    try:
        yield stream
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def console(
    monkeypatch: pytest.MonkeyPatch, *args: str, stdout: Any = None, stderr: Any = ...
) -> int:
    """`troth *args` through the console script with these streams (`...`: the test's own);
    its exit code."""
    with monkeypatch.context() as patched:
        patched.setattr(sys, "argv", ["troth", *args])
        if stdout is not None:
            patched.setattr(sys, "stdout", stdout)
        if stderr is not ...:
            patched.setattr(sys, "stderr", stderr)
        with pytest.raises(SystemExit) as exited:
            main()
    code = exited.value.code
    return code if isinstance(code, int) else 0


# -- cli 1: stderr closed -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("credential", "verify", "JUNK", *JUNK_CHAIN_TRUST, "--json"),
        ("identity", "create", "many", "--count", "2", "--json"),
        ("revocations", "show", "--authority", "acme", "--json"),
    ],
    ids=["credential-verify", "identity-create-count", "revocations-show"],
)
def test_cli1_a_closed_stderr_changes_no_verdict(
    args: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """review 61n, cli 1: a command that counts its progress on stderr (`credential verify`,
    every run; `identity create --count`; `revocations show`) run with stderr closed (`2>&-`,
    a daemon's or cron's verifier: Python has no sys.stderr) was `InternalError`, exit 70,
    before it verified or made anything: `Progress` asked the missing stderr whether it is a
    terminal. A closed stderr takes no notes; the command's answer is its own."""
    run("authority", "create", "acme")
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x01not a chain")
    args = tuple(str(junk) if a == "JUNK" else a for a in args)
    code = console(monkeypatch, *args, stderr=None)
    said = json.loads(capsys.readouterr().out)
    assert not isinstance(said, dict) or said.get("error") != "InternalError", said
    assert code in (0, 1), said


# -- cli 2: stderr (or stdout) a pipe no one reads --------------------------------------------


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("identity", "show", "nobody"), 2),  # a name that does not exist: usage
        (("identity", "show"), 2),  # a missing argument: usage
        (("identity", "show", "--bogus"), 2),  # an unknown option: usage
        (("identity", "create", "many", "--count", "2"), 0),  # progress on stderr: no error
    ],
    ids=["not-found", "missing-argument", "unknown-option", "progress"],
)
def test_cli2_a_broken_stderr_keeps_the_exit_code(
    args: tuple[str, ...], code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review 61n, cli 2: with stderr a pipe whose reader has gone (`troth ... 2>&1 | head
    -1`, a log collector that died) or a full disk, reporting an error there raised again:
    click's handling of EPIPE (exit 1), or an uncaught traceback (exit 1), so a name that does
    not exist or a bad option (exit 2) read as "invalid or denied", a verdict; a command whose
    progress note could not be written failed (exit 1) with nothing wrong in it. Notes and
    errors on stderr are best effort: the exit code is the command's."""
    with broken_pipe() as stderr:
        assert console(monkeypatch, *args, stderr=stderr) == code


@pytest.mark.parametrize("args", [("--help",), ("identity", "show", "--help"), ("--version",)])
def test_cli2_help_into_a_closed_pipe_is_an_io_error(
    args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """review 61n, cli 2: `troth --help | head -0` (stdout a pipe whose reader has gone) exits
    1, click's code for EPIPE, which troth's table gives to "invalid or denied": it is an I/O
    failure, exit 4, as `troth identity list | head -0` is."""
    with broken_pipe() as stdout:
        assert console(monkeypatch, *args, stdout=stdout, stderr=io.StringIO()) == 4


# -- cli 3: --out /dev/stdout -----------------------------------------------------------------


def test_cli3_out_to_stdout_is_the_file_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    """review 61n, cli 3: `--out -` is refused, saying "name a file, or /dev/stdout"; `troth
    identity export agent --out /dev/stdout > agent.id` wrote the history to stdout and then
    the result ("wrote 208 bytes to /dev/stdout") after it, so agent.id was no history
    (`troth identity verify agent.id`: "trailing bytes"); the same for every --out (a chain,
    a feed, a proof bundle, an export's JSONL). With --out naming stdout, the file is all that
    stdout carries: the result goes to stderr."""
    run("identity", "create", "agent")
    capfdbinary.readouterr()
    assert console(monkeypatch, "identity", "export", "agent", "--out", "/dev/stdout") == 0
    exported = tmp_path / "agent.id"
    exported.write_bytes(capfdbinary.readouterr().out)  # what `> agent.id` would hold
    assert run_json("identity", "verify", str(exported))["identifier"]


def test_cli3_out_to_stdout_with_json_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """review 61n, cli 3: `--out /dev/stdout --json` wrote the file's bytes, then the JSON
    result, on stdout: no JSON document a script can read, where `--json` promises one. Both
    cannot have stdout: a usage error (exit 2) saying so, before anything is written."""
    run("identity", "create", "agent")
    said = run_json("identity", "export", "agent", "--out", "/dev/stdout", code=2)
    assert "--json" in said["message"]


# -- cli 4: TROTH_HOME=/ ------------------------------------------------------------------------


class _Touched(BaseException):
    """The test's guard: the command was about to change `/` (stopped before it did)."""


def _guard_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop (`_Touched`) any chmod of `/` or mkdir in it, before it happens."""
    root = os.stat("/")
    real_fchmod, real_mkdir = os.fchmod, os.mkdir

    def fchmod(fd: int, mode: int) -> None:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) == (root.st_dev, root.st_ino):
            raise _Touched(f"chmod / {mode:o}")
        real_fchmod(fd, mode)

    def mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        if dir_fd is None and os.path.dirname(os.path.abspath(path)) == "/":
            raise _Touched(f"mkdir {path}")
        real_mkdir(path, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "fchmod", fchmod)
    monkeypatch.setattr(os, "mkdir", mkdir)


def test_cli4_a_home_of_other_files_is_not_taken_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """review 61n, cli 4: `TROTH_HOME=$STATE/` with STATE unset is `/`; run as root, `troth
    identity list` took it as the home: `/` (root's, no one else can write in it, so no check
    refused it) was made mode 0700, every other user of the machine shut out of every file,
    and /nodes made in it; the same for /home, /etc, /usr or a user's project directory. An
    existing home that holds other files and no nodes, and that others can read, is not
    troth's to change: refused (exit 3) before anything changes. (The chmod and the mkdir are
    stopped here, in-process, before they touch /.)"""
    _guard_root(monkeypatch)
    monkeypatch.setenv("TROTH_HOME", "/")
    result = CliRunner().invoke(cli, ["identity", "list", "--json"])
    assert not isinstance(result.exception, _Touched), result.exception
    assert json.loads(result.stdout)["exit_code"] == 3


def test_cli4_the_library_does_not_take_over_a_home_of_other_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """review 61n, cli 4, the library's part (fixed by the lead: `init_node` checks
    `troth.node.home.check_not_taken_over`, as the command line's home does): `init_node(name,
    home=Path("/"))` made `/` 0700 (`secure_dir` chmods an existing directory)."""
    from troth.errors import ConfigError
    from troth.node import init_node

    _guard_root(monkeypatch)
    with pytest.raises(ConfigError):
        init_node("agent", home=Path("/"))


# -- cli 5: --out /dev/stdout on a terminal ------------------------------------------------------


@contextlib.contextmanager
def stdout_a_terminal() -> Iterator[list[bytes]]:
    """This process's descriptor 1 a terminal (a pty) for the block; what reached it after."""
    master, slave = pty.openpty()
    shown: list[bytes] = []
    saved = os.dup(1)
    os.dup2(slave, 1)
    try:
        yield shown
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(slave)
        os.set_blocking(master, False)
        with contextlib.suppress(OSError):  # (EIO, EAGAIN: all read)
            while chunk := os.read(master, 1 << 16):
                shown.append(chunk)
        os.close(master)


@pytest.mark.parametrize("command", [("trace", "export"), ("trace", "prove", "REC")])
def test_cli5_out_to_a_terminal_escapes_what_a_terminal_acts_on(
    command: tuple[str, ...], troth_home: Path
) -> None:
    """review 61n, cli 5: review 57h escaped the C1 and bidi controls of a record's disclosed
    values (a caller's or a model's text) when `troth trace export` or `troth trace prove`
    prints to a terminal; `--out /dev/stdout`, what `--out -` is told to use instead, wrote
    them to the same terminal raw (CSI erases the screen, OSC sets the clipboard). A terminal
    named by --out is written as one named by no --out: the same JSON, escaped."""
    from tests.test_review57h_cli import _hostile_record

    _hostile_record(troth_home)
    record = run_json("trace", "show")[0]["id"]
    args = [record if a == "REC" else a for a in command]
    with stdout_a_terminal() as shown:
        result = CliRunner().invoke(cli, [*args, "--out", "/dev/stdout"])
    assert result.exit_code == 0, result.output
    text = b"".join(shown).decode()
    assert "\\u009b2J" in text  # the record reached the terminal, escaped
    assert not any(c in text for c in "\u009b\u009d\u009c\u202e"), "raw controls"
