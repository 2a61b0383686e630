"""A bundle's policies compiled against its composed schema (docs/policy.md, "The schema").

The schema of a bundle is composed of three parts, in this order:
1. troth's fixed declarations (`FIXED_SCHEMA`): the `Agent` entity (delegation facts as
   attributes, credential attributes as tags), `Tool` (in `Server`: the MCP server serving it;
   review 53c, gates 1), `Service`, `Secret`, the action group
   `invoke` and the action `lease`;
2. what troth derives from the bundle: one action per tool,
   `action "invoke:<tool>" in [Action::"invoke"]` whose `context.args` is the tool's input
   schema as an exact Cedar record, and one action per service method (`context: {now}`);
3. the author's fragment (Cedar schema text), which may add declarations but not change 1-2:
   Cedar refuses a second declaration of a name, troth names builtins as `__cedar::Long`, and a
   probe policy using every fixed attribute at its type must validate (a fragment's
   `type Agent = String;` would otherwise retype `Agent` attributes).

Policies must each carry a unique, non-empty `@id` of [A-Za-z0-9_.:/-], not `policy<N>` (Cedar's
positional ids) and not `caveat:...` (troth's); the set must validate against the composed
schema. The set is parsed from the text (Cedar's positional ids, `policy0`...); a decision
reports the authors' `@id`s (Cedar's `id_annotations_by_reason`, and `names` for its errors).
It is not rebuilt from Cedar's JSON form, whose reader stops at 128 levels (a policy of 60
`||` terms); a policy whose JSON form is deeper than Python reads (~500 terms) is refused
typed (review 22b, finding 8).

Before Cedar validates the set, a cost model refuses what would take its validator long
(`_check_validation_cost`, docs/policy.md "Nesting and size"). Its time per validation error,
in proportion to the whole text, no count bounds beforehand: a text whose environments x
length² is over MAX_CEDAR_INPROCESS_WORK is validated in a child process limited in CPU time
and address space (`_validate_in_child`, troth.gates.validate_child; review 22j, gates 5).
A validation error names an operand of the wrong type by its whole type, common types
expanded: a schema fragment whose largest type prints longer than MAX_CEDAR_TYPE_TEXT is
refused (troth.gates.nesting), and a text whose errors may name more than
MAX_CEDAR_INPROCESS_MESSAGES characters of types (`_quoted_text`) is validated in the child
too; the parent reads at most MAX_CEDAR_VALIDATION_OUTPUT bytes of its output, and a
PolicyError keeps at most MAX_POLICY_MESSAGES messages of MAX_POLICY_MESSAGE_TEXT characters
(review 25, gates 1-2).
"""

from __future__ import annotations

import json
import re
import signal
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import cedarpy

from troth import limits
from troth.errors import PolicyError, PolicyFailure, PolicyNotChecked, cut_text
from troth.gates.arguments import check_policy_inputs
from troth.gates.caveats import CAVEAT_ID_PREFIX
from troth.gates.nesting import action_hierarchy, cedar_refusal, largest_types
from troth.gates.nesting import json_objects as _objects
from troth.gates.preview_sets import ToolSets, arguments_named, tool_sets
from troth.gates.toolschema import ToolSchema, check_name, compile_tool_schema
from troth.gates.validation_process import CHILD_MALLOC as CHILD_MALLOC
from troth.gates.validation_process import CPU_LIMIT_REACHED as CPU_LIMIT_REACHED
from troth.gates.validation_process import CPU_LIMIT_SIGNALLED, OWN_SIGNALS, _run_child, signal_name
from troth.gates.validation_process import _child_environment as _child_environment

__all__ = [
    "FIXED_SCHEMA",
    "RESERVED_METHODS",
    "CompiledPolicies",
    "compile_policies",
    "compose_schema",
    "tool_action",
]

