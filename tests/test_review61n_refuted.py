"""Review 61n: attacks on the command line that did not work, kept as tests of the defences.

Every command and subcommand is enumerated from the click tree (not listed by hand); each one is
given hostile values (text that is not UTF-8, a path up and out, unicode controls, numbers
that are not numbers, files that are directories, FIFOs, binary) with --json: one JSON document
on stdout, a documented exit code, never an exception. Files handed to the commands that read
them carry a marker that no output repeats (a misdirected secret file is not echoed), a ticket
given on the command line is not either, and Ctrl-C during a write leaves the old file whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from tests.support.cli import run, run_json
from troth.cli.main import cli

LONG_RUNNING = {("bench",), ("demo",), ("node", "start"), ("mcp", "gate"), ("mcp", "serve")}
"""Commands that serve or run for minutes: given hostile values elsewhere (their own tests)."""
MARKER = "SECRETMARKER61N"


def leaves(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(command, click.Group):
        for name in command.commands:
            yield from leaves(command.commands[name], (*path, name))
    else:
        yield path


COMMANDS = [path for path in leaves(cli) if path not in LONG_RUNNING]


def invoke(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=True)


def one_json_error(result: Result) -> dict[str, Any]:
    """The one JSON document a --json run printed, checked against its exit code."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1, 2, 3, 4, 130), (result.exit_code, result.stdout)
    assert result.stderr == "" or result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)  # one document: json.loads refuses a second
    if result.exit_code != 0 and isinstance(document, dict) and "valid" not in document:
        assert document["ok"] is False, document
        assert document["exit_code"] == result.exit_code, document
    return document if isinstance(document, dict) else {"list": document}


def _hostile(param: click.Parameter, files: Path) -> str:
    """A hostile value for `param`, by its type."""
    kind = param.type
    if isinstance(kind, click.Path):
        return str(files / "dir")
    if isinstance(kind, click.Choice):
        return "\udcff"
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        return "nan"
    return "../\udcff\u202e\x1b[2J" + "x" * 3000


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "dir").mkdir()
    return tmp_path


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_answers_hostile_values_with_one_typed_json_error(
    path: tuple[str, ...], files: Path
) -> None:
    """Each of its parameters given a hostile value at once (then each alone would be too
    slow; the fuzzing this stands for ran them alone, 4790 runs): a typed error, exit 2 or
    the like, one JSON document, nothing on stderr."""
    command: Any = cli
    for name in path:
        command = command.commands[name]
    args = list(path)
    for param in command.params:
        if param.name == "as_json" or getattr(param, "is_flag", False):
            continue
        if getattr(param, "hidden", False):
            continue
        value = _hostile(param, files)
        if isinstance(param, click.Argument):
            args.append(value)
        else:
            args += [param.opts[0], value]
    document = one_json_error(invoke(*args, "--json"))
    assert document.get("error") != "InternalError", document


# -- misdirected files and tickets are not echoed ----------------------------------------------

READERS = [
    ("identity", "verify", "FILE"),
    ("identity", "import", "FILE"),
    ("credential", "import", "FILE", "--as", "customer"),
    ("credential", "verify", "FILE", "--trust", "acme"),
    ("credential", "verify", "FILE", "--trust", "acme", "--format", "vc"),
    ("credential", "show", "--file", "FILE"),
    ("credential", "verify", "x", "--trust", "acme", "--context-file", "FILE"),
    ("credential", "verify", "x", "--trust", "acme", "--feed", "FILE"),
    ("enroll", "FILE", "--as", "customer"),
    ("trace", "verify", "--file", "FILE"),
    ("trace", "verify", "--checkpoint", "FILE"),
    ("vault", "rekey", "--new-key-file", "FILE"),
    ("revoke", "link", "x", "--chain", "FILE", "--as", "customer", "--authority", "acme"),
]
CONTENTS = {
    "text": f"password={MARKER}\n".encode(),
    "json": json.dumps({MARKER: MARKER, "context": {MARKER: 1}}).encode(),
    "cbor": b"\x82\x6f" + MARKER.encode() + b"\x6f" + MARKER.encode(),
    "ticket": f"troth-ticket:{MARKER}".encode(),
    "note": f"example.com/log\n5\n{MARKER}=\n\n\u2014 x {MARKER}\n".encode(),
}


