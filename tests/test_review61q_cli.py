"""Review 61q, cli: review 61n's terminal escaping of an --out (cli 5).

1. `troth trace export/prove --out PATH` escapes the C1 and bidi controls of a record's
   disclosed values when PATH is a terminal only when PATH names one of the process's own
   descriptors (/dev/stdout, /dev/fd/N: `names_terminal` reads the name). A terminal named
   by its device (`--out /dev/tty`, `--out /dev/pts/3`, a link to either) got them raw: CSI
   erases the screen, OSC sets the clipboard, as review 57h and 61n, cli 5 closed for stdout.
2. An --out naming one of the process's descriptors is written through it (review 34d, CLI
   files 2), and stdout alone (61n, cli 3), only when spelt exactly /dev/stdout, /dev/fd/N or
   /proc/self/fd/N: `//dev/stdout`, `/dev//stdout`, `/dev/./stdout` (the same file) were
   written as a path, atomically, so the link /dev/stdout itself was replaced by a regular
   file holding the output (as root, the machine's /dev/stdout for every process after; seen
   on this machine, and put back), and the result followed on stdout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.cli import run, run_json
from tests.test_review61n_cli import console, stdout_a_terminal
from troth.cli import common
from troth.cli.main import cli


@pytest.mark.parametrize("command", [("trace", "export"), ("trace", "prove", "REC")])
def test_out_naming_a_terminal_device_escapes_what_a_terminal_acts_on(
    command: tuple[str, ...], troth_home: Path
) -> None:
    from tests.test_review57h_cli import _hostile_record

    _hostile_record(troth_home)
    record = run_json("trace", "show")[0]["id"]
    args = [record if a == "REC" else a for a in command]
    with stdout_a_terminal() as shown:  # named by its device path, not as a descriptor
        result = CliRunner().invoke(cli, [*args, "--out", os.ttyname(1)])
    assert result.exit_code == 0, result.output
    text = b"".join(shown).decode()
    assert "\\u009b2J" in text  # the record reached the terminal, escaped
    assert not any(c in text for c in "\u009b\u009d\u009c\u202e"), "raw controls"


@pytest.mark.parametrize(
    "name",
    ["//dev/stdout", "/dev//stdout", "/dev/./stdout", "/dev/../dev/stdout", "//dev/fd/1", "REL"],
)
def test_out_naming_stdout_another_way_is_the_file_alone(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    # as review 61n, cli 3 (`--out /dev/stdout > agent.id`), another spelling of the name;
    # the guard stops the replacing write before it happens (as root it replaced the
    # machine's /dev/stdout link with a regular file: every process's /dev/stdout)
    def replaced(target: Path, **_: object) -> None:
        raise AssertionError(f"{target} replaced by a file")

    monkeypatch.setattr(common, "private_file_writer", replaced)
    if name == "REL":  # relative to the working directory
        name = os.path.relpath("/dev/stdout")
    run("identity", "create", "agent")
    capfdbinary.readouterr()
    assert console(monkeypatch, "identity", "export", "agent", "--out", name) == 0
    exported = tmp_path / "agent.id"
    exported.write_bytes(capfdbinary.readouterr().out)  # what `> agent.id` would hold
    assert run_json("identity", "verify", str(exported))["identifier"]