FIXED_SCHEMA: Final = """\
entity Agent {
  authority: __cedar::String,
  root: Agent,
  delegator?: Agent,
  delegators: Set<Agent>,
  purpose: __cedar::String,
  depth: __cedar::Long,
  not_before: __cedar::Long,
  expires_at: __cedar::Long
} tags Set<__cedar::String>;
entity Server;
entity Tool in [Server];
entity Service;
entity Secret;
action invoke;
action lease appliesTo {
  principal: [Agent], resource: [Secret],
  context: { now: __cedar::Long, scope: Set<__cedar::String>, ttl: __cedar::Long }
};
"""
_PROBE: Final = """\
permit(principal, action == Action::"lease", resource == Secret::"probe") when {
  principal.authority like "T*" && principal.root.depth >= 0 &&
  (principal has delegator && principal.delegator.depth >= 0) &&
  principal.delegators.contains(principal.root) && principal.purpose == "" &&
  principal.not_before <= principal.expires_at && context.now >= 0 &&
  context.scope.contains("x") && context.ttl >= 0 &&
  principal.hasTag("probe.tag") && principal.getTag("probe.tag").contains("x")
};
"""
RESERVED_METHODS: Final = frozenset({"invoke", "lease"})
"""Method names that are troth's actions, refused as service methods."""
_POLICY_ID: Final = re.compile(rf"[A-Za-z0-9_.:/-]{{1,{limits.MAX_POLICY_ID_TEXT}}}")
_POSITIONAL: Final = re.compile(r"policy[0-9]+")
_POSITIONAL_QUOTED: Final = re.compile(r"`(policy[0-9]+)`")


def tool_action(tool: str) -> str:
    """The Cedar action id of invoking `tool`."""
    return f"invoke:{tool}"


def _refuse(reason: PolicyFailure, detail: str, messages: Iterable[str] = ()) -> PolicyError:
    return PolicyError(reason, detail, tuple(messages))


def _cut(message: str) -> str:
    """`message` within MAX_POLICY_MESSAGE_TEXT characters, saying how many were left out."""
    return cut_text(message, limits.MAX_POLICY_MESSAGE_TEXT)


def _kept(messages: Iterable[str]) -> list[str]:
    """The first MAX_POLICY_MESSAGES of `messages`, each `_cut`, and how many others there
    were (review 25, gates 1-2)."""
    kept: list[str] = []
    others = 0
    for message in messages:
        if len(kept) < limits.MAX_POLICY_MESSAGES:
            kept.append(_cut(message))
        else:
            others += 1
    if others:
        kept.append(f"... and {others} more messages (MAX_POLICY_MESSAGES)")
    return kept


@dataclass(frozen=True, slots=True, eq=False)
class CompiledPolicies:
    """Parsed handles of a bundle's policies and composed schema, its tools and services."""

    policy_set: cedarpy.PolicySet
    schema: cedarpy.Schema
    schema_text: str
    tools: Mapping[str, ToolSchema]
    services: Mapping[str, frozenset[str]]
    policy_ids: tuple[str, ...]
    names: Mapping[str, str]
    """Each policy's Cedar id (positional, `policy<N>`) -> its `@id`."""
    text_size: int = 0
    """The length of the policy text (what a copy of `policy_set` holds: the engine bounds
    its copies with caveats added by it, review 41d, caveats 1)."""
    tool_sets: ToolSets = field(default_factory=dict)
    """Per tool, the policies that can apply to it, where fewer than all (troth.gates.
    preview_sets: what a preview evaluates it against; review 55n, preview 2)."""
    preview_work: int = 0
    """The policies a preview of every tool evaluates in all (0: not counted; then tools x
    policies)."""
    arguments_named: bool = False
    """Whether the policies read the context only by naming what they read (troth.gates.
    preview_sets.arguments_named: previews then know the tools' argument names; review 65m,
    gates 1)."""


def compose_schema(
    fragment: str, tools: Mapping[str, ToolSchema], services: Mapping[str, frozenset[str]]
) -> str:
    """The full Cedar schema text: the fixed part, the derived actions, the fragment."""
    parts = [FIXED_SCHEMA]
    for name in sorted(tools):
        parts.append(
            f'action "{tool_action(name)}" in [Action::"invoke"] appliesTo {{\n'
            f"  principal: [Agent], resource: [Tool],\n"
            f"  context: {{ args: {tools[name].cedar_args}, now: __cedar::Long }}\n}};\n"
        )
    for method in sorted({m for methods in services.values() for m in methods}):
        parts.append(
            f'action "{method}" appliesTo {{\n  principal: [Agent], resource: [Service],\n'
            f"  context: {{ now: __cedar::Long }}\n}};\n"
        )
    parts.append(fragment)
    return "".join(parts)


