"""README.md runs verbatim, top to bottom, as a newcomer would run it (issue 10).

The rules:
- The first block is the newcomer's first step, a sh block of exactly `make demo` and `make
  test`; it is checked, not run (running `make test` inside `make test` would recurse; the
  demo has its own test, tests/test_demo_bench.py).
- Every other ```sh block runs, in order, in ONE bash session under `set -euo pipefail`, so
  variables (`$HUB`, `$LINK`) and shell functions carry from block to block. It starts in a
  fresh, empty working directory, with a fresh `$TROTH_HOME` and `$TMPDIR` inside the test's
  temporary directory, `troth` and `python3` from this interpreter's environment first on
  `PATH`, and no `TROTH_NODE` or `TROTH_VAULT_KEY`.
- The ```python blocks, concatenated in order, are ONE program: the session runs it with this
  interpreter at the place of the first python block (with the session's environment and
  working directory, so a sh block just before it can give it a fresh `$TROTH_HOME`). A sh
  block between two python blocks is refused: its place in the order would be ambiguous.
- ```text blocks (sample output) are not run; no other kind of block is allowed.
- A command the README shows being refused ends in `|| echo "refused (exit $?)"`: each must
  print `refused (exit 1)` (denied or invalid, not a usage or I/O error).
- A refusal the Python program shows (`except ...: print("refused:", ...)`) must happen: the
  program prints `refused: ` as many times as it says it (review 59e: a refusal that stopped
  happening skipped its `except`, and the program went on as if shown).
- A comment that shows a gate's decision (`# allowed by ...`, `# denied by ...`) shows what the
  command prints (review 59e, docs 4: "denied by caveat:1:0" stood for "denied by policy
  caveat:1:0").

The test starts no node itself; afterwards (passed or failed) it stops every node still
running in any home under its temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.readme import OPENING, REFUSAL, Block, blocks, commands, script
from troth.errors import TrothError
from troth.node.daemon import stop_daemon

README = Path(__file__).resolve().parent.parent / "README.md"
LANGUAGES = {"sh", "python", "text"}
DECISION = re.compile(r"#\s*((?:allowed|denied) by [^\n]*?)\s*$", re.MULTILINE)
"""A comment showing what a gate decided: `# allowed by policy refund`."""


def _found() -> list[Block]:
    return blocks(README.read_text())


def _stop_every_node(under: Path) -> list[str]:
    """Stop every node running in a home below `under`; the names of those that were."""
    stopped = []
    for config in sorted(under.rglob("nodes/*/node.json")):
        home, name = config.parent.parent.parent, config.parent.name
        with contextlib.suppress(TrothError, OSError):
            if stop_daemon(home, name):
                stopped.append(name)
    return stopped


def test_the_readme_opens_with_make_demo_and_make_test() -> None:
    first = _found()[0]
    assert first.language == "sh"
    assert commands(first) == OPENING


def test_every_block_is_run_or_is_sample_output() -> None:
    assert {block.language for block in _found()} <= LANGUAGES


def test_tickets_reach_enroll_on_stdin_never_on_the_command_line() -> None:
    enrolls = [
        line
        for block in _found()
        if block.language == "sh"
        for line in block.text.splitlines()
        if "troth enroll" in line
    ]
    assert enrolls
    assert all("troth enroll - " in line for line in enrolls), enrolls


def test_the_readme_runs_top_to_bottom(tmp_path: Path) -> None:
    work, home, temp = tmp_path / "work", tmp_path / "home", tmp_path / "tmp"
    for directory in (work, temp):
        directory.mkdir()
    found = _found()
    bash = tmp_path / "readme.sh"
    bash.write_text(script(found, sys.executable, tmp_path / "readme.py"))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TROTH_HOME": str(home),
        "TMPDIR": str(temp),
    }
    for name in ("TROTH_NODE", "TROTH_VAULT_KEY"):
        env.pop(name, None)
    try:
        done = subprocess.run(
            ["bash", str(bash)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        left_running = _stop_every_node(tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert left_running == [], "the README leaves nodes running: stop them at its end"
    refusals = sum(block.text.count(REFUSAL) for block in found if block.language == "sh")
    assert refusals > 0
    assert done.stdout.count("refused (exit 1)") == refusals, done.stdout
    assert "refused (exit" not in done.stdout.replace("refused (exit 1)", "")
    assert "status of order 4471?" in done.stdout  # the order agent answered, through the relay
    said = sum(b.text.count('print("refused:"') for b in found if b.language == "python")
    assert said > 0
    assert done.stdout.count("\nrefused: ") == said, done.stdout
    decisions = [
        m for block in found if block.language == "sh" for m in DECISION.findall(block.text)
    ]
    assert decisions
    assert [d for d in decisions if d not in done.stdout] == []
    assert "order 4471: shipped" in done.stdout  # ... and again, from Python


OPENING_BLOCK = Block("sh", "make demo\nmake test\n", 1)


@pytest.mark.parametrize(
    ("found", "problem"),
    [
        (
            [
                OPENING_BLOCK,
                *(Block(lang, "true\n", 2) for lang in ("sh", "python", "sh", "python")),
            ],
            "between two python blocks",
        ),
        ([Block("sh", "make test\n", 1), Block("sh", "true\n", 2)], "must open with"),
        ([Block("text", "make demo\nmake test\n", 1)], "must open with"),
    ],
)
def test_an_ambiguous_readme_is_refused(found: list[Block], problem: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=problem):
        script(found, sys.executable, tmp_path / "readme.py")
