"""Review 56e, cli: `troth policy test` took a call's arguments on its command line only
(`--args`), so a large JSON object could not be tested (argv's limits) nor piped. `--args-file
FILE` (`-` for stdin) reads them as `--args` would, the same checks and usage errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.support.cli import run_json
from tests.test_gates_cli import create, desk  # noqa: F401  (the fixture)
from tests.test_review48p_policytest import ARGS
from troth import limits
from troth.cli.main import cli


def _policy_test(desk: dict[str, str], *extra: str, bundle: str | None = None) -> list[str]:  # noqa: F811
    bundle = bundle or str(Path(desk["dir"]) / "b1")
    return [
        "policy",
        "test",
        "--bundle",
        bundle,
        "--chain",
        desk["chain"],
        "--tool",
        "refund",
        "--authority",
        "acme",
        *extra,
    ]


def test_args_file_decides_as_args_does(desk: dict[str, str]) -> None:  # noqa: F811
    create(desk, "admin", "b1", "--revision", "1", "--ttl", "30m")
    by_text = run_json(*_policy_test(desk, "--args", ARGS))
    path = Path(desk["dir"]) / "args.json"
    path.write_text(ARGS)
    by_file = run_json(*_policy_test(desk, "--args-file", str(path)))
    assert by_text["allowed"] is True
    assert by_file == by_text
    over = Path(desk["dir"]) / "over.json"
    over.write_text(json.dumps({"order_id": "o1", "amount": 10**6}))
    assert run_json(*_policy_test(desk, "--args-file", str(over)), code=1)["allowed"] is False


def test_args_file_reads_stdin(desk: dict[str, str]) -> None:  # noqa: F811
    create(desk, "admin", "b1", "--revision", "1", "--ttl", "30m")
    result = CliRunner().invoke(
        cli, [*_policy_test(desk, "--args-file", "-"), "--json"], input=ARGS
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["allowed"] is True


def test_args_and_args_file_together_or_bad_are_usage_errors(
    desk: dict[str, str],  # noqa: F811
) -> None:
    create(desk, "admin", "b1", "--revision", "1", "--ttl", "30m")
    path = Path(desk["dir"]) / "args.json"
    path.write_text(ARGS)
    both = run_json(*_policy_test(desk, "--args", ARGS, "--args-file", str(path)), code=2)
    assert "--args and --args-file" in both["message"]
    path.write_text("[1]")
    bad = run_json(*_policy_test(desk, "--args-file", str(path)), code=2)
    assert "--args-file" in bad["message"]
    assert "expected a JSON object" in bad["message"]
    missing = run_json(*_policy_test(desk, "--args-file", str(path) + ".none"), code=4)
    assert "cannot read arguments" in missing["message"]
    path.write_text(" " * limits.MAX_TOOL_ARGUMENTS_BYTES + "{}")  # read no further than that
    large = run_json(*_policy_test(desk, "--args-file", str(path)), code=4)
    assert f"larger than {limits.MAX_TOOL_ARGUMENTS_BYTES} bytes" in large["message"]


def test_a_bundle_and_the_args_on_stdin_together_are_refused(
    desk: dict[str, str],  # noqa: F811
) -> None:
    found = run_json(*_policy_test(desk, "--args-file", "-", bundle="-"), code=2)
    assert "--args-file" in found["message"]
