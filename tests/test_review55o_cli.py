"""Review 55o, CLI: what the `troth` command does when it fails in a way nobody planned.

1. An unexpected exception (a bug: no error of troth's, no usage error) exited 1 with a Python
   traceback on stderr: the exit code of a verdict (a chain that did not verify, a policy that
   denied), so a script checking `[ $? = 1 ]` read a crash as "denied", and the traceback
   could carry paths and values; with --json nothing was on stdout. It now exits 70
   (EX_SOFTWARE), with one line on stderr naming the exception's type, or with --json one
   error object; the traceback only with TROTH_DEBUG=1.
2. `troth node start NAME --foreground --json` printed no JSON object at all: the node ran,
   was stopped (`troth node stop`, SIGTERM, SIGINT) and the command exited 0 with an empty
   stdout. It prints `{"name": ..., "stopped": true}` once the node has stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from troth.cli.output import EXIT_CONFIG, EXIT_INTERRUPTED
from troth.node import init_node
from troth.node.daemon import node_status, stop_daemon

SRC = str(Path(__file__).resolve().parents[1] / "src")
SECRET = "/home/alice/.secret-path value-4471"
LINE = "troth: internal error: RuntimeError (set TROTH_DEBUG=1 for the traceback)\n"

_INJECTED = """
import sys
import troth.cli.main
import troth.cli.output
from troth.errors import ConfigError

where, kind = sys.argv[1], sys.argv[2]
error = {
    "runtime": RuntimeError(sys.argv[3]),
    "odd": type("Odd\\x1b[31m\\nforged: line", (Exception,), {})(),
    "interrupt": KeyboardInterrupt(),
    "config": ConfigError(sys.argv[3]),
}[kind]

def fail(*args, **kwargs):
    raise error

if where == "command":  # inside a command (the json_command wrapper)
    troth.cli.output.Reporter.result = fail
else:  # outside any command: resolving the subcommand
    troth.cli.main.TrothGroup.invoke = fail
sys.argv = ["troth", *sys.argv[4:]]
troth.cli.main.main()
"""


def _troth_failing(
    where: str, kind: str, *args: str, debug: bool = False
) -> subprocess.CompletedProcess[str]:
    """`troth *args` (the console script's `main`) with `kind` of exception raised `where`."""
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("TROTH_DEBUG", None)
    if debug:
        env["TROTH_DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, "-c", _INJECTED, where, kind, SECRET, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_an_unexpected_exception_exits_70_in_one_line() -> None:
    result = _troth_failing("command", "runtime", "identity", "list")
    assert result.returncode == 70, result
    assert result.stderr == LINE
    assert result.stdout == ""


def test_an_unexpected_exception_with_json_is_one_error_object() -> None:
    result = _troth_failing("command", "runtime", "identity", "list", "--json")
    assert result.returncode == 70, result
    assert json.loads(result.stdout) == {
        "ok": False,
        "error": "InternalError",
        "message": LINE.removeprefix("troth: ").rstrip("\n"),
        "exit_code": 70,
    }
    assert result.stderr == ""


def test_an_unexpected_exception_outside_a_command_exits_70() -> None:
    """Not only inside a command: resolving one (importing its module) too."""
    result = _troth_failing("group", "runtime", "identity", "list")
    assert (result.returncode, result.stderr) == (70, LINE)


def test_the_traceback_only_with_troth_debug() -> None:
    result = _troth_failing("command", "runtime", "identity", "list", debug=True)
    assert result.returncode == 70, result
    assert "Traceback (most recent call last)" in result.stderr
    assert SECRET in result.stderr
    assert result.stderr.endswith(LINE)


def test_an_exception_type_name_cannot_forge_a_line() -> None:
    result = _troth_failing("command", "odd", "identity", "list")
    assert result.returncode == 70, result
    assert result.stderr.count("\n") == 1
    assert "\x1b" not in result.stderr
    assert "Odd\\x1b[31m\\nforged: line" in result.stderr


def test_ctrl_c_still_exits_130() -> None:
    result = _troth_failing("command", "interrupt", "identity", "list", "--json")
    assert result.returncode == EXIT_INTERRUPTED, result
    assert json.loads(result.stdout)["exit_code"] == EXIT_INTERRUPTED


def test_an_error_of_troths_outside_a_command_keeps_its_code() -> None:
    """Not an internal error: a ConfigError raised outside any command exits 3, as inside one."""
    result = _troth_failing("group", "config", "identity", "list", "--json")
    assert result.returncode == EXIT_CONFIG, result
    assert json.loads(result.stdout)["error"] == "ConfigError"


def test_a_foreground_node_says_it_stopped_with_json(troth_home: Path) -> None:
    init_node("n", home=troth_home)
    process = subprocess.Popen(
        [sys.executable, "-m", "troth.cli.main", "node", "start", "n", "--foreground", "--json"],
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not node_status(troth_home, "n")["running"]:
            assert process.poll() is None, "the node exited"
            assert time.monotonic() < deadline, "the node did not start"
            time.sleep(0.05)
        assert stop_daemon(troth_home, "n") is True
        stdout, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert json.loads(stdout) == {"name": "n", "stopped": True}
