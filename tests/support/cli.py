"""Running the CLI in-process for tests: exit code checked, `--json` output parsed."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from troth.cli.main import cli


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, (result.output, result.stderr)
    return result


def run_json(*args: str, code: int = 0) -> Any:
    return json.loads(run(*args, "--json", code=code).stdout)
