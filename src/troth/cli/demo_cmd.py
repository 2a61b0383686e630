"""`troth demo`: the end-to-end story, in a throwaway home unless --home is given."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from troth.cli.output import Reporter, json_command, to_stderr


@click.command("demo", epilog="\b\nExample:\n  troth demo --chapter 2")
@click.option(
    "--home",
    "home_dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Keep the demo's state here (default: a temporary directory, removed at the end).",
)
@click.option(
    "--chapter",
    "chapters",
    type=int,
    multiple=True,
    metavar="N",
    help="Run only chapter N (repeat for several; default: all).",
)
@json_command
def demo(home_dir: str | None, chapters: tuple[int, ...], reporter: Reporter) -> None:
    """Tell troth's story end to end on embedded defaults. With --json, the story's lines go
    to stderr as it runs, and then to stdout in one JSON object (`lines`)."""
    from troth.demo import CHAPTERS, run_demo

    unknown = [c for c in chapters if c not in CHAPTERS]
    if unknown:
        raise click.BadParameter(f"no chapter {unknown[0]} (have {sorted(CHAPTERS)})")
    lines: list[str] = []

    def write(line: str) -> None:  # --json: one document on stdout, the story as progress
        if reporter.as_json:
            lines.append(line)
            to_stderr(line)  # progress: best effort (review 61n, cli 2)
        else:
            click.echo(line)

    write("troth demo: cryptographic identity and trust for AI agents")
    if home_dir:
        run_demo(write, Path(home_dir), list(chapters))
    else:
        with tempfile.TemporaryDirectory(prefix="troth-demo-") as tmp:
            run_demo(write, Path(tmp), list(chapters))
    if reporter.as_json:
        reporter.result(
            {"home": home_dir, "chapters": list(chapters) or sorted(CHAPTERS), "lines": lines}
        )
