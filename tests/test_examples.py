"""Every script in examples/ runs as a newcomer would run it: a fresh TROTH_HOME, a
subprocess, exit 0 within a bounded time, and the story's refusals printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
SHOWN = {  # a line each story must print: the refusal it exists to show
    "delegate.py": "refused (the sub-agent presents it again): revoked",
    "service.py": "billing-agent asks: denied by the node",
    "relay.py": "the stranger is refused: peer not allowed",
}


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in SCRIPTS) == sorted(SHOWN)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_example_runs_in_a_fresh_home(script: Path, tmp_path: Path) -> None:
    env = {**os.environ, "TROTH_HOME": str(tmp_path / "home")}
    env.pop("TROTH_VAULT_KEY", None)
    env.pop("TROTH_NODE", None)
    done = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert SHOWN[script.name] in done.stdout
    assert "must never happen" not in done.stdout
