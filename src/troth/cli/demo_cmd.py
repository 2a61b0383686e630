"""`troth demo`: the end-to-end story, in a throwaway home unless --home is given."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click


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
def demo(home_dir: str | None, chapters: tuple[int, ...]) -> None:
    """Tell troth's story end to end on embedded defaults."""
    from troth.demo import CHAPTERS, run_demo

    unknown = [c for c in chapters if c not in CHAPTERS]
    if unknown:
        raise click.BadParameter(f"no chapter {unknown[0]} (have {sorted(CHAPTERS)})")
    click.echo("troth demo: cryptographic identity and trust for AI agents")
    if home_dir:
        run_demo(click.echo, Path(home_dir), list(chapters))
        return
    with tempfile.TemporaryDirectory(prefix="troth-demo-") as tmp:
        run_demo(click.echo, Path(tmp), list(chapters))
