"""The `Example:` lines of `troth ... --help` are commands a newcomer copies: each names options
its command has, a ticket reaches `troth enroll` on stdin (never on the command line), and the
identity story the examples tell on the default node runs verbatim in a fresh home."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from tests.support.readme import blocks
from troth.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent


def _groups(command: click.Command = cli, path: str = "troth") -> Iterator[tuple[str, str]]:
    """(command path, epilog) of every command with an `Example:` epilog."""
    if "Example:" in (command.epilog or ""):
        yield path, command.epilog or ""
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _groups(sub, f"{path} {name}")


def examples(epilog: str) -> list[str]:
    """The example's shell lines, continuation lines joined, comments left out."""
    text = epilog.split("Example:", 1)[1]
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = (line.split("  # ", 1)[0].strip() for line in joined.splitlines())
    return [line for line in lines if line]


def _troth_commands(line: str) -> Iterator[list[str]]:
    """Every `troth ...` command of a shell line (in a pipe or a `$(...)`), as arguments."""
    for part in re.split(r"\||\$\(|\)", line):
        words = shlex.split(part.split("=", 1)[1] if part.startswith("TICKET=") else part)
        if words[:1] == ["troth"]:
            yield words[1:]


ALL = [(path, line) for path, epilog in _groups() for line in examples(epilog)]


def test_every_example_names_a_command_and_options_it_has() -> None:
    assert len(ALL) > 30
    for path, line in ALL:
        for words in _troth_commands(line):
            command: click.Command = cli
            while isinstance(command, click.Group) and words and words[0] in command.commands:
                command = command.commands[words.pop(0)]
            assert not isinstance(command, click.Group), (path, line)
            options = {opt for param in command.params for opt in param.opts}
            unknown = [w for w in words if w.startswith("--") and w not in options]
            assert unknown == [], (path, line)


def test_tickets_reach_enroll_on_stdin_in_every_example() -> None:
    enrolls = [line for _, line in ALL if "troth enroll" in line]
    assert enrolls
    assert all("| troth enroll - " in line for line in enrolls), enrolls


def test_the_identity_examples_run_verbatim_in_a_fresh_home(tmp_path: Path) -> None:
    """troth --help, then troth identity, credential and policy --help, in that order; the
    policy files are the README's (`troth policy test` needs a chain granting a refund, which
    the credential example does not: it is left out)."""
    readme = {b.text.split("\n", 1)[0]: b.text for b in blocks((ROOT / "README.md").read_text())}
    files = next(text for first, text in readme.items() if first.startswith("cat > shop.cedar"))
    story = examples(cli.epilog or "")
    for group in ("identity", "credential", "policy"):
        command = cli.commands[group]
        story += [line for line in examples(command.epilog or "") if "policy test" not in line]
    script = "set -euo pipefail\n" + files.split("troth policy")[0] + "\n".join(story) + "\n"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TROTH_HOME": str(tmp_path / "home"),
    }
    for name in ("TROTH_NODE", "TROTH_VAULT_KEY"):
        env.pop(name, None)
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (script, done.stderr[-3000:])
    assert "wrote revision 1" in done.stdout  # troth policy bundle create, as acme on node acme
    assert "in force:  yes" in done.stdout  # troth policy show --node acme
