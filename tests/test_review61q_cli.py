"""Review 61q, cli: review 61n's terminal escaping of an --out (cli 5).

1. `troth trace export/prove --out PATH` escapes the C1 and bidi controls of a record's
   disclosed values when PATH is a terminal only when PATH names one of the process's own
   descriptors (/dev/stdout, /dev/fd/N: `names_terminal` reads the name). A terminal named
   by its device (`--out /dev/tty`, `--out /dev/pts/3`, a link to either) got them raw: CSI
   erases the screen, OSC sets the clipboard, as review 57h and 61n, cli 5 closed for stdout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.cli import run_json
from tests.test_review61n_cli import stdout_a_terminal
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