def _check_services(services: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    if len(services) > limits.MAX_SERVICES:
        raise _refuse(PolicyFailure.OVER_LIMIT, f"more than {limits.MAX_SERVICES} services")
    checked: dict[str, frozenset[str]] = {}
    for name, methods in services.items():
        check_name(name, "service")
        method_set = frozenset(check_name(m, "method") for m in methods)
        if not method_set or len(method_set) > limits.MAX_SERVICES:
            raise _refuse(
                PolicyFailure.OVER_LIMIT, f"service {name}: 1-{limits.MAX_SERVICES} methods"
            )
        reserved = sorted(method_set & RESERVED_METHODS)
        if reserved:
            raise _refuse(PolicyFailure.SCHEMA_INVALID, f"method {reserved[0]!r} is reserved")
        checked[name] = method_set
    return checked


def _policy_ids(est: Mapping[str, Any]) -> dict[str, str]:
    """Cedar's positional id -> the policy's `@id`, refusing missing, bad or duplicate ids."""
    if est.get("templates"):
        raise _refuse(PolicyFailure.POLICIES_INVALID, "templates are not supported")
    statics: dict[str, Any] = est.get("staticPolicies", {})
    if len(statics) > limits.MAX_POLICIES:
        raise _refuse(PolicyFailure.OVER_LIMIT, f"more than {limits.MAX_POLICIES} policies")
    ids: dict[str, str] = {}
    seen: set[str] = set()
    problems: list[str] = []
    for position, key in enumerate(statics):
        given = statics[key].get("annotations", {}).get("id")
        where = f"policy {position + 1}"
        if not given:
            problems.append(f"{where} has no @id (every policy needs a unique @id)")
        elif len(given) > limits.MAX_POLICY_ID_TEXT:  # named, not echoed (review 75s, 1)
            problems.append(
                f"{where}: @id {given[:32]!r}... is {len(given)} characters, over "
                f"MAX_POLICY_ID_TEXT ({limits.MAX_POLICY_ID_TEXT})"
            )
        elif not _POLICY_ID.fullmatch(given) or _POSITIONAL.fullmatch(given):
            problems.append(f"{where}: @id {given!r} is not [A-Za-z0-9_.:/-] or is positional")
        elif given.startswith(CAVEAT_ID_PREFIX):
            problems.append(f"{where}: @id {given!r} uses the reserved prefix caveat:")
        elif given in seen:
            problems.append(f"{where}: @id {given!r} is used twice")
        else:
            seen.add(given)
            ids[key] = given
    if problems:
        raise _refuse(PolicyFailure.POLICIES_INVALID, problems[0], problems)
    return ids


def _uid(entity: Mapping[str, Any]) -> str:
    """`{"type": "N::Action", "id": "g"}` as the schema scan names it: `N::Action::"g"`."""
    quoted = str(entity.get("id", "")).replace("\\", "\\\\").replace('"', '\\"')
    return f'{entity.get("type", "")}::"{quoted}"'


def _group_members(policy: Mapping[str, Any], descendants: Mapping[str, int]) -> int:
    """The descendants of every action group an `in` of `policy` (its JSON form) names: its
    action scope's (`in A`, `in [A, B]`), and each `in` (and `is ... in`) in its conditions,
    counted for each entity written on its right (review 22h, gates 6)."""
    scope = policy.get("action", {})
    named: list[Any] = []
    if isinstance(scope, dict) and scope.get("op") == "in":
        named.extend(scope.get("entities", [scope.get("entity")]))
    for node in _objects(policy.get("conditions", [])):
        inner = node.get("in")
        if inner is not None:  # `a in b` ({"left", "right"}) or `a is T in b` (b)
            right = inner.get("right") if isinstance(inner, dict) else None
            rights = [right if right is not None else inner]
            while rights:
                item = rights.pop()
                if isinstance(item, list):
                    rights.extend(item)
                elif isinstance(item, dict):
                    entity = item.get("__entity")
                    if isinstance(entity, dict):
                        named.append(entity)
                    else:
                        rights.extend(item.values())
    return sum(descendants.get(_uid(e), 0) for e in named if isinstance(e, dict))


_PAIRED: Final = ("==", "!=", "contains", "containsAll", "containsAny")


def _type_walks(policy: Mapping[str, Any]) -> int:
    """How many times validating `policy` (its JSON form) may walk a record type in one
    environment: each `==`, `!=`, `.contains`, `.containsAll`, `.containsAny` and `if` whose
    two sides are neither literal, and each element past the first of a set literal, each
    counted as the values of its record and set literals (`_values`) (Cedar's
    validator takes the least upper bound of the types, attribute by attribute; a literal's
    type is a scalar or an entity, which ends it at once; review 22h, gates 5)."""
    walks = 0
    known: dict[int, int] = {}
    for node in _objects(policy.get("conditions", [])):
        for key, value in node.items():
            sides: list[Any] = []
            if key in _PAIRED and isinstance(value, dict):
                sides = [value.get("left"), value.get("right")]
            elif key == "if-then-else" and isinstance(value, dict):
                sides = [value.get("then"), value.get("else")]
            elif key == "Set" and isinstance(value, list):
                widths = [_values(v, known) for v in value]
                walks += sum(widths) - max(widths, default=0)
            if sides and not any(_literal(side) for side in sides):
                walks += max(_values(side, known) for side in sides)
    return walks


def _nodes(policy: Mapping[str, Any]) -> int:
    """The nodes of `policy`'s JSON form the validator typechecks in each environment: its
    scope (1) and each object in its conditions, a record literal's attribute 4 (measured
    ~300 ns against ~80 ns a node; review 22i, gates 1); each object also counted once for each
    `has`/`.hasTag` proven before it, which the validator carries into it (the left of an `&&`
    into its right, an `if` into its `then`, the policy's other clauses, which Cedar joins with
    `&&`; ~70 ns each: a chain of n guards is n²/2; review 22j, gates 1); and a string given to
    a function (`decimal("1.0")`), which it parses, a node per 8 characters (~6.6 ns a
    character; review 22j, gates 3)."""
    conditions = policy.get("conditions", [])
    guards = _guards(conditions)
    total = guards.get(id(conditions), 0)
    clauses = conditions if isinstance(conditions, list) else [conditions]
    stack = [(clause, total - guards.get(id(clause), 0)) for clause in clauses]
    carried: dict[int, tuple[str, int]] = {}  # an `&&`'s or `if`'s operands -> what gains
    nodes = 1
    while stack:
        node, proven = stack.pop()
        if isinstance(node, list):
            stack.extend((item, proven) for item in node)
        elif isinstance(node, dict):
            record = node.get("Record")
            nodes += 1 + proven + (3 * len(record) if isinstance(record, dict) else 0)
            gains, more = carried.pop(id(node), ("", 0))
            for key, value in node.items():
                nodes += _argument_text(key, value) // 8
                if key in _CARRIES and isinstance(value, dict):
                    given, into = _CARRIES[key]
                    carried[id(value)] = (into, guards.get(id(value.get(given)), 0))
                stack.append((value, proven + more if key == gains else proven))
    return nodes


def _argument_text(key: str, value: Any) -> int:
    """The characters of the string literals a call (`{"decimal": [{"Value": "1.0"}]}`, any
    key but `Set` whose value is a list) is given."""
    if key == "Set" or not isinstance(value, list):
        return 0
    texts = (item.get("Value") for item in value if isinstance(item, dict))
    return sum(len(text) for text in texts if isinstance(text, str))


_CARRIES: Final = {"&&": ("left", "right"), "if-then-else": ("if", "then")}
"""Where Cedar's typechecker carries the capabilities an operand proves: (from, into)."""


def _guards(root: Any) -> dict[int, int]:
    """The `has` and `.hasTag` nodes within each list and object of `root` (by id; an upper
    bound on the capabilities it proves), counted children first (iteratively)."""
    order: list[Any] = []
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, list | dict):
            order.append(node)
            stack.extend(node if isinstance(node, list) else node.values())
    counts: dict[int, int] = {}
    for node in reversed(order):  # each after its children
        parts = node if isinstance(node, list) else node.values()
        own = isinstance(node, dict) and ("has" in node or "hasTag" in node)
        counts[id(node)] = own + sum(counts.get(id(part), 0) for part in parts)
    return counts