def test_a_misdirected_file_is_not_echoed(tmp_path: Path) -> None:
    """A file of secrets handed by mistake to a command that reads one (a key file as a chain,
    a password file as a ticket) is refused without its content in the error."""
    run("authority", "create", "acme")
    run("identity", "create", "customer")
    for name, data in CONTENTS.items():
        path = tmp_path / name
        path.write_bytes(data)
        path.chmod(0o600)
        for reader in READERS:
            args = [str(path) if a == "FILE" else a for a in reader]
            for extra in (["--json"], []):
                result = invoke(*args, *extra)
                assert MARKER not in result.stdout + result.stderr, (name, args)
                assert MARKER.encode().hex() not in result.stdout + result.stderr, (name, args)


def test_a_ticket_on_the_command_line_is_not_echoed() -> None:
    run("authority", "create", "acme")
    run("identity", "create", "customer")
    for ticket in (f"troth-ticket:{MARKER}", f"troth-ticket:AAAA{MARKER}AAAA", MARKER):
        for args in (
            ("enroll", ticket, "--as", "customer"),
            ("authority", "ticket", "void", ticket, "--authority", "acme"),
        ):
            result = invoke(*args, "--json")
            assert MARKER not in result.stdout + result.stderr
            assert result.exit_code in (1, 2)


# -- Ctrl-C during a write -----------------------------------------------------------------------


def test_ctrl_c_while_writing_out_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C as `identity export --out` syncs its new file: exit 130, one JSON error, the file
    that was there before unchanged and no temporary file beside it."""
    run("identity", "create", "agent")
    out = tmp_path / "agent.id"
    out.write_bytes(b"the old file")
    real_fsync = os.fsync
    interrupted: list[str] = []

    def fsync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.startswith(str(tmp_path / ".agent.id.")):
            interrupted.append(name)
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = invoke("identity", "export", "agent", "--out", str(out), "--json")
    assert interrupted  # the attack hit the write
    assert result.exit_code == 130
    assert one_json_error(result)["error"] == "KeyboardInterrupt"
    assert out.read_bytes() == b"the old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.id", "home"]


def test_out_dash_and_empty_are_refused_for_every_out() -> None:
    """Each command's --out refuses `-` and an empty name (a usage error), as review 44c
    made them: looked at for every command with an --out, found in the click tree."""
    run("identity", "create", "agent")
    outs = []
    for path in COMMANDS:
        command: Any = cli
        for name in path:
            command = command.commands[name]
        if any(p.name == "out" for p in command.params):
            outs.append(path)
    assert len(outs) >= 5
    for path in outs:
        for value in ("-", ""):
            said = run_json(*path, "--out", value, code=2)
            assert said["error"] in ("BadParameter", "MissingParameter", "UsageError"), said


def test_repeated_and_huge_options_are_bounded_before_any_work() -> None:
    """5000 --attr options, a 200 000-character value, a context of 100 000 braces: each a
    usage error (exit 2), one JSON document, before a ticket or a verdict is made."""
    run("authority", "create", "acme")
    many = [a for i in range(5000) for a in ("--attr", f"ns.k{i}=v")]
    ticket = ("authority", "ticket", "create", "--authority", "acme")
    said = run_json(*ticket, *many, code=2)
    assert "more than" in said["message"]
    said = run_json(*ticket, "--attr", "ns.k=" + "v" * 200_000, code=2)
    assert "characters" in said["message"]
    verify = ("credential", "verify", "/dev/null", "--trust", "acme")
    assert run_json(*verify, "--context", "{" * 100_000, code=2)["error"] == "BadParameter"
