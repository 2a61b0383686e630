"""`troth demo`: the end-to-end story on embedded defaults, one chapter per capability."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from troth.clock import Clock, SystemClock
from troth.demo import (
    chapter1_identity,
    chapter2_credentials,
    chapter3_channels,
    chapter4_gates,
    chapter5_secrets,
    chapter6_traces,
)
from troth.demo.story import Story

# How a chapter adds itself: a module chapterN_topic.py whose `run(story, home, clock)` builds
# its parties under `home` (its own directory) and tells them with `story`: `chapter(N, title)`
# first; `meet(name, identifier)` at each party's first appearance (then `say()` shows that
# identifier as `name (T4dfd…b2a1)` in any line, and `who(identifier)` returns the label);
# `say(line)` for each line; `proved(line)` for each thing it showed (the closing summary lists
# them under its title). Then one entry below, and its snapshot:
# `TROTH_UPDATE_SNAPSHOTS=1 pytest tests/test_demo_bench.py` (review and commit
# tests/snapshots/demo/chapterN.txt).
CHAPTERS: dict[int, Callable[[Story, Path, Clock], None]] = {
    1: chapter1_identity.run,
    2: chapter2_credentials.run,
    3: chapter3_channels.run,
    4: chapter4_gates.run,
    5: chapter5_secrets.run,
    6: chapter6_traces.run,
}

__all__ = ["CHAPTERS", "run_demo"]


def run_demo(write: Callable[[str], None], home: Path, chapters: list[int] | None = None) -> None:
    """Tell `chapters` (default: all) in order, each in its own directory under `home`, then
    what each proved, and where the figures are (the story itself holds no benchmarks)."""
    story = Story(write)
    clock = SystemClock()
    write("acme runs an online shop with AI agents; each chapter sets up the parties it needs")
    write("on fresh nodes, so a party (acme, support-agent) has a new identifier in each.")
    for number in chapters or sorted(CHAPTERS):
        CHAPTERS[number](story, home / f"chapter{number}", clock)
    story.summary()
    write("")
    write("How fast each step is, beside the cryptographic floor it cannot beat: troth bench")
