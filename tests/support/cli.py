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
