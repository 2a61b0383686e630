"""Review 55m, CLI: an adversarial look at review 55g's fixes.

1. `stdin_once` (review 55g, cli 11) caught stdin given twice by four spellings (`-`,
   /dev/stdin, /dev/fd/0, /proc/self/fd/0), compared as text: the same file under any other
   name was not caught, `/dev//stdin`, `/dev/./stdin`, a name relative to /dev, the
   process's own /proc/PID/fd/0 or /proc/thread-self/fd/0, or a symlink to /dev/stdin, and
   `troth secret put NAME --config - --value-file /dev//stdin < config.json` stored the
   configuration as the secret's value again (exit 0), the mistake 55g cli 11 refused. A name
   is now judged as the path it names: made absolute and normal, and followed through its
   symlinks to one of stdin's names.
2. `Reporter.warn` (review 55g, cli 4) put a warning in the `--json` result, but a command that
   warned and then failed wrote an error object without it: `troth enroll FILE --json` with a
   ticket file others can read, whose ticket someone had redeemed first (what the warning is
   about), answered `ticket unknown` and nothing of the file, where without --json stderr
   says both. The error object carries the warnings given before the failure now.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.support.cli import run, troth_process
from tests.test_review53k_cli import _ticket_file
from troth.cli.common import stdin_once


def _aliases(tmp_path: Path) -> list[str]:
    link = tmp_path / "input"
    link.symlink_to("/dev/stdin")
    return [
        "/dev//stdin",
        "/dev/./stdin",
        "//dev/stdin",
        "/proc/thread-self/fd/0",
        f"/proc/{os.getpid()}/fd/0",
        str(link),
    ]


def test_stdin_under_any_name_is_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for alias in _aliases(tmp_path):
        with pytest.raises(click.UsageError, match="both read stdin"):
            stdin_once(**{"--config": "-", "--value-file": alias})
    monkeypatch.chdir("/dev")
    with pytest.raises(click.UsageError, match="both read stdin"):
        stdin_once(**{"--config": "-", "--value-file": "stdin"})


def test_other_files_are_not_stdin(tmp_path: Path) -> None:
    """Files and links to files are read as files, each once (no usage error)."""
    data = tmp_path / "data"
    data.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(data)
    stdin_once(**{"--config": "-", "--value-file": str(link)})
    stdin_once(**{"--config": "-", "--value-file": str(tmp_path / "missing")})
    stdin_once(**{"--config": "-", "--value-file": "/dev/null"})


def test_secret_value_from_stdin_under_another_name_is_a_usage_error(tmp_path: Path) -> None:
    run("node", "create", "hub")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "scopes": ["read"],
                "upstream": "https://api.example",
                "header": "X-Key",
                "rules": [{"methods": ["GET"], "path": "/x", "scope": "read"}],
            }
        )
    )
    args = ("secret", "put", "s", "--engine", "http-inject", "--config", "-", "--node", "hub")
    with config.open("rb") as stdin:  # a file: /dev//stdin reopens it from its start
        result = subprocess.run(
            [sys.executable, "-m", "troth.cli.main", *args, "--value-file", "/dev//stdin"],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "stdin" in result.stderr


def test_a_warning_given_before_a_failure_is_in_the_json_error(troth_home: Path) -> None:
    path = _ticket_file(troth_home, 0o644)
    run("enroll", str(path), "--as", "agent", "--node", "agent")  # the copy redeemed first
    run("identity", "create", "other", "--node", "agent")
    args = ("enroll", str(path), "--as", "other", "--node", "agent")
    plain = troth_process(*args, code=1)
    assert "others can read" in plain.stderr  # the control: without --json, on stderr
    result = troth_process(*args, "--json", code=1)
    error = json.loads(result.stdout)
    assert error["reason"].startswith("ticket unknown"), error
    warnings = error.get("warnings", [])
    assert len(warnings) == 1, error
    assert "others can read" in warnings[0], error
