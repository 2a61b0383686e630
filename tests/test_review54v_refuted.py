"""Review 54v, errors: attacks that failed (the code was right before the fix).

- The CLI's human error output of a path from argv that is not UTF-8 was never lost: it goes to
  stderr, which Python writes with `backslashreplace` (even under a strict PYTHONIOENCODING),
  so it read `\\udcff`.
- The Python API's refusals of a caller's name, tool, service or method name, route or
  attribute quote it with `repr` (`'a\\udcffb'`): their text was valid UTF-8 already.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import troth
from troth.clock import FixedClock
from troth.errors import TrothError
from troth.gates import compile_policies

LONE = "a\udcffb"
SRC = str(Path(troth.__file__).resolve().parents[1])


def test_the_human_error_of_a_path_not_utf8_is_printed(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONIOENCODING": "utf-8:strict"}
    env["TROTH_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-m", "troth.cli.main", "credential", "show", f"{tmp_path}/\udcff"],
        capture_output=True,
        timeout=90,
        env=env,
    )
    assert result.returncode == 4, result
    text = result.stderr.decode("utf-8")
    assert text.startswith("troth: cannot read chain ")
    assert "/\\udcff" in text


CALLS: dict[str, Callable[[troth.Node], object]] = {
    "identities.create": lambda node: node.identities.create(LONE),
    "Node.open": lambda node: troth.Node.open(LONE),
    "Service": lambda node: troth.Service(LONE),
    "Attributes key": lambda node: troth.Attributes.from_assignments([f"{LONE}=x"]),
    "Attributes value": lambda node: troth.Attributes.from_assignments([f"app.x={LONE}"]),
    "call route": lambda node: node.call(f"/tcp/{LONE}:1", "svc", "m", expect=None),
    "tool name": lambda node: compile_policies(
        policies="", schema="", tools={LONE: {}}, services=None
    ),
    "service name": lambda node: compile_policies(
        policies="", schema="", tools={}, services={LONE: ["m"]}
    ),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_api_refusals_quote_with_repr(clock: FixedClock, call: str) -> None:
    with troth.Node.open("agents", clock=clock) as node, pytest.raises(TrothError) as raised:
        CALLS[call](node)
    raised.value.args[0].encode("utf-8")  # the text as raised, before any escaping