def _values(expression: Any, known: dict[int, int]) -> int:
    """How many record types comparing `expression` may walk: the non-literal values in its
    record and set literals (`{a: context, b: context}` is two contexts; review 22i, gates 2),
    else 1 (0 for a literal). Each literal's count is kept in `known` (by id: the policy's JSON
    form is alive meanwhile), so nested literals are read once; recursive only through literal
    brackets, at most MAX_CEDAR_NESTING deep."""
    if _literal(expression) or not isinstance(expression, dict):
        return 0 if _literal(expression) else 1
    inner = expression.get("Record", expression.get("Set"))
    if not isinstance(inner, dict | list):
        return 1
    if id(expression) not in known:
        parts = inner.values() if isinstance(inner, dict) else inner
        known[id(expression)] = sum(_values(part, known) for part in parts)
    return known[id(expression)]


def _literal(expression: Any) -> bool:
    return isinstance(expression, dict) and "Value" in expression


_SCANNED: Final = 10
"""The nodes an environment a policy is not checked in counts: the validator walks every
environment for every policy to find those it applies to (~1.1 µs each; 4,096 policies naming
`lease` in 4,096 environments took ~18 s; review 22j, gates 4)."""


def _charged(
    policy: Mapping[str, Any], made: Mapping[str, int], beneath: Mapping[str, int], every: int
) -> int:
    """The request environments Cedar checks `policy` (its JSON form) in: a policy naming its
    action (`action == A`) in that action's only (review 22i, gates 3), one naming actions with
    `in` (`in A`, `in [A, B]`) in theirs and their descendants' (review 22j, gates 2); `every`
    one otherwise, or when an action named is not found (declares no `appliesTo`, no members)."""
    scope = policy.get("action", {})
    op = scope.get("op") if isinstance(scope, dict) else None
    if op not in ("==", "in"):
        return every
    named = scope.get("entities", [scope.get("entity")]) if op == "in" else [scope.get("entity")]
    charged = 0
    for entity in named if isinstance(named, list) else [named]:
        uid = _uid(entity) if isinstance(entity, dict) else ""
        if uid not in made and (op == "==" or uid not in beneath):
            return every
        charged += made.get(uid, 0) + (beneath.get(uid, 0) if op == "in" else 0)
    return min(charged, every)


