"""Tool input schemas: the JSON Schema subset a gate types exactly in Cedar (docs/policy.md,
"Tool arguments").

    JSON Schema                         Cedar (inside `context.args`)
    {"type": "string"}                  __cedar::String
    {"type": "integer"}                 __cedar::Long        (a JSON integer within i64)
    {"type": "boolean"}                 __cedar::Bool
    {"type": "array", "items": S}       Set<S>               (order is lost; a repeated item
                                                             is denied: review 51f, gates 1)
    {"type": "object", "properties":    { "name": S, "opt"?: S }   (a closed record: names in
     {...}, "required": [...]}                                     `required` are mandatory)
    "enum" / "const" on string, integer: the type above; troth checks membership itself
    "default" on a property             filled in before the call is judged (below)

Integers are held to I-JSON (RFC 7493 §2.2): within ±(2^53 - 1), so that every upstream reads
the number Cedar judged (a parser of JSON numbers as doubles reads 2^53 + 1 as 2^53).

An argument the caller omits is judged with its `default` (nested records too): the tool or
MCP upstream runs with that value, so a policy on it must see it. `default` is therefore part
of a schema's shape (a gate's tool and the bundle must agree on it) and must conform to its
property's schema. Filling stops, refused, once the defaults would add more than
MAX_TOOL_ARGUMENTS_BYTES (review 49d, gates 1).

Anything else is refused when the schema is compiled (at bundle creation and verification):
`number` (use integer units or a string), `null`, type lists, `$ref`, `anyOf`/`oneOf`/`allOf`,
`additionalProperties` other than false, `patternProperties`, and every validation keyword
(`minimum`, `maxLength`, `pattern`, `format`, ...) a policy author might mistake for a check:
write such limits as policies. Annotations (`title`, `description`, `examples`, `$comment`,
and `$schema` at the top) are allowed and ignored.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import rfc8785

from troth import limits
from troth.encoding.ijson import MAX_SAFE_INTEGER
from troth.errors import PolicyError, PolicyFailure

__all__ = [
    "LEASE_PARAMETER",
    "NAME",
    "NotJson",
    "ToolSchema",
    "argument_values",
    "canonical_json",
    "check_depth",
    "check_name",
    "compile_tool_schema",
    "own_arguments",
    "plain_arguments",
    "schema_from_function",
    "schema_shape",
    "within_value_limit",
]

NAME: Final = re.compile(rf"[A-Za-z0-9_.-]{{1,{limits.MAX_TOOL_NAME}}}")
"""Tool, service, method and secret names: MCP's tool-name charset (SEP-986). Names appear in
Cedar entity uids (`Tool::"<name>"`) only after this check, so they can never close a quote."""
_PROPERTY: Final = re.compile(r"(?!__)[A-Za-z_][A-Za-z0-9_-]{0,63}")
"""Argument names: never `__...` (Cedar's JSON escapes `__entity`, `__extn`)."""
_ANNOTATIONS: Final = frozenset({"title", "description", "examples", "$comment"})
_SCALARS: Final = {"string": "__cedar::String", "integer": "__cedar::Long"}
LEASE_PARAMETER: Final = "lease"
"""A keyword-only parameter of this name receives the call's leased secret (never an argument)."""

Check = Callable[[Any], bool]
Fill = Callable[[dict[str, Any]], dict[str, Any]]


def _refuse(detail: str) -> PolicyError:
    return PolicyError(PolicyFailure.SCHEMA_INVALID, detail)


def check_name(name: object, what: str = "tool") -> str:
    """Return `name` if it is a valid tool/service/method/secret name, else raise PolicyError."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise _refuse(f"{what} name {name!r}: use 1-{limits.MAX_TOOL_NAME} of A-Z a-z 0-9 _ . -")
    return name


def canonical_json(value: Any) -> str:
    """RFC 8785 canonical JSON text of `value` (PolicyError if it is not JSON)."""
    try:
        return rfc8785.dumps(value).decode()
    except (rfc8785.CanonicalizationError, UnicodeError, TypeError, ValueError) as exc:
        raise _refuse(f"not canonicalisable JSON: {exc}") from None


def check_depth(schema: Any, what: str = "schema") -> None:
    """Refuse `schema` when its JSON arrays and objects nest deeper than
    MAX_UPSTREAM_SCHEMA_DEPTH, annotations included, before anything walks it recursively
    (review 49o, mcp 1: an upstream's tool nested past the recursion limit was a RecursionError
    out of the MCP gate's tools/list). Iterative: its own depth is the limit's."""
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > limits.MAX_UPSTREAM_SCHEMA_DEPTH:
            raise _refuse(f"{what} nested deeper than {limits.MAX_UPSTREAM_SCHEMA_DEPTH}")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children)


def _without_annotations(node: Any) -> Any:
    """A schema node without its annotations, nested schemas too (property names and enum
    values are kept as they are)."""
    if not isinstance(node, dict):
        return node
    bare = {k: v for k, v in node.items() if k not in _ANNOTATIONS and k != "$schema"}
    if isinstance(bare.get("properties"), dict):
        bare["properties"] = {n: _without_annotations(s) for n, s in bare["properties"].items()}
    if "items" in bare:
        bare["items"] = _without_annotations(bare["items"])
    return bare


def schema_shape(schema: Any) -> str:
    """What two input schemas must share to accept the same arguments: the canonical JSON of
    `schema` without its annotations (`title`, `description`, ...), which typing ignores
    (`default` is kept: omitted arguments are judged with it). A gate compares its tool's
    shape with the bundle's (PolicyError if not JSON, or nested deeper than
    MAX_UPSTREAM_SCHEMA_DEPTH)."""
    check_depth(schema)
    return canonical_json(_without_annotations(schema))


@dataclass(frozen=True, slots=True)
class ToolSchema:
    """A tool's input schema, compiled: its canonical JSON, its shape (`schema_shape`), the
    Cedar record type of its arguments, a check of its enums and integer ranges (None when it
    has none), and what fills in omitted arguments' defaults (None when it has none)."""

    name: str
    canonical: str
    cedar_args: str
    check: Check | None = field(default=None, compare=False)
    shape: str = ""
    fill: Fill | None = field(default=None, compare=False)
    distinct: Check | None = field(default=None, compare=False)
    """Whether no array of the arguments repeats an item (None: the schema has no array)."""


def compile_tool_schema(name: str, schema: Any) -> ToolSchema:
    """Compile a tool's JSON input schema (an object schema), or raise PolicyError naming the
    first unsupported feature and where it is."""
    check_name(name)
    check_depth(schema, f"tool {name}: schema")
    canonical = canonical_json(schema)
    if len(canonical.encode()) > limits.MAX_TOOL_SCHEMA_BYTES:
        raise _refuse(f"tool {name}: schema over {limits.MAX_TOOL_SCHEMA_BYTES} bytes")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise _refuse(f"tool {name}: the input schema must be an object schema")
    top = {k: v for k, v in schema.items() if k != "$schema"}
    cedar, check = _node(top, f"{name}:", 1)
    shape = schema_shape(schema)
    return ToolSchema(name, canonical, cedar, check, shape, _filler(top), _distinct(top))


def _node(node: Any, path: str, depth: int) -> tuple[str, Check | None]:
    if depth > limits.MAX_TOOL_SCHEMA_DEPTH:
        raise _refuse(f"{path} nested deeper than {limits.MAX_TOOL_SCHEMA_DEPTH}")
    if not isinstance(node, dict):
        raise _refuse(f"{path} is not a schema object")
    kind = node.get("type")
    if kind is not None and not isinstance(kind, str):
        raise _refuse(f"{path} type {kind!r} is not supported (one type per schema)")
    if kind is None and ("enum" in node or "const" in node):
        values = node["enum"] if "enum" in node else [node["const"]]
        kind = "string" if values and all(type(v) is str for v in values) else "integer"
    allowed = {"type", *_ANNOTATIONS}
    if depth > 1:  # a property or an item: the top is the arguments record itself
        allowed.add("default")
    if kind in _SCALARS:
        allowed |= {"enum", "const"}
    elif kind == "array":
        allowed.add("items")
    elif kind == "object":
        allowed |= {"properties", "required", "additionalProperties"}
    elif kind is None:
        raise _refuse(f"{path} has no type (a schema accepting anything is not supported)")
    elif kind != "boolean":
        hint = " (use integer units or a string)" if kind == "number" else ""
        raise _refuse(f"{path} type {kind!r} is not supported{hint}")
    extra = sorted(set(node) - allowed)
    if extra:
        raise _refuse(f"{path} keyword {extra[0]!r} is not supported (write limits as policies)")
    if kind == "boolean":
        cedar, check = "__cedar::Bool", None
    elif kind in _SCALARS:
        cedar, check = _SCALARS[kind], _scalar_check(node, kind, path)
    else:
        cedar, check = _composite(node, kind, path, depth)
    if "default" in node and not _conforms(node["default"], kind, check):
        raise _refuse(f"{path} default {node['default']!r} does not conform to its schema")
    return cedar, check


def _composite(node: dict[str, Any], kind: str, path: str, depth: int) -> tuple[str, Check | None]:
    if kind == "array":
        if "items" not in node:
            raise _refuse(f"{path} an array needs `items`")
        item, item_check = _node(node["items"], f"{path}[]", depth + 1)
        if item_check is None:
            return f"Set<{item}>", None
        return f"Set<{item}>", lambda v: type(v) is list and all(item_check(x) for x in v)
    return _record(node, path, depth)


def _safe_integer(value: Any) -> bool:
    """Whether `value` is no integer past I-JSON's range (other types are Cedar's to judge).
    An `int` subclass is an integer too (JSON encodes its value: review 41d, gates 1), compared
    by that value, not by its own operators (review 43b, gates 1: ones that always said "in
    range" passed 2^53 + 1)."""
    if type(value) is int:  # hot path: an exact int is its own value
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    if not isinstance(value, int):
        return True
    number = int.__int__(value)  # the value JSON encodes (`int.__repr__`), exactly an int
    return -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER


def _scalar_check(node: dict[str, Any], kind: str, path: str) -> Check | None:
    if "enum" not in node and "const" not in node:
        return _safe_integer if kind == "integer" else None
    if "enum" in node and "const" in node:
        raise _refuse(f"{path} has both enum and const")
    values = node["enum"] if "enum" in node else [node["const"]]
    py_type = str if kind == "string" else int
    if not isinstance(values, list) or not values or any(type(v) is not py_type for v in values):
        raise _refuse(f"{path} enum values must be a non-empty list of {kind}s")
    if not all(_safe_integer(v) for v in values):
        raise _refuse(f"{path} enum values must be within ±(2^53 - 1)")
    members = frozenset(values)
    return lambda v: type(v) is py_type and v in members


_TYPES: Final = {"boolean": bool, "string": str, "integer": int, "array": list, "object": dict}


def _conforms(value: Any, kind: str, check: Check | None) -> bool:
    """Whether a `default` has its schema's type and passes its checks (a record's closed
    fields and nested types are Cedar's: a default is judged with the arguments)."""
    return type(value) is _TYPES[kind] and (check is None or check(value))


def _filler(node: dict[str, Any]) -> Fill | None:
    """What fills a record's omitted properties with their defaults, nested records (and
    records in arrays) too; None when the schema has no default. It refuses (PolicyError
    OVER_LIMIT) arguments its defaults would grow by more than MAX_TOOL_ARGUMENTS_BYTES of
    JSON, counted across the whole call before they are built (review 49d, gates 1: each `{}`
    of an array of records took a 4,000-character default, so 30 KB of arguments made 86 MB
    before they were refused for their size)."""
    record = _record_filler(node)
    if record is None:
        return None

    def fill(args: dict[str, Any]) -> dict[str, Any]:
        filled: dict[str, Any] = record(args, [limits.MAX_TOOL_ARGUMENTS_BYTES])
        return filled

    return fill


_Inner = Callable[[Any, list[int]], Any]
"""A nested filler: the value filled, and the bytes the defaults may still add (spent)."""


def _json_size(name: str, value: Any) -> int:
    """The fewest bytes `"name":value` adds to the arguments' JSON as the engine encodes it
    (compact, ASCII)."""
    return len(name) + 3 + len(json.dumps(value, separators=(",", ":")))


def _record_filler(node: dict[str, Any]) -> _Inner | None:
    properties: dict[str, Any] = node.get("properties", {})
    defaults = {
        name: (sub["default"], _json_size(name, sub["default"]))
        for name, sub in properties.items()
        if "default" in sub
    }
    nested: dict[str, _Inner] = {}
    for name, sub in properties.items():
        inner = _value_filler(sub)
        if inner is not None:
            nested[name] = inner
    if not defaults and not nested:
        return None

    def fill(args: dict[str, Any], budget: list[int]) -> dict[str, Any]:
        filled = dict(args)
        for name, (value, size) in defaults.items():
            if name not in filled:
                budget[0] -= size
                if budget[0] < 0:  # the call is over the limit: refused before it is built
                    raise PolicyError(
                        PolicyFailure.OVER_LIMIT,
                        "the arguments with their defaults are over MAX_TOOL_ARGUMENTS_BYTES",
                    )
                filled[name] = copy.deepcopy(value)
        for name, inner in nested.items():
            if name in filled:
                filled[name] = inner(filled[name], budget)
        return filled

    return fill


def _value_filler(node: dict[str, Any]) -> _Inner | None:
    kind = node.get("type")
    if kind == "object":
        record = _record_filler(node)
        if record is None:
            return None
        return lambda v, budget: record(v, budget) if type(v) is dict else v
    if kind == "array":
        item = _value_filler(node["items"])
        if item is None:
            return None
        return lambda v, budget: [item(x, budget) for x in v] if type(v) is list else v
    return None


_KEY: Final = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def _cedar_key(value: Any) -> str:
    """`value` (plain JSON) as text equal for two values Cedar holds equal: an array is a set
    (its items' texts sorted, each once), a record's fields are sorted by name."""
    if isinstance(value, list | tuple):  # what JSON writes as an array (a direct caller's)
        return "[" + ",".join(sorted({_cedar_key(item) for item in value})) + "]"
    if isinstance(value, dict):
        fields = (f"{_KEY.encode(k)}:{_cedar_key(value[k])}" for k in sorted(value))
        return "{" + ",".join(fields) + "}"
    return _KEY.encode(value)


def _distinct(node: dict[str, Any]) -> Check | None:
    """What checks that no array of a value of schema `node` (compiled: its type is known)
    repeats an item, nested arrays and records in arrays included: a Cedar `Set` keeps one of
    each (as Cedar compares them: `_cedar_key`), so a repeated item is one Cedar never judged
    and the tool acts on again (review 51f, gates 1; docs/policy.md, "Tool arguments"). None
    when `node` holds no array. A value not of its type is left to Cedar (True); one that
    cannot be compared (not JSON, nested past the recursion limit) fails."""
    kind = node.get("type")
    if kind == "array":
        item = _distinct(node["items"])

        def array(value: Any) -> bool:
            if not isinstance(value, list | tuple):  # a tuple: a direct caller's array
                return True
            if len(value) > 1:
                try:
                    if len({_cedar_key(x) for x in value}) != len(value):
                        return False
                except (TypeError, ValueError, RecursionError):
                    return False
            return item is None or all(item(x) for x in value)

        return array
    if kind != "object":
        return None
    properties: dict[str, Any] = node.get("properties", {})
    inner = {name: c for name, sub in properties.items() if (c := _distinct(sub)) is not None}
    if not inner:
        return None
    return lambda v: not isinstance(v, dict) or all(c(v[k]) for k, c in inner.items() if k in v)


def _record(node: dict[str, Any], path: str, depth: int) -> tuple[str, Check | None]:
    if node.get("additionalProperties", False) is not False:
        raise _refuse(f"{path} additionalProperties must be false or absent (records are closed)")
    properties = node.get("properties", {})
    required = node.get("required", [])
    if not isinstance(properties, dict) or len(properties) > limits.MAX_TOOL_PROPERTIES:
        raise _refuse(f"{path} properties: an object of at most {limits.MAX_TOOL_PROPERTIES}")
    if not isinstance(required, list) or any(type(r) is not str for r in required):
        # a list or an object there raised TypeError at every verifier (review 54b, decoders 5)
        raise _refuse(f"{path} required is a list of property names")
    if any(r not in properties for r in required):
        raise _refuse(f"{path} required names a property that is not declared")
    fields: list[str] = []
    checks: list[tuple[str, Check]] = []
    for name in sorted(properties):
        if not _PROPERTY.fullmatch(name):
            raise _refuse(f"{path} property {name!r}: use A-Z a-z 0-9 _ - (not starting __)")
        cedar, check = _node(properties[name], f"{path}{name}.", depth + 1)
        fields.append(f'"{name}"{"" if name in required else "?"}: {cedar}')
        if check is not None:
            checks.append((name, check))
    text = "{ " + ", ".join(fields) + " }" if fields else "{}"
    if not checks:
        return text, None

    def record(value: Any) -> bool:
        if type(value) is not dict:
            return False
        for name, check in checks:  # noqa: SIM110  # not all() over a generator (64g)
            if name in value and not check(value[name]):
                return False
        return True

    return text, record


def within_value_limit(args: dict[str, Any]) -> bool:
    """Whether the arguments `args` hold at most MAX_TOOL_ARGUMENT_VALUES values (each item of
    an object or array, at any depth; a tuple is a direct caller's array): what a call costs
    Cedar, ~3-7 us a value with the GIL held, whatever their bytes (review 69n, gates 2)."""
    return argument_values(args) <= limits.MAX_TOOL_ARGUMENT_VALUES


def argument_values(args: dict[str, Any]) -> int:
    """How many values the arguments `args` hold (as `within_value_limit` counts them), up to
    one past MAX_TOOL_ARGUMENT_VALUES: counted item by item (no container's own `len`),
    iteratively, and given up past the limit, so a circular value or one nested past the
    recursion limit ends it too. What a member's MCP budget charges a call for its values
    (review 69s, wave2 2)."""
    most = limits.MAX_TOOL_ARGUMENT_VALUES
    count = 0
    pending: list[Any] = [args]
    while pending:
        value = pending.pop()
        for item in value.values() if isinstance(value, dict) else value:
            count += 1
            if count > most:
                return count
            if isinstance(item, dict | list | tuple):
                pending.append(item)
    return count


_SCALAR_TYPES: Final = frozenset({str, int, float, bool, type(None)})
_STR: Final = frozenset({str})
_PLAIN: Final = json.JSONEncoder(allow_nan=False)


@dataclass(frozen=True, slots=True)
class NotJson:
    """What a gate judges and records in place of arguments it could not copy as plain JSON
    (`plain_arguments`): no mapping, so the engine denies it (ARGUMENTS), and a record holds
    the name of the arguments' `type`, never the caller's objects (review 74k, records 2)."""

    type: str


def plain_arguments(arguments: Any) -> Any:
    """The gate's own plain JSON copy of a call's `arguments`, read once, before the call is
    judged: what Cedar judges, the record holds and the tool runs with (through
    `own_arguments`), never the caller's objects (a `str`, `int`, `dict` or `list` subclass
    becomes its plain value; a nested list the caller keeps cannot change what runs: review
    34f, gates 3; review 74k, records 1). Encoded and decoded once, but for an object of exact
    `str` keys and exact scalar values (ASCII strings), copied. Arguments that do not encode
    (not JSON, NaN, nested past the encoder) or fail their reading are `NotJson` (denied:
    review 74k, records 2: a mapping failing its first reading was judged by its second and
    run with its third). Arguments that are JSON but no object (a list, a string) are copied
    too: the engine denies them."""
    if (
        type(arguments) is dict
        and _STR.issuperset(map(type, arguments))
        and _SCALAR_TYPES.issuperset(map(type, arguments.values()))
        and all(type(v) is not str or v.isascii() for v in arguments.values())
    ):  # what JSON decodes to itself (a surrogate pair of two code points is one character)
        return dict(arguments)
    try:
        if type(arguments) is not dict and isinstance(arguments, Mapping):
            arguments = dict(arguments)  # read once, as a dict (review 31b, gates 1)
        return json.loads(_PLAIN.encode(arguments))
    except Exception:  # not JSON, nested past the encoder, or a caller's object that raised
        return NotJson(type(arguments).__name__)


def own_arguments(plain: dict[str, Any]) -> dict[str, Any]:
    """A copy of the plain JSON arguments `plain` (those judged, which the decision's record
    holds) for what runs the tool (a tool gate's function or runner, an MCP upstream): its own
    lists and objects, decoded again, so nothing it changes in place reaches the record (review
    74f, gates 1: a tool appending to its list argument changed the record of what Cedar
    judged). Arguments of scalars only, which cannot change, are copied at their top level."""
    if _SCALAR_TYPES.issuperset(map(type, plain.values())):
        return dict(plain)
    copied: dict[str, Any] = json.loads(_KEY.encode(plain))
    return copied


# -- from a typed Python function ------------------------------------------------------------


def schema_from_function(func: Callable[..., Any]) -> dict[str, Any]:
    """The JSON input schema of a typed function: parameters annotated int, str, bool,
    Literal[...] (of str or int), list[...] of those, or `T | None = None` (optional). A
    parameter with a default is optional; a keyword-only `lease` parameter is the lease slot.
    Raises PolicyError for anything else (float included: see the module docstring)."""
    try:
        hints = typing.get_type_hints(func)
    except (NameError, TypeError) as exc:
        raise _refuse(
            f"{getattr(func, '__name__', func)}: unresolvable annotations: {exc}"
        ) from None
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(func).parameters.values():
        if param.kind is param.KEYWORD_ONLY and param.name == LEASE_PARAMETER:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise _refuse(f"parameter {param.name}: only named parameters become arguments")
        if param.name not in hints:
            raise _refuse(f"parameter {param.name} has no type annotation")
        hint, optional = _strip_none(hints[param.name])
        properties[param.name] = _hint_schema(hint, param.name)
        if param.default is param.empty and not optional:
            required.append(param.name)
        elif param.default is not param.empty and param.default is not None:
            properties[param.name]["default"] = param.default  # judged when omitted
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _strip_none(hint: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _hint_schema(hint: Any, where: str) -> dict[str, Any]:
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is str:
        return {"type": "string"}
    origin = typing.get_origin(hint)
    if origin is Literal:
        values = list(typing.get_args(hint))
        if all(type(v) is str for v in values):
            return {"type": "string", "enum": values}
        if all(type(v) is int for v in values):
            return {"type": "integer", "enum": values}
    if origin in (list, set, frozenset) and len(typing.get_args(hint)) == 1:
        return {"type": "array", "items": _hint_schema(typing.get_args(hint)[0], where)}
    raise _refuse(
        f"parameter {where}: type {hint!r} is not supported (int, str, bool, Literal, list)"
    )
