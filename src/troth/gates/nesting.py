"""How deep Cedar text nests, read before cedarpy parses it: Cedar's parser recurses once per
bracket and overflows its native stack at a few hundred levels — the process dies (SIGSEGV),
no Python exception — so text nested past `limits.MAX_CEDAR_NESTING` is refused first
(review 22b). Not a parser: it counts `(`, `[` and `{` outside string literals (`"..."`, with
backslash escapes; Cedar, "Grammar", STR) and `//` comments (to a line feed or a carriage
return), which is all a depth needs."""

from __future__ import annotations

import re

from troth import limits

__all__ = ["nesting_depth"]

_OPEN = frozenset("([{")
_CLOSE = frozenset(")]}")
_LINE_END = re.compile(r"[\n\r]")
"""What ends a `//` comment: a line feed or a carriage return, as Cedar's lexer reads it."""


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting of Cedar `text` (policies, a schema, a condition), strings
    and comments aside; it stops counting past MAX_CEDAR_NESTING (the answer is then above it)."""
    depth = deepest = 0
    i, size = 0, len(text)
    while i < size:
        char = text[i]
        if char == '"':  # a string literal: to its closing quote, escapes skipped
            i += 1
            while i < size and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif char == "/" and text.startswith("//", i):  # a comment: to the end of its line
            end = _LINE_END.search(text, i)  # Cedar's lexer: `//[^\n\r]*` (review 22c)
            i = size if end is None else end.start()
        elif char in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limits.MAX_CEDAR_NESTING:
                    return deepest
        elif char in _CLOSE:
            depth = max(0, depth - 1)
        i += 1
    return deepest
