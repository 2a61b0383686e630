"""README.md as a program: its fenced blocks, and the one bash script that runs them in order
(the rules are in tests/test_readme.py's docstring)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OPENING", "REFUSAL", "Block", "blocks", "commands", "script"]

OPENING = ("make demo", "make test")
"""The commands of the README's first block: what a newcomer runs first (not run here)."""
REFUSAL = '|| echo "refused (exit $?)"'
"""How the README shows a command that must be refused: the test expects `refused (exit 1)`."""

_FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """One fenced block of the README: its language tag, its text, the line it starts on."""

    language: str
    text: str
    line: int


def blocks(markdown: str) -> list[Block]:
    """Every fenced block of `markdown`, in order."""
    return [
        Block(m.group(1), m.group(2), markdown.count("\n", 0, m.start()) + 1)
        for m in _FENCE.finditer(markdown)
    ]


def python_program(markdown: str) -> str:
    """The ```python blocks of `markdown`, concatenated in order: the one program they are."""
    return "\n".join(block.text for block in blocks(markdown) if block.language == "python")


def commands(block: Block) -> tuple[str, ...]:
    """The commands of a shell block, comments and blank lines left out."""
    lines = (line.split("#", 1)[0].strip() for line in block.text.splitlines())
    return tuple(line for line in lines if line)


def script(found: list[Block], python: str, python_file: Path) -> str:
    """The bash script that runs the shell blocks after the opening one, in order, with the
    Python blocks (written to `python_file`) run by `python` where the first one stands."""
    opening, *story = found
    if opening.language != "sh" or commands(opening) != OPENING:
        raise ValueError(f"the README must open with a sh block of exactly {OPENING}")
    python_at = [i for i, block in enumerate(story) if block.language == "python"]
    if python_at and any(b.language == "sh" for b in story[python_at[0] : python_at[-1]]):
        raise ValueError("a sh block stands between two python blocks: their order is ambiguous")
    python_file.write_text("\n".join(b.text for b in story if b.language == "python"))
    parts = ["set -euo pipefail"]
    for index, block in enumerate(story):
        if block.language == "sh" or (python_at and index == python_at[0]):
            where = f"README.md line {block.line}"
            parts.append(f"echo {shlex.quote(f'--- {where}')} >&2")
        if block.language == "sh":
            parts.append(block.text)
        elif python_at and index == python_at[0]:
            parts.append(f"{shlex.quote(python)} {shlex.quote(str(python_file))}")
    return "\n".join(parts) + "\n"
