"""One listing of an upstream MCP server's tools as an MCP gate reads it, within its limits
(docs/policy.md, "MCP gates"; troth.integrations.mcp.gate).

The gate holds what it reads of a listing (its last, and those being made), so an upstream's
listing is bounded by the gate, not trusted (review 54j, mcp 2: only its pages were, and those
past the limit were cut):

- at most MAX_TOOL_PAGES pages and MAX_UPSTREAM_TOOLS tools, all pages together; at most
  MAX_UPSTREAM_LISTING_BYTES of the tools it keeps. A listing past one is refused whole
  (PolicyError OVER_LIMIT, which the gate takes as a listing the upstream failed: its tools/list
  answered with the gate's error, a call judged as of a tool the gate does not know). Never
  cut: a name listed again past a cut would not be seen twice, and which of its entries runs is
  the upstream's to pick.
- a tool larger than MAX_UPSTREAM_TOOL_BYTES (the compact UTF-8 JSON of what the gate would
  serve of it, `tool_bytes`) is not offered, nor one whose schemas the gate cannot read; each
  noted in `refused` (the gate logs it once). Its name still counts: listed twice, it is not
  offered either.
- a name no bundle could declare (`NAME`: MCP's charset, at most MAX_TOOL_NAME characters) is
  never offered, so it is neither kept nor remembered.

The MCP SDK's client reading the pages keeps what it needs of every tool it reads (its output
schema, to check the tool's results; on the 2026-07-28 protocol the map of its arguments to
request headers) and forgets one only on a listing of a single page: a listing of pages only
ever adds. After each listing, made or refused, `forget_unlisted` leaves it the gate's kept
tools only (review 62c, mcp 2: an upstream naming its tools anew at each paged listing grew
the node's memory at every tools/list, without bound); after each call forwarded,
`forget_grown` does when it knows more tools than that (review 62c, mcp 3: on a 2026-07-28
connection a call the upstream answers HEADER_MISMATCH makes the SDK's client list it again,
up to 100 pages, and send the call once more: what it listed was kept, call after call).
Nor does it check a call's result against the upstream's output schema (`unchecked`; review
62c, mcp 4: it ran the upstream's `pattern` regexes in the node's event loop, where one that
backtracks stalled every service): the result is the upstream's word, served in the gate's
envelope, its client checking it against the schema the gate served if it will. These reach
into the SDK's private names; an SDK without one fails each listing with ConfigError, never
leaves the gate without the defence unsaid (review 62p, mcp 1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import mcp_types as types

from troth import limits
from troth.errors import ConfigError, PolicyError, PolicyFailure
from troth.gates.toolschema import NAME, check_depth, schema_shape
from troth.integrations.mcp.pins import served

__all__ = ["Reading", "forget_grown", "forget_unlisted", "tool_bytes", "unchecked"]


def tool_bytes(tool: types.Tool) -> int:
    """The size of `tool` as an MCP gate serves it (`served`): the compact UTF-8 JSON of its
    name, title, description, input and output schemas. Its schemas' depth is checked first
    (`check_depth`); PolicyError when it is not JSON. What the gate cannot pin (a NaN, a lone
    surrogate) is measured, then refused by `Pins.check`, as before the size was."""
    check_depth(tool.input_schema, "input schema")
    check_depth(tool.output_schema, "output schema")
    value = [tool.name, tool.title, tool.description, tool.input_schema, tool.output_schema]
    try:  # a NaN is measured here (as `NaN`), refused by the pins (not canonicalisable)
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return len(text.encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError) as exc:  # not JSON
        raise PolicyError(
            PolicyFailure.SCHEMA_INVALID, f"not canonicalisable JSON: {exc}"
        ) from None


class Reading:
    """One listing being read, a page at a time (`add` each tool): the tools it may offer
    (`tools`: each as `served`, and its input schema's shape), the names listed twice, and the
    tools refused with why (module docstring)."""

    def __init__(self) -> None:
        self.tools: list[tuple[types.Tool, str]] = []
        self.twice: set[str] = set()
        self.refused: list[tuple[str, str]] = []  # name, why (logged once by the gate)
        self._names: set[str] = set()
        self._count = 0
        self._bytes = 0

    def add(self, tool: types.Tool) -> None:
        """Read the listing's next tool; PolicyError OVER_LIMIT when the listing is past
        MAX_UPSTREAM_TOOLS tools or MAX_UPSTREAM_LISTING_BYTES."""
        self._count += 1
        if self._count > limits.MAX_UPSTREAM_TOOLS:
            raise PolicyError(
                PolicyFailure.OVER_LIMIT, f"more than {limits.MAX_UPSTREAM_TOOLS} tools listed"
            )
        name = tool.name
        if not NAME.fullmatch(name):
            return  # no bundle could declare it: never offered
        if name in self._names:
            self.twice.add(name)
            return
        self._names.add(name)
        try:
            size = tool_bytes(tool)
            shape = schema_shape(tool.input_schema)
        except PolicyError as exc:  # not JSON the gate can compare, or nested too deep
            self.refused.append((name, f"the upstream's schema is refused ({exc})"))
            return
        if size > limits.MAX_UPSTREAM_TOOL_BYTES:
            why = f"larger than {limits.MAX_UPSTREAM_TOOL_BYTES} bytes ({size})"
            self.refused.append((name, f"the upstream's tool is refused ({why})"))
            return
        self._bytes += size
        if self._bytes > limits.MAX_UPSTREAM_LISTING_BYTES:
            raise PolicyError(
                PolicyFailure.OVER_LIMIT,
                f"more than {limits.MAX_UPSTREAM_LISTING_BYTES} bytes of tools listed",
            )
        self.tools.append((served(tool), shape))

    def pages_left(self) -> PolicyError:
        """The error of a listing with pages left after MAX_TOOL_PAGES."""
        return PolicyError(
            PolicyFailure.OVER_LIMIT, f"more than {limits.MAX_TOOL_PAGES} pages listed"
        )


def forget_unlisted(upstream: object, tools: Sequence[types.Tool]) -> None:
    """Leave the MCP SDK's client `upstream` (an `mcp.Client`: its session) per-tool state of
    `tools` only (the gate's kept listing: the only tools whose calls it forwards), as its own
    listing of a single page does: what the pages of the gate's listings added of other tools is
    forgotten (module docstring; review 62c, mcp 2). Another upstream (no such session) has
    nothing to forget."""
    session = _session(upstream)
    if session is not None:  # (its Client's too)
        absorb = _sdk(session, "_absorb_tool_listing")
        absorb(types.ListToolsResult(tools=list(tools)), complete=True)


def forget_grown(upstream: object, tools: Sequence[types.Tool]) -> None:
    """`forget_unlisted` when the MCP SDK's client `upstream` knows more tools than `tools` (the
    gate's kept listing), as after a listing of its own (review 62c, mcp 3); one look at the
    count else, as after every call."""
    session = _session(upstream)
    if session is not None and len(_sdk(session, "_tool_output_schemas")) > len(tools):
        forget_unlisted(upstream, tools)  # (the SDK's, by name)


def unchecked(upstream: object) -> None:
    """Have the MCP SDK's client `upstream` take a call's result as the upstream gave it, not
    checked against the tool's output schema (`ClientSession.validate_tool_result`, which also
    listed the upstream for a tool it did not know): the schema is the upstream's, its
    `pattern` regexes run in the event loop of the node's every service, one that backtracks a
    stall of minutes for a result of 40 bytes (module docstring; review 62c, mcp 4). Another
    upstream (no such session) is left as it is."""
    session: Any = _session(upstream)
    if session is not None:  # every name the gate reaches into, before any listing is kept
        for name in _PRIVATE:  # (review 62p, mcp 1)
            _sdk(session, name)
        session.validate_tool_result = _as_given


async def _as_given(name: str, result: object) -> None:
    """A result taken as given (`unchecked`)."""


_PRIVATE = ("_absorb_tool_listing", "_tool_output_schemas", "validate_tool_result")
"""The MCP SDK session's names `forget_unlisted`, `forget_grown` and `unchecked` use."""


def _sdk(session: object, name: str) -> Any:
    """The MCP SDK session's private `name` that `forget_unlisted`, `forget_grown` and
    `unchecked` reach into; ConfigError when the installed SDK has it no more (review 62p, mcp
    1: each then did nothing, the defence gone without a word, so a listing fails instead)."""
    try:
        return getattr(session, name)
    except AttributeError:
        raise ConfigError(
            f"the installed MCP SDK's client has no {name}: the gate cannot bound it"
        ) from None


def _session(upstream: object) -> object:
    """The MCP session of `upstream` (an `mcp.Client`), None when it has none (another
    upstream, or a client not connected: its `session` raises RuntimeError then)."""
    try:
        return getattr(upstream, "session", None)
    except RuntimeError:
        return None
