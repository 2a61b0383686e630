"""Running the CLI in-process for tests: exit code checked, `--json` output parsed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from click.testing import CliRunner, Result

from troth.cli.main import cli
from troth.faults import CRASH_ENV, CRASH_EXIT_CODE


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, (result.output, result.stderr)
    return result


def run_json(*args: str, code: int = 0) -> Any:
    return json.loads(run(*args, "--json", code=code).stdout)


def start_here(name: str, *args: str, **environ: str) -> None:
    """`troth node start NAME ARGS` run in this process, `environ` set for it (and so for the
    node process it spawns, as from a shell): the node is a process of its own as ever; only
    the interpreter a `troth` process of its own started for the command is saved (72f ci).
    A crash point (`CRASH_ENV`) given in `environ` arms the node, not this process (troth.faults
    reads it once, at import)."""
    args = ("node", "start", name, *args)
    begun = CliRunner().invoke(cli, list(args), env=environ, catch_exceptions=False)
    assert begun.exit_code == 0, (args, begun.stdout, begun.stderr)


def stop_here(name: str) -> None:
    """`troth node stop NAME` run in this process, its exit code not checked (a node that
    crashed, or never started, is simply not running; 73f ci: an interpreter started for the
    command was most of a teardown's time)."""
    CliRunner().invoke(cli, ["node", "stop", name])


def troth_process(
    *args: str,
    crash: str | None = None,
    code: int | None = None,
    input_text: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `troth *args` in a process of its own (`input_text` its stdin), killed at crash
    point `crash` (troth.faults; CRASH_ENV cleared otherwise); unless `check` is False, its
    exit code checked: `code`, else CRASH_EXIT_CODE when it is to crash, else 0."""
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash is not None:
        env[CRASH_ENV] = crash
    result = subprocess.run(
        [sys.executable, "-m", "troth.cli.main", *args],
        capture_output=True,
        text=True,
        input=input_text,
        timeout=90,
        env=env,
    )
    return checked_run(result, args, crash, code) if check else result


def checked_run(
    result: subprocess.CompletedProcess[str],
    args: tuple[str, ...],
    crash: str | None,
    code: int | None,
) -> subprocess.CompletedProcess[str]:
    """`result` of `troth *args`, its exit code checked: `code`, else CRASH_EXIT_CODE when it
    was to crash at `crash`, else 0 (AssertionError naming the run otherwise)."""
    expected = code if code is not None else CRASH_EXIT_CODE if crash is not None else 0
    if result.returncode != expected:
        raise AssertionError((args, crash, result.returncode, result.stdout, result.stderr))
    return result
