"""Every script in examples/ runs as a newcomer would run it: a fresh TROTH_HOME, a
subprocess, exit 0 within a bounded time, and the story's refusals printed."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GUIDE = ROOT / "docs" / "python.md"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
SHOWN = {  # a line each story must print: the refusal it exists to show
    "delegate.py": "refused (the sub-agent presents it again): revoked",
    "service.py": "billing-agent asks: denied by the node",
    "relay.py": "the stranger is refused: peer not allowed",
    "gates.py": "the bundle with the cap raised is refused: bad signature",
}


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in SCRIPTS) == sorted(SHOWN)


def _run(script: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`python script` in a fresh TROTH_HOME, with no ambient vault key or node choice."""
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
    return done


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_example_runs_in_a_fresh_home(script: Path, tmp_path: Path) -> None:
    done = _run(script, tmp_path)
    assert SHOWN[script.name] in done.stdout
    assert "must never happen" not in done.stdout


def _every_refusal_must_happen(source: str) -> str:
    """`source` with an `else:` on each `try` that has none, ending the program: every `try` the
    guide shows is a refusal it shows happening (review 66j, docs: the guide ran, but a refusal
    that stopped happening skipped its `except` silently, as README.md's did before review 59e)."""
    tree = ast.parse(source)
    tries = [node for node in ast.walk(tree) if isinstance(node, ast.Try) and not node.orelse]
    for node in tries:
        said = ast.unparse(node.body[0]).splitlines()[0]
        node.orelse = ast.parse(f"raise SystemExit({f'refusal not shown: {said}'!r})").body
    assert tries, "the guide shows no refusal"
    return ast.unparse(ast.fix_missing_locations(tree))


def test_the_python_guide_runs_top_to_bottom(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert len(blocks) >= 4
    script = tmp_path / "guide.py"
    script.write_text(_every_refusal_must_happen("\n".join(blocks)))
    done = _run(script, tmp_path)
    assert "desk heard T" in done.stdout
    assert "denied: " in done.stdout  # the intern's call, refused by the node


def test_a_refusal_the_guide_shows_that_does_not_happen_fails_it() -> None:
    shown = _every_refusal_must_happen("try:\n    pass\nexcept ValueError:\n    pass\n")
    with pytest.raises(SystemExit, match="refusal not shown: pass"):
        exec(compile(shown, "guide", "exec"), {})  # noqa: S102