_TYPE_SITES: Final = frozenset({"Var", ".", "getTag"})
"""The JSON forms of an expression whose type is one of the schema's (a variable, an attribute,
`e.a` or `e["a"]`, a tag)."""
_CARRIERS: Final = frozenset({"Record", "Set", "if-then-else"})
"""The JSON forms of an expression whose type holds its operands' types."""
_NAMED_TYPE: Final = 16
"""The most characters of any other type a message names: a literal's (`String`, `Long`) or a
call's (`datetime`, `duration`), besides any name it holds (an entity literal's type)."""


def _quoted_text(policy: Mapping[str, Any], largest: int) -> int:
    """At most how many characters of types validating `policy` (its JSON form) in one request
    environment names in its messages (review 25, gates 1). cedarpy 4 names an expression's
    type in an error of the expression it is an operand of (`unexpected type: expected Long
    but saw T`, `the types A, B are not compatible`), counted twice; a variable, attribute or
    tag (`_TYPE_SITES`) has a type of the schema, at most `largest` characters printed
    (`largest_type_text`); any other expression at most `_NAMED_TYPE` and each name in its
    JSON form (a key, a string); and a record literal, set literal or `if` (`_CARRIERS`) holds
    the types of what it is built of, so what is within one is counted twice more for each
    of them around it (`{a: {b: context}} + 1` names the context's type once, in the outer
    record's; `[context, 1]` names it in its own error, and again if the set is an operand).
    A sound bound if each expression's type is named in at most two messages of its parent;
    the policy's other text a message carries (an attribute's name, an action's) is not
    counted (at most the text, per error: MAX_CEDAR_INPROCESS_WORK)."""
    total = 0
    stack: list[tuple[Any, int]] = [(policy.get("conditions", []), 2)]
    while stack:
        node, named = stack.pop()
        if isinstance(node, list):
            stack.extend((item, named) for item in node)
        elif isinstance(node, dict):
            for key, value in node.items():
                total += named * (largest if key in _TYPE_SITES else _NAMED_TYPE + len(key))
                stack.append((value, named + 2 * (key in _CARRIERS)))
        elif isinstance(node, str):
            total += named * len(node)
    return total


