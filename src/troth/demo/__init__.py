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
)
from troth.demo.story import Story

CHAPTERS: dict[int, Callable[[Story, Path, Clock], None]] = {
    1: chapter1_identity.run,
    2: chapter2_credentials.run,
    3: chapter3_channels.run,
    4: chapter4_gates.run,
}

__all__ = ["CHAPTERS", "run_demo"]


def run_demo(write: Callable[[str], None], home: Path, chapters: list[int] | None = None) -> None:
    story = Story(write)
    clock = SystemClock()
    for number in chapters or sorted(CHAPTERS):
        CHAPTERS[number](story, home / f"chapter{number}", clock)
