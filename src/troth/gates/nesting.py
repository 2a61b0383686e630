"""The shape of Cedar text, read before cedarpy parses it: Cedar's parser and the conversions
after it recurse once per bracket and once per link of an operator chain (`a || b || ...`,
`.a.a...`, `if ... else if ...`) and overflow the native stack at a few thousand levels —
the process dies (SIGSEGV), no Python exception. So text nested past
`limits.MAX_CEDAR_NESTING` or with more than `limits.MAX_CEDAR_OPERATORS` operators in one
statement (a policy, a schema declaration) is refused first (reviews 22b, 22c).

Not a parser: it reads tokens — string literals (`"..."`, backslash escapes; Cedar, "Grammar",
STR) and `//` comments (to a line feed or a carriage return, as Cedar's lexer ends them) are
skipped — counts the brackets `(`, `[`, `{` (and in a schema `<`, of `Set<...>`), and counts
operator characters, keywords and opening brackets (`e[...]` is an index) up to each `;`
outside brackets (in a schema, each `;`: a namespace's declarations are inside braces). That
bounds every depth the parser can reach, which is all it needs."""

from __future__ import annotations

import re
from typing import Final

from troth import limits

__all__ = ["cedar_refusal"]

_TOKEN: Final = re.compile(
    r'"(?:[^"\\]|\\.)*"?|//[^\n\r]*|[A-Za-z_][A-Za-z0-9_]*|[()\[\]{}<>;|&.+\-*!=]', re.DOTALL
)
_OPERATOR_WORDS: Final = frozenset({"if", "then", "else", "in", "has", "like", "is"})
_OPERATOR_CHARS: Final = frozenset("|&.+-*!=")


def _shape(text: str, *, schema: bool) -> tuple[int, int]:
    """(the deepest bracket nesting, the most operators in one statement) of `text`; it stops
    reading once either is past its limit."""
    opening, closing = ("([{<", ")]}>") if schema else ("([{", ")]}")
    depth = deepest = operators = most = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        if first == '"' or token.startswith("//"):
            continue
        if first in opening:
            depth += 1
            deepest = max(deepest, depth)
            operators += 1  # `e[...]` is an operator too: `x[""][""]...` chains (review 22d)
            most = max(most, operators)
        elif first in closing:
            depth = max(0, depth - 1)
        elif first == ";":
            if depth == 0 or schema:  # a schema's declarations end at `;` inside a namespace too
                operators = 0
        elif first in _OPERATOR_CHARS or first in "<>" or token in _OPERATOR_WORDS:
            operators += 1
            most = max(most, operators)
        if deepest > limits.MAX_CEDAR_NESTING or most > limits.MAX_CEDAR_OPERATORS:
            break
    return deepest, most


def cedar_refusal(text: str, *, schema: bool = False) -> str | None:
    """Why Cedar `text` (policies, a condition, or with `schema` a schema fragment) must not
    reach cedarpy, or None when it may."""
    deepest, most = _shape(text, schema=schema)
    if deepest > limits.MAX_CEDAR_NESTING:
        return f"nests deeper than {limits.MAX_CEDAR_NESTING} (MAX_CEDAR_NESTING)"
    if most > limits.MAX_CEDAR_OPERATORS:
        return (
            f"has more than {limits.MAX_CEDAR_OPERATORS} operators in one statement "
            "(MAX_CEDAR_OPERATORS): write a set and .contains() for a long list"
        )
    return None
