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
bounds every depth the parser can reach, which is all it needs.

A schema's hierarchy is bounded too: Cedar gives every entity type and action all its
ancestors (the closure of `in`), n²/2 of them for a chain of n (review 22f: a 64 KiB chain took
1-2 GB). The declarations' heads (`entity A, B in [C, N::D]`, `action "a" in ["b",
N::Action::"c"]`, in their namespaces, names resolved as Cedar resolves them) are read and
their ancestors counted, up to `limits.MAX_CEDAR_ANCESTORS`; and the request environments
its actions make (principal types times resource types of each `appliesTo`), in each of which
Cedar's validator checks every policy that does not name its action (review 22f: one action
for 1,000 x 1,000 types, ~1.2 s a policy), up to `limits.MAX_CEDAR_ENVIRONMENTS`. And its
types, common types expanded as Cedar expands them (review 22h: a chain of records each of two
of the one before doubles per declaration), up to `limits.MAX_CEDAR_TYPE_NODES`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Final

from troth import limits

__all__ = [
    "action_hierarchy",
    "cedar_refusal",
    "json_objects",
    "largest_record",
    "largest_type_text",
    "largest_types",
]

_TOKEN: Final = re.compile(
    r'"(?:[^"\\]|\\.)*"?|//[^\n\r]*|[A-Za-z_][A-Za-z0-9_]*|[()\[\]{}<>;|&.+\-*!=]', re.DOTALL
)
_OPERATOR_WORDS: Final = frozenset({"if", "then", "else", "in", "has", "like", "is"})
_OPERATOR_CHARS: Final = frozenset("|&.+-*!=")
_SCHEMA_TOKEN: Final = re.compile(
    r'"(?:[^"\\]|\\.)*"?|//[^\n\r]*|[A-Za-z_][A-Za-z0-9_]*|::|[^\sA-Za-z0-9_"/]', re.DOTALL
)
_ESCAPE: Final = re.compile(r"\\(?:u\{([0-9A-Fa-f]{1,6})\}|x([0-7][0-9A-Fa-f])|(.))", re.DOTALL)
_SIMPLE_ESCAPES: Final = {"n": "\n", "r": "\r", "t": "\t", "0": "\0"}
"""Cedar's string escapes (`\\n`, `\\u{1F600}`, `\\x6a` of an ASCII character: review 22h;
any other escaped character as itself)."""
_DECLARATION_STARTS: Final = frozenset({";", "{", "}"})
"""What a declaration follows (its annotations aside)."""
_HEAD_ENDS: Final = frozenset({"in", "=", "{", ";", "appliesTo", "tags", "enum", "attributes"})
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE_POSITIONS: Final = frozenset({":", "=", "<", "tags"})
"""What a type follows: an attribute's `:` (a `context:`), a common type's or an entity's `=`,
`Set<`, an entity's `tags`."""


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


def _declarations(text: str) -> tuple[dict[str, list[str]], dict[str, int]]:
    """The parents (`in`) of each entity type and action a schema declares, by qualified name
    (`N::A`, `N::Action::"a"`; parents resolved as Cedar does: an unqualified entity type in
    its namespace if declared there, else the empty namespace), and the request environments
    each action makes (its principal types times its resource types; by qualified uid)."""
    tokens = [_unescaped(t) for t in _SCHEMA_TOKEN.findall(text) if not t.startswith("//")]
    found: list[tuple[str, str, list[str], list[str]]] = []  # (kind, namespace, names, parents)
    braces: list[str | None] = []  # the namespace a `{` opens, or None: another brace
    namespace, previous, i = "", ";", 0
    environments: dict[str, int] = {}
    while i < len(tokens):
        word = tokens[i]
        if word == "@":  # an annotation, `@a` or `@a("...")`: what follows starts as it would
            i += 2
            if tokens[i : i + 1] == ["("]:
                while i < len(tokens) and tokens[i] != ")":
                    i += 1
                i += 1
            continue
        if word == "namespace" and previous in _DECLARATION_STARTS:
            j = i + 1
            while j < len(tokens) and tokens[j] != "{":
                j += 1
            braces.append("".join(tokens[i + 1 : j]))
            namespace, previous, i = braces[-1] or "", "{", j + 1
            continue
        if word == "{":
            braces.append(None)
        elif word == "}" and braces:
            braces.pop()
            namespace = next((ns for ns in reversed(braces) if ns is not None), "")
        elif (
            word in ("entity", "action") and previous in _DECLARATION_STARTS and None not in braces
        ):
            names, j = _until(tokens, i + 1, _HEAD_ENDS)
            parents: list[str] = []
            if j < len(tokens) and tokens[j] == "in":
                if j + 1 < len(tokens) and tokens[j + 1] == "[":
                    parents, j = _until(tokens, j + 2, frozenset("]"))
                    # past the `]`: an `appliesTo` may follow (review 22h, gates 6); none at
                    # the end of an unclosed `in [` (review 63b, gates 1: IndexError)
                    j = min(j + 1, len(tokens))
                else:
                    parents, j = _until(tokens, j + 1, _HEAD_ENDS | {","})
            found.append((word, namespace, names, parents))
            if word == "action" and j < len(tokens) and tokens[j] == "appliesTo":
                made = _applies_to(tokens, j + 1)
                for name in names:
                    uid = _qualified("action", namespace, name)
                    environments[uid] = environments.get(uid, 0) + made
            previous, i = tokens[j - 1] if j > i else word, j
            continue
        previous, i = word, i + 1
    declared = {_qualified(kind, ns, name) for kind, ns, names, _ in found for name in names}
    parents_of: dict[str, list[str]] = {}
    for kind, ns, names, parents in found:
        resolved = [_resolve(kind, ns, parent, declared) for parent in parents]
        for name in names:
            parents_of.setdefault(_qualified(kind, ns, name), []).extend(resolved)
    return parents_of, environments


def _type_nodes(text: str) -> tuple[int, int, int]:
    """How many type nodes a schema's types make with its common types expanded, as Cedar
    expands them (each `type` wherever it is used, and each on its own): every name in a type
    position (`_TYPE_POSITIONS`) is one, plus its expansion when it names a common type (`N::T`
    as written; `T` in its namespace if declared there, else in the empty one); a common
    type's expansion is each of its names so counted and each of its records (`{`). Counted
    until past MAX_CEDAR_TYPE_NODES (review 22h); the most one record type makes (review
    22h, gates 5); and the longest printed form of one type (`_printed`, review 25, gates 1)."""
    tokens = [t for t in _SCHEMA_TOKEN.findall(text) if not t.startswith("//")]
    spaces = _namespaces(tokens)
    names: dict[int, str] = {}  # the index of each name in a type position -> its path
    for i in range(1, len(tokens)):
        if tokens[i - 1] in _TYPE_POSITIONS and _IDENTIFIER.fullmatch(tokens[i]):
            j = i + 1
            while tokens[j : j + 1] == ["::"] and _IDENTIFIER.fullmatch(_at(tokens, j + 1)):
                j += 2
            names[i] = "".join(tokens[i:j])
    starts = [
        i
        for i in range(len(tokens) - 2)
        if tokens[i] == "type" and tokens[i + 2] == "=" and _IDENTIFIER.fullmatch(tokens[i + 1])
    ]
    bodies: dict[str, tuple[int, int]] = {}  # common type -> the span of its definition: to
    for n, i in enumerate(starts):  # its `;`, or the next definition (spans apart: linear)
        end = starts[n + 1] if n + 1 < len(starts) else len(tokens)
        end = next((j for j in range(i + 3, end) if tokens[j] == ";"), end)
        bodies[_within(spaces[i], tokens[i + 1])] = (i + 3, end)

    def common(i: int) -> str | None:
        local = _within(spaces[i], names[i])
        return local if local in bodies else names[i] if names[i] in bodies else None

    most, longest = limits.MAX_CEDAR_TYPE_NODES, limits.MAX_CEDAR_TYPE_TEXT
    extra = max(map(len, spaces), default=0) + 2  # an entity type printed as `N::A`
    size: dict[str, int] = {}
    printed: dict[str, int] = {}  # common type -> its printed form's length (an upper bound)
    entered: set[str] = set()
    for root in bodies:
        stack = [(root, False)]
        while stack:  # depth first, a type's uses before it (no recursion: a chain is long)
            name, ready = stack.pop()
            if name in size or (not ready and name in entered):
                continue
            start, end = bodies[name]
            uses = [common(i) for i in range(start, end) if i in names]
            if not ready:
                entered.add(name)  # a use still entered is a cycle: Cedar refuses it
                stack.append((name, True))
                stack.extend((u, False) for u in uses if u is not None and u not in entered)
                continue
            records = tokens[start:end].count("{")
            size[name] = min(most + 1, records + sum(1 + size.get(u or "", 0) for u in uses))
            text_of = sum(_printed(tokens[j], extra * (j in names)) for j in range(start, end))
            text_of += sum(printed.get(u or "", 0) for u in uses)
            printed[name] = min(longest + 1, text_of)
    largest = 0
    widest = max((_printed(word, extra) for word in tokens), default=0)  # an entity type's name
    widest = max(widest, *printed.values()) if printed else widest
    opened: list[int | None] = []  # each open brace's nodes so far, None: not a record
    written: list[int | None] = []  # each open brace's printed characters so far
    for i, word in enumerate(tokens):
        grows = _printed(word, extra * (i in names))
        grows += printed.get(common(i) or "", 0) if i in names else 0
        written = [None if count is None else min(longest + 1, count + grows) for count in written]
        if word == "{":
            for n, count in enumerate(opened):
                opened[n] = None if count is None else count + 1
            opened.append(None if _opens_scope(tokens, i) else 0)
            written.append(None if opened[-1] is None else grows)
        elif word == "}" and opened:
            largest = max(largest, opened.pop() or 0)
            widest = max(widest, written.pop() or 0)
        elif i in names:
            nodes = 1 + size.get(common(i) or "", 0)
            opened = [None if count is None else count + nodes for count in opened]
    total = 0
    for i in names:
        total += 1 + size.get(common(i) or "", 0)
        if total > most:
            break
    return total, largest, widest + _SET_TEXT * limits.MAX_CEDAR_NESTING


_SET_TEXT: Final = len("Set<>")
"""What each `Set<...>` around a type outside any record adds to its printed form (an entity's
`tags Set<Set<T>>`): at most MAX_CEDAR_NESTING of them."""


def _printed(token: str, extra: int) -> int:
    """At most how many characters a schema token takes in the printed form of a type, as
    Cedar's validator prints it in its messages (`{a: Long,b?: N::E,c: Set<String>,}`;
    cedarpy 4): an attribute name as it reads (quoted in the text, printed unquoted and
    unescaped: no longer than its text) with its `: ` and `,`; a name, qualified by its
    namespace when in a type position (`extra`: the longest namespace and its `::`; a
    builtin prints shorter, `__cedar::Long` as `Long`); any other token (`{`, `}`, `<`, `>`,
    `?`, `::`) two. A quoted name counts at least as JSON writes it: cedarpy hands its messages
    to Python as a JSON text, where a control character is `\\u00XX`, six (review 26c, gates
    1)."""
    if token.startswith('"'):
        inner = token[1:-1] if token.endswith('"') and len(token) > 1 else token[1:]
        written = json.dumps(_ESCAPE.sub(_escaped, inner), ensure_ascii=False)
        return max(len(token), len(written)) + 3
    if _IDENTIFIER.fullmatch(token):
        return len(token) + extra + 3
    return 2


def _opens_scope(tokens: list[str], i: int) -> bool:
    """Whether the `{` at `i` opens a namespace or an `appliesTo`, not a record type."""
    if i > 0 and tokens[i - 1] == "appliesTo":
        return True
    j = i - 1
    while j >= 0 and (tokens[j] == "::" or _IDENTIFIER.fullmatch(tokens[j])):
        if tokens[j] == "namespace":
            return _declares(tokens, j)
        j -= 1
    return False


def largest_record(text: str) -> int:
    """The most type nodes one record type of Cedar schema `text` makes (its attributes,
    nested records and common types expanded, as `_type_nodes` counts them; saturating past
    MAX_CEDAR_TYPE_NODES in a common type): what Cedar's validator walks for each comparison
    of two values of it (review 22h, gates 5)."""
    return _type_nodes(text)[1]


def largest_type_text(text: str) -> int:
    """At most how many characters the printed form of one type of Cedar schema `text` takes
    (a record's, a common type's, an entity type's name; common types expanded, each token as
    `_printed` bounds it; saturating past MAX_CEDAR_TYPE_TEXT): what a validation error naming
    an operand of that type carries (review 25, gates 1)."""
    return _type_nodes(text)[2]


def largest_types(text: str) -> tuple[int, int]:
    """`largest_record` and `largest_type_text` of `text`, read once."""
    _, record, printed = _type_nodes(text)
    return record, printed


def _declares(tokens: list[str], i: int) -> bool:
    """Whether the keyword at `i` starts a declaration (`action namespace appliesTo {` names
    an action): first, after one, or after an annotation (`@a`, `@a("...")`)."""
    return i == 0 or tokens[i - 1] in _DECLARATION_STARTS | {")"} or _at(tokens, i - 2) == "@"


def _at(tokens: list[str], i: int) -> str:
    return tokens[i] if i < len(tokens) else ""


def _within(namespace: str, name: str) -> str:
    return f"{namespace}::{name}" if namespace else name


def _namespaces(tokens: list[str]) -> list[str]:
    """The namespace each token is in (`namespace N { ... }`; "" outside any)."""
    spaces: list[str] = []
    braces: list[str | None] = []  # the namespace a `{` opens, or None: another brace
    namespace = ""
    for i, word in enumerate(tokens):
        if word == "{":
            j = i - 1  # `namespace N::M {`: the path before the brace, back to its keyword
            while j >= 0 and (tokens[j] == "::" or _IDENTIFIER.fullmatch(tokens[j])):
                if tokens[j] == "namespace":
                    break
                j -= 1
            opens = j >= 0 and tokens[j] == "namespace" and _declares(tokens, j)
            braces.append("".join(tokens[j + 1 : i]) if opens else None)
            namespace = next((ns for ns in reversed(braces) if ns is not None), "")
        elif word == "}" and braces:
            braces.pop()
            namespace = next((ns for ns in reversed(braces) if ns is not None), "")
        spaces.append(namespace)
    return spaces


def _applies_to(tokens: list[str], start: int) -> int:
    """The principal types times the resource types of the `appliesTo { ... }` at `start`."""
    counts = {"principal": 0, "resource": 0}
    depth, i = 0, start
    while i < len(tokens):
        word = tokens[i]
        depth += (word == "{") - (word == "}")
        if depth <= 0:
            break
        if depth == 1 and word in counts and tokens[i + 1 : i + 2] == [":"]:
            if tokens[i + 2 : i + 3] == ["["]:
                counts[word] = len(_until(tokens, i + 3, frozenset("]"))[0])
            else:
                counts[word] = 1
        i += 1
    return counts["principal"] * counts["resource"]


def _unescaped(word: str) -> str:
    """A string literal with its escapes read (`"a\\u{62}"` names the action `"ab"`), quoted
    again; any other token as it is."""
    if not word.startswith('"'):
        return word
    inner = _ESCAPE.sub(_escaped, word[1:-1] if word.endswith('"') and len(word) > 1 else word[1:])
    return '"' + inner.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _escaped(match: re.Match[str]) -> str:
    code = match.group(1)
    if code is not None:
        return chr(int(code, 16)) if int(code, 16) <= 0x10FFFF else match.group()
    if match.group(2) is not None:
        return chr(int(match.group(2), 16))
    return _SIMPLE_ESCAPES.get(match.group(3), match.group(3))


def _until(tokens: list[str], start: int, ends: frozenset[str]) -> tuple[list[str], int]:
    """The names (paths joined, `,` apart) from `start` to the first of `ends` (its index)."""
    names: list[str] = []
    current = ""
    i = start
    while i < len(tokens) and tokens[i] not in ends:
        if tokens[i] == ",":
            names.append(current)
            current = ""
        else:
            current += tokens[i]
        i += 1
    if current:
        names.append(current)
    return [name for name in names if name], i


def _qualified(kind: str, namespace: str, name: str) -> str:
    prefix = f"{namespace}::" if namespace else ""
    if kind == "entity":
        return prefix + name
    return prefix + "Action::" + (name if name.startswith('"') else f'"{name}"')


def _resolve(kind: str, namespace: str, parent: str, declared: set[str]) -> str:
    """A parent as Cedar resolves it: qualified as written (`N::A`, `N::Action::"a"`); else
    (`A`; `"a"`, `a` or `Action::"a"`) in the declaration's namespace if declared there, else
    in the empty namespace (review 22h: an action's too)."""
    if kind == "action":
        if parent.startswith('Action::"'):  # not Action::Action::"a" (a namespace Action)
            parent = parent.removeprefix("Action::")
        if not parent.startswith('"') and "::" in parent:
            return parent  # N::Action::"a"
    elif "::" in parent:
        return parent
    local = _qualified(kind, namespace, parent)
    return local if local in declared else _qualified(kind, "", parent)


def _ancestors(parents_of: dict[str, list[str]]) -> int:
    """How many (declaration, ancestor) pairs the hierarchy holds (the closure Cedar builds),
    counted until past MAX_CEDAR_ANCESTORS (or the work of counting is). Each declaration's
    ancestors are walked on their own, not built from its parents' sets: Cedar takes a cycle of
    entity types (`entity Group in [Group];`, groups of groups) and gives each member all of
    the cycle's, which a walk counts as they are (one that waited for a parent still being
    counted never ended; review 22h)."""
    most = limits.MAX_CEDAR_ANCESTORS
    total = work = 0
    for root in parents_of:
        seen, steps = _reachable(parents_of, root, 4 * most - work)
        total += len(seen)
        work += steps
        if total > most or work > 4 * most:
            return total + most
    return total


def _reachable(parents_of: dict[str, list[str]], root: str, budget: int) -> tuple[set[str], int]:
    """The declarations reachable from `root` through `parents_of` and the steps the walk took,
    stopping once it has taken more than `budget`."""
    seen: set[str] = set()
    stack = [root]
    work = 0
    while stack and work <= budget:
        for parent in parents_of.get(stack.pop(), ()):
            work += 1
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen, work


def action_hierarchy(text: str) -> tuple[dict[str, int], dict[str, int], dict[str, int]] | None:
    """The descendants each action group of Cedar schema `text` has (by qualified uid,
    `Action::"g"`, `N::Action::"g"`: the actions whose ancestor it is, parents resolved as
    Cedar does), the request environments each action makes (by the same uid), and those its
    descendants make (what `action in g` is checked in; review 22j, gates 2); None when
    counting them takes more than 8 x MAX_CEDAR_ANCESTORS steps (a fragment within
    MAX_CEDAR_ANCESTORS and troth's derived actions take fewer). Cedar's validator checks
    `action in Action::"g"` against each of g's descendants in each environment it checks a
    policy in (review 22h, gates 6): what `compile_policies` bounds with
    MAX_CEDAR_ACTION_PAIRS, read from the composed schema (troth's `invoke` group holds every
    tool's action); a policy naming its action is checked in its environments only (review
    22i, gates 3)."""
    parents_of, environments = _declarations(text)
    descendants: dict[str, int] = {}
    beneath: dict[str, int] = {}
    work = 0
    for root in parents_of:
        if not root.endswith('"'):  # an entity type's
            continue
        seen, steps = _reachable(parents_of, root, 8 * limits.MAX_CEDAR_ANCESTORS - work)
        work += steps
        if work > 8 * limits.MAX_CEDAR_ANCESTORS:
            return None
        for ancestor in seen - {root}:
            descendants[ancestor] = descendants.get(ancestor, 0) + 1
            beneath[ancestor] = beneath.get(ancestor, 0) + environments.get(root, 0)
    return descendants, environments, beneath


def cedar_refusal(text: str, *, schema: bool = False) -> str | None:
    """Why Cedar `text` (policies, a condition, or with `schema` a schema fragment) must not
    reach cedarpy, or None when it may."""
    deepest, most = _shape(text, schema=schema)
    if deepest > limits.MAX_CEDAR_NESTING:
        return f"nests deeper than {limits.MAX_CEDAR_NESTING} (MAX_CEDAR_NESTING)"
    if most > limits.MAX_CEDAR_OPERATORS:
        return (
            f"has more than {limits.MAX_CEDAR_OPERATORS} operators in one statement "
            "(MAX_CEDAR_OPERATORS; each opening bracket counts, a call's too): split it into "
            "several policies, or keep a long list as a set of plain literals and .contains()"
        )
    if not schema:
        return None
    parents_of, made = _declarations(text)
    if sum(made.values()) > limits.MAX_CEDAR_ENVIRONMENTS:
        return (
            f"makes more than {limits.MAX_CEDAR_ENVIRONMENTS} request environments "
            "(MAX_CEDAR_ENVIRONMENTS: an action's principal types times its resource types, "
            "each one Cedar checks every policy in)"
        )
    nodes, _, printed = _type_nodes(text)
    if nodes > limits.MAX_CEDAR_TYPE_NODES:
        return (
            f"makes more than {limits.MAX_CEDAR_TYPE_NODES} type nodes with its common types "
            "expanded (MAX_CEDAR_TYPE_NODES: Cedar expands each `type` wherever it is used)"
        )
    if printed > limits.MAX_CEDAR_TYPE_TEXT:
        return (
            f"declares a type whose printed form, its common types expanded, may take more "
            f"than {limits.MAX_CEDAR_TYPE_TEXT} characters (MAX_CEDAR_TYPE_TEXT: a validation "
            "error names an operand's whole type): use shorter attribute names, fewer "
            "attributes or fewer uses of a common type"
        )
    if _ancestors(parents_of) > limits.MAX_CEDAR_ANCESTORS:
        return (
            f"declares a hierarchy of more than {limits.MAX_CEDAR_ANCESTORS} ancestors "
            "(MAX_CEDAR_ANCESTORS: Cedar gives each entity type and action all of its own)"
        )
    return None


def json_objects(root: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object within `root` (a policy's JSON form), each once (iterative: a
    condition's JSON form nests hundreds deep)."""
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            yield node
            stack.extend(node.values())