def _check_validation_cost(est: Mapping[str, Any], schema_text: str) -> tuple[int, int]:
    """Refuse (OVER_LIMIT) policies whose validation walks more than MAX_CEDAR_ACTION_PAIRS
    (request environment, action) pairs: each policy costs the environments times one plus
    the members of the action groups its `in`s name (review 22h, gates 6); or more than
    MAX_CEDAR_COMPARED_NODES type nodes: the environments times the largest record type times
    each comparison of two non-literal values (review 22h, gates 5); or more than
    MAX_CEDAR_CHECKED_NODES (environment, policy node) pairs: each policy's `_nodes` in each
    environment it is checked in (`_charged`), `_SCANNED` in each other (review 22i, gates 1;
    review 22j). The schema's request environments, and at most how many characters of types
    the validation errors may name (each policy's `_quoted_text` in each environment it is
    checked in; review 25, gates 1)."""
    hierarchy = action_hierarchy(schema_text)
    most = limits.MAX_CEDAR_ACTION_PAIRS
    if hierarchy is None:
        raise _refuse(PolicyFailure.OVER_LIMIT, "the schema's action hierarchy is too large")
    descendants, made, beneath = hierarchy
    environments = sum(made.values())
    record, largest = largest_types(schema_text)
    total = walked = checked = quoted = 0
    for policy in est.get("staticPolicies", {}).values():
        charged = _charged(policy, made, beneath, environments)
        quoted += charged * _quoted_text(policy, largest)
        checked += charged * _nodes(policy) + (environments - charged) * _SCANNED
        if checked > limits.MAX_CEDAR_CHECKED_NODES:
            raise _refuse(
                PolicyFailure.OVER_LIMIT,
                f"validating the policies typechecks more than {limits.MAX_CEDAR_CHECKED_NODES} "
                "(request environment, policy node) pairs (MAX_CEDAR_CHECKED_NODES: each "
                "policy's nodes in each of the schema's request environments): write fewer or "
                "smaller policies, or fewer principal and resource types in `appliesTo`",
            )
        walked += environments * record * _type_walks(policy)
        if walked > limits.MAX_CEDAR_COMPARED_NODES:
            raise _refuse(
                PolicyFailure.OVER_LIMIT,
                f"validating the policies compares more than {limits.MAX_CEDAR_COMPARED_NODES} "
                "type nodes (MAX_CEDAR_COMPARED_NODES: the schema's request environments x its "
                f"largest record type, {record} nodes, x the policies' comparisons of two "
                "non-literal values): compare attributes, not whole records",
            )
        total += environments * (1 + _group_members(policy, descendants))
        if total > most:
            raise _refuse(
                PolicyFailure.OVER_LIMIT,
                f"validating the policies checks more than {most} (request environment, "
                "action) pairs (MAX_CEDAR_ACTION_PAIRS: each policy, in each environment, each "
                "member of every action group an `in` names): name fewer or smaller groups",
            )
    return environments, quoted


