"""How the demo tells its story: lines go to a writer the CLI supplies (the demo never prints).

Every party is introduced by name (`meet`) before the story mentions it; from then on any
identifier in a line reads `support-agent (T4dfd…b2a1)`. Each chapter records what it proved
(`proved`), and the story ends with a summary of every chapter that ran (`summary`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from troth.cli.names import short
from troth.identity import Identifier

__all__ = ["Story", "quiet"]

_IDENTIFIER = re.compile(r"\bT[0-9a-f]{64}\b")


@dataclass
class _Chapter:
    number: int
    title: str
    proved: list[str] = field(default_factory=list)


class Story:
    """The demo's narrator: chapter headings, lines with named parties, and what each chapter
    proved, summed up at the end."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._names: dict[str, str] = {}
        self._chapters: list[_Chapter] = []

    def chapter(self, number: int, title: str) -> None:
        """Begin chapter `number`: a blank line and its heading."""
        self._chapters.append(_Chapter(number, title))
        self._write("")
        self._write(f"== Chapter {number}. {title}")

    def say(self, line: str) -> None:
        """Tell one line; identifiers in it read as `name (T4dfd…b2a1)` once met."""
        self._write(_IDENTIFIER.sub(lambda match: self.who(match.group(0)), line))

    def meet(self, name: str, identifier: Identifier | str) -> str:
        """Introduce party `name`: from now on its identifier reads `name (T4dfd…b2a1)`, the
        label this returns."""
        self._names[str(identifier)] = name
        return self.who(identifier)

    def who(self, identifier: Identifier | str) -> str:
        """`name (T4dfd…b2a1)` for a party met, else the short form of the identifier."""
        text = str(identifier)
        name = self._names.get(text)
        return f"{name} ({short(text)})" if name else short(text)

    def proved(self, line: str) -> None:
        """Record one thing the current chapter proved, for the closing summary."""
        if not self._chapters:
            raise ValueError("Story.proved() before Story.chapter()")
        self._chapters[-1].proved.append(line)

    def summary(self) -> None:
        """The closing summary: every chapter told, and what it proved."""
        if not self._chapters:
            return
        self._write("")
        self._write("== What the story proved")
        for chapter in self._chapters:
            self._write(f"Chapter {chapter.number}. {chapter.title}")
            for line in chapter.proved:
                self._write(f"  - {line}")


@contextmanager
def quiet(logger: str = "troth.node", level: int = logging.ERROR) -> Iterator[None]:
    """Only `level` and above from `logger` while a chapter runs: the story says what the
    nodes would log."""
    quieted = logging.getLogger(logger)
    before = quieted.level
    quieted.setLevel(level)
    try:
        yield
    finally:
        quieted.setLevel(before)
