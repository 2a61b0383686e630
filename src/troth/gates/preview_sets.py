"""Per tool, the bundle's policies that can apply to it (docs/policy.md, "Preview budgets";
review 55n, preview 2).

A preview partially evaluates one request per tool, action `Action::"invoke:<tool>"`. A policy
whose action scope cannot match that action is not satisfied and never evaluates its
conditions (Cedar checks the scope first), so it changes neither the answer nor its errors:
evaluating the tool against the others only is exact, and under a bundle of one permit per tool
evaluates one policy per tool where it evaluated all (each answer held every residual). A
scope is narrowed only when it names actions exactly: `action == Action::"a"` (the tool whose
action `a` is, or none), `action in Action::"invoke:t"` or a list of such (a tool's action has
no descendant: troth declares each in `Action::"invoke"` only, and Cedar refuses a second
declaration); any other (`action`, `action in Action::"invoke"` or another group, an entity
written another way) keeps the policy for every tool. The sets are built at compile time for
the tools they make smaller, at most MAX_PREVIEW_SET_POLICIES policies in all (the other tools
use the whole set).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import cedarpy
import orjson

from troth import limits

__all__ = ["ToolSets", "arguments_named", "preview_context", "tool_sets"]

ToolSets = Mapping[str, tuple[cedarpy.PolicySet, int]]
"""Per tool (those with a smaller set than the bundle's), its policies and how many."""


def tool_sets(statics: Mapping[str, Any], by_action: Mapping[str, str]) -> tuple[ToolSets, int]:
    """The smaller per-tool sets of the bundle's policies `statics` (Cedar's JSON form, by
    Cedar id) for the tools `by_action` names (each tool's action id -> the tool), and the
    policies a preview of every tool evaluates in all with them."""
    everywhere: list[str] = []
    scoped: dict[str, list[str]] = {name: [] for name in by_action.values()}
    for cedar_id, policy in statics.items():
        targets = _tools_of(policy.get("action") if type(policy) is dict else None, by_action)
        if targets is None:
            everywhere.append(cedar_id)
        else:
            for name in targets:
                scoped[name].append(cedar_id)
    total = len(statics)
    sets: dict[str, tuple[cedarpy.PolicySet, int]] = {}
    kept = work = 0
    for name in sorted(scoped):
        ids = everywhere + scoped[name]
        if len(ids) < total and kept + len(ids) <= limits.MAX_PREVIEW_SET_POLICIES:
            est = {
                "staticPolicies": {i: statics[i] for i in ids},
                "templates": {},
                "templateLinks": [],
            }
            sets[name] = (cedarpy.PolicySet.from_json_str(orjson.dumps(est).decode()), len(ids))
            kept += len(ids)
            work += len(ids)
        else:
            work += total
    return sets, work


def _tools_of(scope: Any, by_action: Mapping[str, str]) -> frozenset[str] | None:
    """The tools a policy of action `scope` can apply to; None: any (not narrowed)."""
    if type(scope) is not dict:
        return None
    if scope.get("op") == "==":
        action = _action(scope.get("entity"))
        if action is None:
            return None
        tool = by_action.get(action)
        return frozenset() if tool is None else frozenset({tool})
    if scope.get("op") != "in":
        return None
    entities = scope.get("entities") if "entities" in scope else [scope.get("entity")]
    if type(entities) is not list:
        return None
    found = set()
    for entity in entities:
        action = _action(entity)
        if action is None or action not in by_action:  # a group: `invoke`, or another
            return None
        found.add(by_action[action])
    return frozenset(found)


def _action(entity: Any) -> str | None:
    """The id of `entity` written as `{"type": "Action", "id": ...}`; None otherwise."""
    if type(entity) is not dict or entity.keys() != {"type", "id"}:
        return None
    if entity["type"] != "Action" or type(entity["id"]) is not str:
        return None
    return entity["id"]


def preview_context(canonical: str) -> str | None:
    """The context a preview of a tool of input schema `canonical` (its canonical JSON) is
    evaluated with: its arguments a record of every property, each value unknown, and `now`
    unknown (a preview is cached per chain, not per time), when every property is present in
    each call the tool is judged for (required, or filled in from its `default`); None (the
    context unknown whole) when one may be left out, whose absence an unknown cannot stand for.
    So a condition that reads an argument the tool does not have (a caveat written for another
    tool: `context.args.amount <= 100`), which errors at every call of it, errors in its preview
    too and hides it (docs/policy.md, "The tool gate")."""
    schema = orjson.loads(canonical)
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    if any(name not in required and "default" not in sub for name, sub in properties.items()):
        return None
    args = {name: _unknown(f"args.{name}") for name in properties}
    return orjson.dumps({"args": args, "now": _unknown("now")}).decode()


def _unknown(name: str) -> dict[str, Any]:
    """Cedar's JSON for a value a partial evaluation takes as unknown, named `name`."""
    return {"__extn": {"fn": "unknown", "arg": name}}


def arguments_named(est: Mapping[str, Any]) -> bool:
    """Whether the policies of Cedar JSON `est` read the context only by naming what they read
    (`context.now`, `context.args.amount`, `context.args has amount`), never the context or its
    arguments as a whole value (`context.args == {...}`, `[context.args].contains(...)`).
    `preview_context` is used only for such policies: with the arguments a record of unknowns,
    each whole use is written out in the preview's answer with every property's unknown, and a
    chain's caveats of `context.args == context.args` repeated made a preview ~40 times the
    work its member was charged (at 64 properties a tool, ~27 s at MAX_TOOLS under
    MAX_CHAIN_CAVEAT_TEXT, the GIL held; review 65m, gates 1). Read as a whole, the context
    stays unknown whole, as before 65g (sound: a tool is only shown more). A record literal's
    fields are read as expressions whatever their names (one named `.` was taken for the
    operator and its expression skipped: review 65t, gates 1)."""
    stack: list[tuple[Any, bool]] = [(est, False)]  # (node, whether a `.` or `has` reads it)
    while stack:
        node, read = stack.pop()
        if type(node) is list:
            stack.extend((item, False) for item in node)
            continue
        if type(node) is not dict:
            continue
        if node.get("Var") == "context" and not read:
            return False
        fields = node.get("Record")
        if type(fields) is dict and len(node) == 1:  # its fields' names are anything, "." too
            stack.extend((value, False) for value in fields.values())
            continue
        for op in (".", "has"):
            inner = node.get(op)
            if type(inner) is dict and len(node) == 1:
                left = inner.get("left")
                whole_args = op == "." and left == _CONTEXT and inner.get("attr") == "args"
                if whole_args and not read:
                    return False
                stack.append((left, True))
                break
        else:
            stack.extend((value, False) for value in node.values())
    return True


_CONTEXT: Final = {"Var": "context"}