def compile_policies(
    policies: str,
    schema: str,
    tools: Mapping[str, Any],
    services: Mapping[str, Iterable[str]] | None = None,
) -> CompiledPolicies:
    """Compose the schema, check the `@id`s, validate the policies and parse them into handles;
    PolicyError (with the validator's messages) when any step refuses (ArgumentError: of
    other types, review 54n, api 11)."""
    check_policy_inputs("compile_policies", policies, schema, tools, services)
    if len(policies) > limits.MAX_POLICY_TEXT or len(schema) > limits.MAX_POLICY_SCHEMA_TEXT:
        raise _refuse(PolicyFailure.OVER_LIMIT, "policy or schema text too long")
    if len(tools) > limits.MAX_TOOLS:
        raise _refuse(PolicyFailure.OVER_LIMIT, f"more than {limits.MAX_TOOLS} tools")
    for text, what in ((policies, "policy"), (schema, "schema")):
        refusal = cedar_refusal(text, schema=what == "schema")
        if refusal is not None:  # what would kill the process in cedarpy's parser
            raise _refuse(PolicyFailure.OVER_LIMIT, f"the {what} text {refusal}")
    compiled_tools = {name: compile_tool_schema(name, tools[name]) for name in sorted(tools)}
    checked_services = _check_services(services or {})
    schema_text = compose_schema(schema, compiled_tools, checked_services)
    try:
        schema_handle = cedarpy.Schema.from_str(schema_text)
    except ValueError as exc:
        raise _refuse(PolicyFailure.SCHEMA_INVALID, str(exc)) from None
    probe = cedarpy.validate_policies(_PROBE, schema_handle)
    if not probe.validation_passed:
        raise _refuse(
            PolicyFailure.SCHEMA_INVALID,
            "the schema fragment changes troth's fixed declarations",
            _kept(e.error for e in probe.errors),
        )
    try:
        est = json.loads(cedarpy.policies_to_json_str(policies))
    except ValueError as exc:
        raise _refuse(PolicyFailure.POLICIES_INVALID, f"does not parse: {exc}") from None
    except RecursionError:  # a chain of ~500 `||` or `&&` terms: write a set and `.contains`
        raise _refuse(
            PolicyFailure.POLICIES_INVALID,
            "a condition nests deeper than the policy engine reads (a chain of hundreds of "
            "operators): write a set and .contains() instead",
        ) from None
    ids = _policy_ids(est)
    environments, quoted = _check_validation_cost(est, schema_text)
    errors = _validate(policies, schema_text, schema_handle, environments, quoted)
    if errors is not None:
        messages = _kept(
            f"[{ids.get(policy, policy)}] "
            + _POSITIONAL_QUOTED.sub(lambda m: f"`{ids.get(m[1], m[1])}`", _cut(error))
            for policy, error in errors
        )
        raise _refuse(PolicyFailure.POLICIES_INVALID, "the policies do not validate", messages)
    sets, work = tool_sets(
        est.get("staticPolicies", {}), {tool_action(name): name for name in compiled_tools}
    )
    return CompiledPolicies(
        cedarpy.PolicySet.from_str(policies),  # the ids are positional, as the EST's keys
        schema_handle,
        schema_text,
        compiled_tools,
        checked_services,
        tuple(ids.values()),
        ids,
        len(policies),
        sets,
        work,
        arguments_named(est),
    )


def _validate(
    policies: str, schema_text: str, schema: cedarpy.Schema, environments: int, quoted: int
) -> list[tuple[str, str]] | None:
    """Cedar's validation errors of `policies` ((Cedar's policy id, message)), None when they
    validate: in this process when `environments` x the text's length² is within
    MAX_CEDAR_INPROCESS_WORK (review 22j, gates 5) and the types its errors may name, `quoted`
    characters, within MAX_CEDAR_INPROCESS_MESSAGES (review 25, gates 1); else in a child
    process."""
    work = max(environments, 1) * len(policies) ** 2
    if work <= limits.MAX_CEDAR_INPROCESS_WORK and quoted <= limits.MAX_CEDAR_INPROCESS_MESSAGES:
        result = cedarpy.validate_policies(policies, schema)
        if result.validation_passed:
            return None
        return [(e.policy_id, e.error) for e in result.errors]
    return _validate_in_child(policies, schema_text)


