"""How the demo tells its story: lines go to a writer the CLI supplies (the demo never prints)."""

from __future__ import annotations

from collections.abc import Callable


class Story:
    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def chapter(self, number: int, title: str) -> None:
        self._write("")
        self._write(f"== Chapter {number}. {title}")

    def say(self, line: str) -> None:
        self._write(line)
