"""The tool gate for any Python agent (docs/policy.md, "The tool gate").

Gate 1, `available_tools(caller)`: only the tools the caller could be permitted to call
(partial evaluation with the arguments unknown; a tool no permit can ever allow is never
listed) and whose declared schema is the bundle's. Gate 2, `invoke(caller, tool, args)`: every
call is decided with the caller's current credential and the current feed, a hidden tool called
by name included (denied exactly as a name the bundle does not declare, whatever the arguments;
its record keeps the real decision: review 47h, gates 1), then run with the plain JSON values
judged (the arguments encoded and decoded once: never the caller's own objects, review 34f,
gates 3; ones that cannot be, denied: review 74k, records 2), each run with its own copy of
them, taken before anyone is handed the record (changed in place, the record stays as judged:
review 74f, gates 1; a recorder changing the record leaves what runs as judged: review 74k,
records 4); a denial carries a reason a model can read. An allowed call gets what the
`LeaseProvider` attaches (gate 3, issue 12) as its `lease` parameter; a provider that cannot
lease the call's secret raises `LeaseDenied`, which denies the call. The call's decision is
recorded before its lease is asked for (a lease step links to it); a refused lease, or a
provider that fails (its error propagates), records the call's denial after it
(`DecisionPoint.refuse`), so no call that did not run is left recorded as only allowed.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from troth.clock import Clock, SystemClock
from troth.errors import PolicyError
from troth.gates.engine import Outcome, PolicyDecision, ToolCall
from troth.gates.point import Caller, DecisionPoint, LeaseDenied, LeaseProvider, NoLeases
from troth.gates.toolschema import (
    LEASE_PARAMETER,
    Fill,
    check_name,
    compile_tool_schema,
    own_arguments,
    plain_arguments,
    schema_from_function,
)

__all__ = ["Tool", "ToolGate", "ToolResult"]


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool: its name, JSON input schema, description, and the function that runs it
    (None: the gate decides, something else runs it)."""

    name: str
    input_schema: Mapping[str, Any]
    run: Callable[..., Any] | None = field(default=None, compare=False)
    description: str = ""
    canonical: str = field(init=False, repr=False)
    shape: str = field(init=False, repr=False)
    takes_lease: bool = field(init=False, repr=False)
    fill: Fill | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = compile_tool_schema(self.name, self.input_schema)  # refuses the untypable
        object.__setattr__(self, "canonical", compiled.canonical)
        object.__setattr__(self, "shape", compiled.shape)
        object.__setattr__(self, "fill", compiled.fill)
        parameters = {} if self.run is None else inspect.signature(self.run).parameters
        lease = parameters.get(LEASE_PARAMETER)
        takes_lease = lease is not None and lease.kind is lease.KEYWORD_ONLY
        if takes_lease and LEASE_PARAMETER in self.input_schema.get("properties", {}):
            raise ValueError(f"tool {self.name}: `{LEASE_PARAMETER}` is the lease, not an argument")
        properties = self.input_schema.get("properties", {})
        for parameter in parameters.values():  # what is judged must be what runs
            if parameter.kind is parameter.POSITIONAL_ONLY and parameter.name in properties:
                # run(**arguments) hands its argument to **kwargs, or fails: it keeps its own
                # default, which no policy judged (review 49d, gates 2)
                raise ValueError(
                    f"tool {self.name}: parameter {parameter.name} is positional-only: the "
                    "argument of that name would not reach it"
                )
            default = parameter.default
            if default is parameter.empty or default is None or parameter.name not in properties:
                continue
            stated = properties[parameter.name]
            if "default" not in stated or stated["default"] != default:
                raise ValueError(
                    f"tool {self.name}: parameter {parameter.name} defaults to {default!r}, its "
                    f"schema to {stated.get('default', 'nothing')!r}: an omitted argument is "
                    "judged with the schema's default, so they must agree"
                )
        object.__setattr__(self, "takes_lease", takes_lease)

    @classmethod
    def from_function(
        cls, func: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> Tool:
        """A tool from a typed function: its name (default the function's), the schema of its
        parameters (troth.gates.toolschema.schema_from_function) and its docstring's first
        line."""
        doc = inspect.getdoc(func) or ""
        return cls(
            check_name(name or func.__name__),
            schema_from_function(func),
            func,
            description if description is not None else doc.partition("\n")[0],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": dict(self.input_schema),
        }


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What `invoke` returns: the decision, the tool's return value when it ran, and, for an
    allowed call of a tool declared without a function (`run` None), the arguments as judged
    (plain JSON values, their schema's defaults filled in), which whatever runs the tool must
    run it with (review 49d, gates 3: an omitted argument was judged with the schema's default,
    and the runner, told nothing of it, used its own)."""

    decision: PolicyDecision
    value: Any = None
    arguments: Mapping[str, Any] | None = None

    @property
    def allowed(self) -> bool:
        return self.decision.allowed


class ToolGate:
    """Gates a set of tools behind a DecisionPoint (module docstring)."""

    def __init__(
        self,
        point: DecisionPoint,
        tools: Iterable[Tool],
        *,
        clock: Clock | None = None,
        leases: LeaseProvider | None = None,
        server: str | None = None,
    ) -> None:
        """`server`: the name of the server these tools are of (a tool name's charset;
        PolicyError otherwise), each decided as `Tool::"<name>"` in `Server::"<server>"`, as an
        MCP gate decides its upstream's (review 53c, gates 1); None: in no server."""
        self.point = point
        self.server = None if server is None else check_name(server, "server")
        self.clock: Clock = clock or SystemClock()
        self.leases: LeaseProvider = leases or NoLeases()
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"tool {tool.name} declared twice")
            self._tools[tool.name] = tool
        self._declared = {name: tool.shape for name, tool in self._tools.items()}

    def available_tools(self, caller: Caller) -> list[Tool]:
        """The declared tools `caller` could be permitted to call now, in declaration order."""
        visible = self.point.visible_tools(
            caller, now=self.clock.now(), declared=self._declared, server=self.server
        )
        return [tool for tool in self._tools.values() if tool.name in visible]

    def invoke(self, caller: Caller, tool: str, arguments: Mapping[str, Any]) -> ToolResult:
        """Decide the call now, then run the tool if it is allowed (its exceptions propagate)."""
        # a name that is not exactly a `str` (a model's JSON array or object: unhashable) is
        # looked up as none: denied as undeclared, never a TypeError (review 67g, gates 1)
        declared = self._tools.get(tool) if type(tool) is str else None
        if type(arguments) is not dict and isinstance(arguments, Mapping):
            # read once: the tool runs with the copy judged and recorded, never a second read
            # of the caller's Mapping (review 31b, gates 1; docs/policy.md, "The tool gate")
            arguments = dict(arguments)
        plain: Any = plain_arguments(arguments)  # NotJson: denied (review 74k, records 2)
        if declared is not None and declared.fill is not None and type(plain) is dict:
            # judged, recorded and run as filled (a copy); what is no JSON object is denied
            # unfilled, not read as one (review 47h, gates 2: a list was taken for pairs)
            with contextlib.suppress(PolicyError):  # over the limit filled: the engine denies
                plain = declared.fill(plain)  # it unfilled (review 49d, gates 1)
        # what runs gets its own copy (74f, gates 1), before a recorder or a lease provider is
        # handed the record, whose values they may change (review 74k, records 4)
        own = own_arguments(plain) if declared is not None and type(plain) is dict else None
        request = ToolCall(tool, plain, "" if declared is None else declared.shape, self.server)
        record, told = self.point.judge_tool(caller, request, now=self.clock.now())
        if not told.allowed or declared is None or own is None:
            return ToolResult(told)  # a hidden tool's denial: an undeclared one's (47h, gates 1)
        if declared.run is None:  # run elsewhere: with the arguments judged (49d, gates 3)
            return ToolResult(told, None, own)
        with contextlib.ExitStack() as stack:
            try:
                lease = stack.enter_context(self.leases.lease(record))
            except LeaseDenied as denied:  # gate 3: no secret, no call (and the record says so)
                return ToolResult(self.point.refuse(record, denied.decision).decision)
            except BaseException as exc:  # a cancellation or an interruption too (review 26c)
                failed = f"denied: the lease provider failed ({type(exc).__name__})"
                self.point.refuse(record, PolicyDecision.deny(Outcome.LEASE_DENIED, failed))
                raise
            if declared.takes_lease:
                return ToolResult(record.decision, declared.run(**own, lease=lease))
            return ToolResult(record.decision, declared.run(**own))