def _validate_in_child(policies: str, schema_text: str) -> list[tuple[str, str]] | None:
    """`_validate` in troth.gates.validate_child, a fresh interpreter (run by its file path,
    `-P`: nothing of the working directory is imported) limited to
    MAX_CEDAR_VALIDATION_CPU_SECONDS of CPU time and MAX_CEDAR_VALIDATION_BYTES of address
    space, waited for CEDAR_VALIDATION_TIMEOUT_SECONDS; OVER_LIMIT when it ends otherwise than
    with its outcome (fail closed), naming the limit its end shows: SIGXCPU, or SIGKILL after
    CPU_LIMIT_REACHED of its CPU time, the CPU time; SIGABRT or EXIT_MEMORY the address space;
    an output over MAX_CEDAR_VALIDATION_OUTPUT (EXIT_OUTPUT: its RLIMIT_FSIZE), that (review
    25, gates 2). PolicyNotChecked
    when it did not start, missed the wait, or was killed by SIGKILL before its CPU limit (the
    kernel's out-of-memory killer, or a kill from outside) or by a signal its limits do not
    send (`OWN_SIGNALS`: SIGTERM, SIGHUP, ... from outside): not a verdict on the policies
    (review 25, gates 3; review 55f, validation 1)."""
    from troth.gates import validate_child  # here: `python -m` it imports troth.gates first

    cpu, space = limits.MAX_CEDAR_VALIDATION_CPU_SECONDS, limits.MAX_CEDAR_VALIDATION_BYTES
    wall = limits.CEDAR_VALIDATION_TIMEOUT_SECONDS
    request = json.dumps({"schema": schema_text, "policies": policies}).encode()
    output = limits.MAX_CEDAR_VALIDATION_OUTPUT + 1  # one more: the parent tells it is over
    command = [sys.executable, "-P", validate_child.__file__, str(cpu), str(space), str(output)]
    try:
        child = _run_child(command, request, wall)
    except OSError as exc:
        raise PolicyNotChecked(
            PolicyFailure.OVER_LIMIT,
            f"the policy validator process did not start (or could not be waited for): {exc}",
        ) from None
    if child is None:  # killed at the wall-clock wait
        raise PolicyNotChecked(
            PolicyFailure.OVER_LIMIT,
            f"validating the policies took more than {wall} s (CEDAR_VALIDATION_TIMEOUT_SECONDS)",
        )
    code = child.code
    # SIGXCPU (the soft limit) as SIGKILL (the hard one) is the limit's only once it is reached
    # (before, SIGXCPU from outside was a verdict: review 55k, gates 1; review 56 lead, cedar 1)
    killed = code in (-signal.SIGKILL, -signal.SIGXCPU)
    reached = CPU_LIMIT_SIGNALLED if code == -signal.SIGXCPU else CPU_LIMIT_REACHED
    if killed and child.cpu >= cpu * reached:
        raise _refuse(
            PolicyFailure.OVER_LIMIT,
            f"validating the policies takes more than {cpu} s of CPU time "
            "(MAX_CEDAR_VALIDATION_CPU_SECONDS): Cedar spends time on each validation error "
            "in proportion to the whole policy text: fix the policies' validation errors",
        )
    if killed:  # not its CPU limit: the OOM killer ends a process by SIGKILL too
        raise PolicyNotChecked(
            PolicyFailure.OVER_LIMIT,
            f"the policy validator process was killed ({signal_name(-code)}) after "
            f"{child.cpu:.2f} s of CPU "
            f"time, under its limit of {cpu} s: by the kernel's out-of-memory killer (validating "
            "the policies needed more memory than the machine had free, within "
            f"MAX_CEDAR_VALIDATION_BYTES, {space} bytes) or from outside",
        )
    if code < 0 and -code not in OWN_SIGNALS:  # from outside (review 55f, validation 1)
        raise PolicyNotChecked(
            PolicyFailure.OVER_LIMIT,
            f"the policy validator process was killed by {signal_name(-code)}, a signal its "
            "limits do not send (from outside)",
        )
    if code in (-signal.SIGABRT, validate_child.EXIT_MEMORY):
        raise _refuse(
            PolicyFailure.OVER_LIMIT,
            f"validating the policies needs more than {space} bytes of memory "
            "(MAX_CEDAR_VALIDATION_BYTES)",
        )
    too_long = code == validate_child.EXIT_OUTPUT
    if too_long or (code == 0 and len(child.stdout) > limits.MAX_CEDAR_VALIDATION_OUTPUT):
        raise _refuse(
            PolicyFailure.OVER_LIMIT,
            f"the policies' validation messages take more than "
            f"{limits.MAX_CEDAR_VALIDATION_OUTPUT} bytes (MAX_CEDAR_VALIDATION_OUTPUT): a "
            "message names an operand's whole type: fix the policies' validation errors",
        )
    outcome = _child_outcome(child.stdout) if code == 0 else None
    if outcome is None:
        raise _refuse(
            PolicyFailure.OVER_LIMIT,
            f"the policy validator process failed (exit status {code}): "
            + child.stderr.decode(errors="replace")[-200:],
        )
    return outcome[1] if not outcome[0] else None


def _child_outcome(output: bytes) -> tuple[bool, list[tuple[str, str]]] | None:
    """The child's printed `{"passed": bool, "errors": [[id, message], ...]}`; None when the
    output is not that."""
    try:
        printed = json.loads(output)
    except ValueError:
        return None
    if not isinstance(printed, dict) or not isinstance(printed.get("passed"), bool):
        return None
    errors = printed.get("errors")
    if not isinstance(errors, list) or not all(
        isinstance(e, list) and len(e) == 2 and all(isinstance(p, str) for p in e) for e in errors
    ):
        return None
    return printed["passed"], [(policy, error) for policy, error in errors]
