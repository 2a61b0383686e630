"""The MCP gate: an MCP server in front of an upstream MCP server, deciding for one caller at
a time (docs/policy.md, "MCP gates"; research §2.2).

- `tools/list`: the upstream's tools, filtered through gate 1 (`DecisionPoint.preview_tools`)
  with the upstream's input schemas declared: a tool the caller could never be permitted to
  call is not listed, nor one whose upstream schema differs from the bundle's (logged once per
  tool and revision; what is logged once is remembered up to MAX_MCP_NOTED_NAMES names: review
  51f, mcp 2), nor a name the upstream lists twice (which entry would run is the
  upstream's to pick: it is called as a tool the bundle does not declare), nor one whose
  upstream schema is not JSON the gate can compare or nests deeper than
  MAX_UPSTREAM_SCHEMA_DEPTH (logged once per tool; review 49o, mcp 1: one nested past the
  recursion limit failed the whole listing). A tool is served without its annotation hints,
  icons and `_meta`, and only as the gate first listed it (name and shape) for the life of its
  connection to the upstream: one changed since (its description, title, schemas' text) is
  withheld and logged once, a call of it judged as of a tool the gate does not declare
  (troth.integrations.mcp.pins; review 52b, mcp 1 and 2). A listing is read within the gate's
  limits (troth.integrations.mcp.listing; review 54j, mcp 2): one of more than MAX_TOOL_PAGES
  pages, MAX_UPSTREAM_TOOLS tools or MAX_UPSTREAM_LISTING_BYTES is refused whole, a tool
  larger than MAX_UPSTREAM_TOOL_BYTES not offered (logged once); the SDK's client to the
  upstream is left the tools the gate keeps only, after each listing and call (review 62c, mcp
  2 and 3: it kept every page's), nor does it check results against their upstream output
  schemas (review 62c, mcp 4: their regexes ran in the event loop). A listing the upstream fails
  (or refused) is answered with the gate's own error, never the upstream's text or data
  (review 54g, mcp 1).
- `tools/call`: every call is decided (gate 2) with the caller's current credential and feed, a
  hidden tool called by name included; a denial is `CallToolResult(isError=True)` with the
  decision's fixed reason, which names policy ids and never echoes argument values (research
  §1.6). A tool gate 1 hides from the caller (or whose upstream schema is not the bundle's) is
  denied exactly as a name the bundle does not declare, whatever its arguments: calling names
  cannot enumerate the bundle's tools (review 47h, gates 1); the recorded decision keeps the
  real outcome and policies. Arguments the caller omits are filled with their schema's defaults
  before the call is judged (as the tool gate does), and an allowed call goes to the upstream
  with exactly the arguments judged (the gate's plain JSON copy, made before the decision:
  review 74k, records 1; a copy of its own: review 74f, gates 1): an upstream whose
  own default differs from the one judged (a new version since the gate's last listing) still
  runs what the policies saw. A call of a
  name the last listing does not know lists the upstream again, at most once per
  MCP_RELIST_SECONDS for all callers together (one listing at a time): within it the name is
  judged as undeclared (denied), so calls of made-up names cannot make the gate list the
  upstream (up to MAX_TOOL_PAGES pages) once each; a listing the upstream fails (an error
  answered, or gone) knows no tool, so the call is denied and recorded as one of an unknown
  name (review 51f, mcp 1); a listed tool's call told what an unknown
  name's is (hidden from the caller) lists it again as that call would, when one is due, so the
  listings cannot tell a timer which names the upstream serves (review 48t, gates 1). An
  upstream's announced change of its tools (`tools/list_changed` to the upstream client's
  message handler, or an event on a listen stream: `UpstreamChanges`) makes the next tools/call
  or tools/list list it again, so a listed tool is judged by what the upstream says it is since
  it last announced a change (review 48e, gates 2: a tool changed and announced was judged by
  its old schema, and ran with a new argument's default no policy saw). An allowed call the
  upstream never answers (cancelled: notifications/cancelled, the connection closed; or failed)
  is recorded again after its allowed record as a denial, outcome UNANSWERED
  (`DecisionPoint.refuse`, as the tool gate records a refused lease): no call without a result
  is left recorded as only allowed (review 47m, mcp 1); one the upstream answered ran and stays
  allowed only, its content, structured content and isError served in the gate's envelope
  (not the upstream's `_meta` nor `resultType`: review 54g, mcp 2; nor its content blocks'
  `_meta`: review 54j, mcp 3; troth.integrations.mcp.answers); one it answered with a
  JSON-RPC error is answered with the gate's, the upstream's message kept, not its code nor
  data (review 54g, mcp 3). One whose result is over what the connection carries to its
  client (`RESULT_LIMIT`: MAX_MCP_RESULT in a session over a secure channel, none over stdio)
  is refused as it comes, before it waits anywhere: answered with the gate's error naming the
  limit, recorded unanswered after its allowed record (it ran; its result was not served;
  review 58t, mcp 1: one over a frame waited whole behind a slow client, never to be sent).
  Every other failure of a request (the upstream's connection closed, an answer the SDK
  refuses, the decision point's recorder or the caller's credential source failing: a call
  never forwarded) is answered with the gate's `McpGateError`, its text fixed, never the
  SDK's code 0 and the failure's text (review 54j, mcp 1). A tools/list
  is answered with a listing begun since it was asked, at most MAX_MCP_LISTINGS at once (a
  burst of tools/list shares a few listings); one connection has at most
  MAX_MCP_CALLS_PER_SESSION tools/call decided and at the upstream at once, and at most
  MAX_MCP_QUEUE more tools/call and tools/list waiting in the gate (past it one is answered
  at once with the gate's error: review 55s, mcp 1). A tools/list is answered in pages within
  `RESULT_LIMIT` (troth.integrations.mcp.pages: MCP's `cursor` and `nextCursor`, a cursor
  MAC'd under the connection's key and bound to the caller's listing; review 63k, limits 4).

A request of one connection decided under another bundle than its last (another revision or
digest: a bundle swapped in, one of the same revision included; or none in force any more;
review 50d, mcp 3) is followed by `notifications/tools/list_changed` to
that client, when its protocol version is one before 2026-07-28 (the gate declares
`tools.listChanged` to them; it serves no `subscriptions/listen`): what the caller may see may
have changed (review 49o, mcp 2).

Every tool is its server's: a gate given the upstream's `server` name decides each of its tools
as `Tool::"<name>"` in `Server::"<server>"` (docs/policy.md, "Entities"), so a bundle can allow
`refund` on the payments server and not another upstream's `refund` (review 53c, gates 1).

Only tools pass: the gate offers no resources, prompts or sampling (closed by default), and
what an upstream asks of its client (sampling, elicitation, roots: as requests, or in an
`input_required` result) or tells it (progress, logs, resource changes) stops at the gate's
own client, which refuses every request (review 54g, refuted). One
`McpGate` serves many callers (the upstream client is shared); `gate_server` builds the MCP
`Server` of one connection around one caller, as research §2.3 recommends.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from troth import __version__, limits
from troth.clock import Clock, SystemClock
from troth.errors import PolicyError
from troth.gates import Caller, DecisionPoint, DecisionRecord, Outcome, PolicyDecision, ToolCall
from troth.gates.toolschema import (
    NAME,
    Fill,
    check_name,
    compile_tool_schema,
    own_arguments,
    plain_arguments,
    within_value_limit,
)
from troth.integrations.mcp.answers import (
    DENIED_PREFIX,
    RESULT_LIMIT,
    McpGateError,
    denied,
    failed,
    gate_failed,
    over_limit,
    result_limit,
    served_result,
    stamp_bytes,
    unlisted,
    upstream_said,
)
from troth.integrations.mcp.changes import UpstreamChanges
from troth.integrations.mcp.held import Unheld
from troth.integrations.mcp.listing import Reading, forget_grown, forget_unlisted, unchecked
from troth.integrations.mcp.pages import Measures, Pages
from troth.integrations.mcp.pins import Pin, Pins
from troth.integrations.mcp.room import ANSWER_ROOM
from troth.integrations.mcp.worker import GateWorker

__all__ = [
    "DENIED_PREFIX",
    "GATE_NAME",
    "McpGate",
    "McpGateError",
    "Upstream",
    "UpstreamChanges",
    "gate_server",
    "upstream_error",
    "upstream_said",
]

log = logging.getLogger("troth.mcp")
GATE_NAME: Final = "troth-gate"


class Upstream(Protocol):
    """What the gate needs of the upstream MCP server (`mcp.Client` is one)."""

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult: ...

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult: ...


@dataclass(frozen=True, slots=True)
class _Listed:
    """The upstream's tools as last listed: each tool offered (as `served`, held to its pin)
    and its input schema's shape (a name listed twice, or withheld, has none), and the fillers
    of their defaults found so far."""

    tools: tuple[types.Tool, ...]
    schemas: Mapping[str, str]
    changes: int = 0  # the upstream's announced changes counted when the listing began
    fills: dict[str, Fill | None] = field(default_factory=dict)
    measures: Measures = field(default_factory=dict)  # each tool's bytes as a page serves it

    def fill(self, name: str) -> Fill | None:
        """What fills the omitted arguments of tool `name` with its schema's defaults (None:
        it has none, or a schema the gates do not type, whose calls are denied anyway). Only
        listed names are cached: a made-up name is not kept (review 30c, mcp 1)."""
        if name in self.fills:
            return self.fills[name]
        shape = self.schemas.get(name)
        if shape is None:
            return None
        found: Fill | None = None
        if shape:
            try:
                found = compile_tool_schema(name, json.loads(shape)).fill
            except (PolicyError, ValueError):
                found = None
        self.fills[name] = found
        return found


Decided = Callable[[int | None, str | None], None]
"""Told the bundle revision and digest a request of one connection was decided under
(`gate_server`)."""

_AS_UNKNOWN: Final = frozenset(
    {
        Outcome.UNKNOWN_REQUEST,
        Outcome.CREDENTIAL,
        Outcome.CAVEAT_INVALID,
        Outcome.NOT_IN_FORCE,
        Outcome.PREVIEW_BUDGET,  # review 55n, preview 1: told for any name
    }
)
"""What a call of a name the gate's listing does not know can be told (`call_tool`)."""


def _first(noted: set[Any], key: Any) -> bool:
    """Note `key` in `noted` (something logged once); whether it was not noted yet. At most
    MAX_MCP_NOTED_NAMES are kept: past it the memory starts over, so an upstream listing new
    names at every listing cannot grow the gate without bound (review 51f, mcp 2)."""
    if key in noted:
        return False
    if len(noted) >= limits.MAX_MCP_NOTED_NAMES:
        noted.clear()
    noted.add(key)
    return True


class McpGate:
    """Decides tools/list and tools/call of an upstream MCP server (module docstring)."""

    def __init__(
        self,
        point: DecisionPoint,
        upstream: Upstream,
        *,
        clock: Clock | None = None,
        changes: UpstreamChanges | None = None,
        server: str | None = None,
    ):
        """`changes`: the message handler of the upstream's client (`UpstreamChanges`), which
        tells the gate its listing is stale; None: the upstream never announces a change.
        `server`: the name of the upstream server (a tool name's charset; PolicyError
        otherwise), its tools decided as `Tool::"<name>"` in `Server::"<server>"`, so a policy
        scoped `resource in Server::"payments"` allows no other upstream's tool of that name
        (review 53c, gates 1); None: in no server, which such a policy never allows."""
        self.point = point
        self.upstream = upstream
        self.server = None if server is None else check_name(server, "MCP server")
        self.clock: Clock = clock or SystemClock()
        self.changes = changes or UpstreamChanges()
        self._listed: _Listed | None = None
        self._listed_at: int | None = None  # when the last listing started (the gate's clock)
        self._begun = self._kept = 0  # listings begun; the count of the one `_listed` holds
        self._relisting = anyio.Lock()  # one listing for calls at a time
        self._listings = anyio.Semaphore(limits.MAX_MCP_LISTINGS)  # for tools/list (review 30c)
        # what was logged once, each at most MAX_MCP_NOTED_NAMES (review 51f, mcp 2)
        self._reported: set[tuple[str, int | None]] = set()
        self._twice: set[str] = set()  # names the upstream listed twice (logged once)
        self._unreadable: set[str] = set()  # names whose schemas were refused (logged once)
        self._changed: set[tuple[str, str]] = set()  # tools withheld by their pins (logged once)
        self._pins = Pins()  # what each tool served when first listed (review 52b, mcp 2)
        self._worker = GateWorker()  # judges and records calls (review 63x2, exit 3)

    def _stale(self, listed: _Listed) -> bool:
        """Whether the upstream announced a change of its tools since `listed` began."""
        return listed.changes != self.changes.count

    async def _list_upstream(self) -> _Listed:
        unchecked(self.upstream)  # before any call: no upstream regex run (review 62c, mcp 4)
        self._listed_at = self.clock.now()  # a listing that fails counts too
        self._begun += 1
        begun = self._begun
        changes = self.changes.count  # one announced during the listing leaves it stale
        try:
            reading = await self._read_pages()
        except BaseException:  # refused, failed, cancelled: the pages read are forgotten
            self._forget_unlisted()
            raise
        for name, why in reading.refused:  # a schema the gate cannot compare (nested too
            self._refused(name, why)  # deep: review 49o, mcp 1), too large: never offered
        schemas = {t.name: shape for t, shape in reading.tools if t.name not in reading.twice}
        for name in sorted(reading.twice):  # which entry would run is the upstream's to pick
            # logged once (a name a bundle could declare: no newline, bounded length)
            if _first(self._twice, name):
                log.warning("tool %s: the upstream lists it twice: not offered", name)
        kept = [t for t, _ in reading.tools if self._pinned(t, schemas)]
        listed = _Listed(tuple(kept), schemas, changes)
        if begun > self._kept:  # not one begun before the listing kept (review 26c, mcp 2)
            self._listed, self._kept = listed, begun
        self._forget_unlisted()
        return listed

    def _forget_unlisted(self) -> None:
        """The upstream's MCP client keeps per-tool state of the tools the gate keeps only
        (`forget_unlisted`; review 62c, mcp 2: what every page of every listing added was kept)."""
        forget_unlisted(self.upstream, self._listed.tools if self._listed is not None else ())

    async def _read_pages(self) -> Reading:
        """The upstream's listing, read within the gate's limits (review 54j, mcp 2)."""
        reading = Reading()
        cursor: str | None = None
        for _ in range(limits.MAX_TOOL_PAGES):
            page = await self.upstream.list_tools(cursor=cursor)
            for tool in page.tools:
                reading.add(tool)
            cursor = page.next_cursor
            if cursor is None:
                return reading
        # pages left: refused, never cut (a name listed again past it would pass)
        raise reading.pages_left()

    async def offered(self) -> list[str]:
        """The names of the upstream's tools the gate offers (to a caller whose bundle permits
        them), from a new listing read within the gate's limits, each tool pinned as it is
        listed: a published server's tools (review 57l, mcp 1: they were the SDK's reading of
        the upstream's first page, any number of any names). Raises what the listing raised:
        the upstream's error, or PolicyError OVER_LIMIT for a listing the gate refuses."""
        async with self._relisting:
            listed = await self._list_upstream()
        return [tool.name for tool in listed.tools]

    def _pinned(self, tool: types.Tool, schemas: dict[str, str]) -> bool:
        """Whether `tool` (as `served`, its schema's shape in `schemas`) is offered: what its
        first listing served of its name and shape (`Pins`; review 52b, mcp 2). One that is not
        (changed since, past MAX_MCP_PINNED_TOOLS, an unreadable output schema, a name no
        bundle could declare) is dropped from `schemas`, so a call of it is judged as of a
        tool the gate does not declare; logged once (a name a bundle could declare)."""
        shape = schemas.get(tool.name)
        if shape is None:  # listed twice, or an unreadable input schema
            return False
        if not NAME.fullmatch(tool.name):
            del schemas[tool.name]
            return False
        try:
            pin = self._pins.check(tool, shape)
        except PolicyError as exc:
            del schemas[tool.name]
            self._refused(tool.name, f"the upstream's schema is refused ({exc})")
            return False
        if pin is Pin.SAME:
            return True
        del schemas[tool.name]
        if _first(self._changed, (tool.name, shape)):
            why = (
                "the upstream changed it since the gate first listed it"
                if pin is Pin.CHANGED
                else f"the gate pins no more tools ({limits.MAX_MCP_PINNED_TOOLS})"
            )
            log.warning("tool %s: %s: not offered", tool.name, why)
        return False

    def _refused(self, name: str, why: str) -> None:
        """Log once a tool not offered for `why`: its upstream schema (input, or output: review
        52b, mcp 2) the gate cannot compare, or its size (review 54j, mcp 2), when its name is
        one a bundle could declare (no newline, bounded length)."""
        if NAME.fullmatch(name) and _first(self._unreadable, name):
            log.warning("tool %s: %s: not offered", name, why)

    async def list_tools(
        self,
        caller: Caller,
        *,
        decided: Decided | None = None,
        cursor: str | None = None,
        pages: Pages | None = None,
    ) -> types.ListToolsResult:
        """The upstream's tools `caller` could be permitted to call now (gate 1), as a listing
        begun since this request lists them: the gate's own, or one that ended while this
        request waited for one of its MAX_MCP_LISTINGS listings at once. `decided` is told the
        bundle revision and digest that decided (None: none in force). McpGateError when the
        upstream's listing failed or was refused (review 54g, mcp 1; review 54j, mcp 2), or the
        caller's tools could not be decided (its credential source failed: review 54j, mcp
        1). Served in pages of at most `RESULT_LIMIT` bytes (review 63k, limits 4), `cursor`
        (one `pages` gave: the connection's) asking for a later one, cut from the last listing
        unless the upstream announced a change since; MCPError Invalid params when it is not
        one for the caller's listing as it is now (troth.integrations.mcp.pages)."""
        if self._worker.closed:
            raise McpGateError("the gate is closed")
        asked, pages = self._begun, pages or Pages()
        at = None if cursor is None else pages.read(cursor)  # a forged one costs no listing
        async with self._listings:
            listed = self._listed
            # a first page: none begun since, or the upstream announced a change since: list now
            first = cursor is None and self._kept <= asked
            if listed is None or first or self._stale(listed):
                try:
                    listed = await self._list_upstream()
                except Exception as exc:  # MCPError, the connection closed, a malformed
                    raise unlisted(exc) from None  # listing, one over the gate's limits
        try:
            preview = self.point.preview_tools(
                caller, now=self.clock.now(), declared=listed.schemas, server=self.server
            )
        except Exception as exc:  # the caller's credential source failed (its storage)
            raise gate_failed("the caller's tools could not be decided", exc) from None
        if decided is not None:
            decided(preview.revision, preview.digest)
        for name in sorted(preview.mismatched):
            if _first(self._reported, (name, preview.revision)):
                log.warning(
                    "tool %s: the upstream's input schema differs from the policy bundle's "
                    "(revision %s): not offered",
                    name,
                    preview.revision,
                )
        visible = [t for t in listed.tools if t.name in preview.visible]
        return pages.page(visible, listed.measures, at, RESULT_LIMIT.get())

    async def _listing(self, name: str | None) -> _Listed:
        """The listing a call of `name`, which the last listing does not know, is judged with: a
        new one when none was made in the last MCP_RELIST_SECONDS (a tool called before any
        listing, or added since), else the last (the name is unknown: denied). Calls wait for a
        listing in progress and use it. A listing the upstream announced a change since is
        made again whatever its age (review 48e, gates 2). `name` None: a listed tool whose
        call was told what an unknown name's is, which costs the same (review 48t, gates 1)."""
        async with self._relisting:
            listed, last = self._listed, self._listed_at
            if listed is not None and self._stale(listed):
                return await self._relist()
            if listed is not None and name is not None and name in listed.schemas:
                return listed  # listed while this call waited
            # a clock set back (the wall clock: NTP, an operator) lists again too (review 26c)
            if last is None or not 0 <= self.clock.now() - last < limits.MCP_RELIST_SECONDS:
                return await self._relist()
            return listed or _Listed((), {})  # the last listing failed: nothing is known

    async def _relist(self) -> _Listed:
        """A new listing for calls; one the upstream fails (it answers tools/list with an
        error, or is gone) is an empty one: nothing is known of its tools, so the call is
        judged, denied and recorded as one of a name the gate does not know, never judged by
        a listing the upstream said is stale (review 51f, mcp 1: the call was neither decided
        nor recorded, and the upstream's error was its answer). A cancellation propagates."""
        try:
            return await self._list_upstream()
        except Exception as exc:  # MCPError, the connection closed, a malformed listing, one
            log.warning(  # over the gate's limits; its text escaped and cut (review 51f, mcp 3)
                "the upstream's tools could not be listed (%s): calls are judged as of tools "
                "the gate does not know",
                upstream_said(exc),
            )
            return _Listed((), {})

    async def call_tool(
        self,
        caller: Caller,
        name: str,
        arguments: Mapping[str, Any] | None,
        *,
        decided: Decided | None = None,
    ) -> types.CallToolResult:
        """Decide the call now (gate 2); forward it to the upstream only when allowed.
        `decided` is told the bundle revision and digest that decided (None: none in force).
        A result over `RESULT_LIMIT` bytes (`over_limit`: what the session being served carries
        to its client; None, over stdio: any) is refused as it comes: the gate's error naming
        the limit, the call recorded unanswered (it ran, its result not served; review 58t,
        mcp 1).
        McpGateError when the call could not be decided (the decision point failed: its
        recorder's storage, the caller's credential source; never forwarded), or the upstream
        failed an allowed call: its JSON-RPC error's message kept (review 54g, mcp 3), any
        other failure named by its type only (its connection closed, an answer the SDK
        refuses: review 54j, mcp 1); the call is recorded unanswered. A cancellation
        propagates; once the gate is closed, McpGateError (never decided; one decided as it
        closes is not forwarded: recorded refused after its allowed record, review 64l, mcp 1)."""
        if self._worker.closed:
            raise McpGateError("the gate is closed")
        listed = self._listed
        unknown = listed is None or name not in listed.schemas or self._stale(listed)
        if listed is None or unknown:
            listed = await self._listing(name)
        args = plain_arguments(arguments or {})  # the gate's own, read once (74k, records 1)
        fill = listed.fill(name)
        if fill is not None and type(args) is dict:  # judged, recorded, forwarded as filled
            with contextlib.suppress(PolicyError):  # (23c); over the limit, unfilled (49d)
                args = fill(args)
        own = own_arguments(args) if type(args) is dict else None  # before a recorder (74k, 4)
        request = ToolCall(name, args, listed.schemas.get(name, ""), self.server)
        judge = functools.partial(self.point.judge_tool, caller, request, now=self.clock.now())
        # a recording point signs and appends durably: off the event loop, which serves others,
        # on the gate's daemon threads (troth.integrations.mcp.worker; review 63x2, exit 3: on
        # anyio's, a recorder that never returned held a cancelled session and the exit);
        # cancelled as it runs, a call recorded allowed is recorded refused after it, which
        # the cancelled call waits for up to MCP_GATE_GRACE_SECONDS
        try:
            if self.point.recorder is None:
                record, told = judge()
            else:
                record, told = await self._worker.run(
                    judge, left=self._never_forwarded, grace=limits.MCP_GATE_GRACE_SECONDS
                )
        except McpGateError:  # the gate closed, or too many calls waiting to be decided
            raise
        except Exception as exc:  # a recorder failing stops the call (fail closed), or the
            # caller's credential source: the gate's error, never their text (review 54j, mcp 1)
            raise gate_failed("the call could not be decided", exc) from None
        if decided is not None:
            decided(record.decision.revision, record.decision.digest)
        if not told.allowed or own is None:  # a hidden tool: told as undeclared (47h, gates 1)
            if not unknown and told.outcome in _AS_UNKNOWN:
                # what a name the listing does not know costs: the same listing, when one is
                # due (review 48t, gates 1: else a timer tells the upstream's tools)
                await self._listing(None)
            return denied(told.reason)
        try:
            result = await self.upstream.call_tool(name, own)  # its own (74f, gates 1)
        except BaseException as exc:  # cancelled (the agent, its connection) or failed
            await self._unanswered(record, exc)
            if isinstance(exc, MCPError):  # the upstream's error: answered as the gate's
                raise failed(exc) from None
            if isinstance(exc, Exception):  # closed, an answer the SDK refused (review 54j)
                raise gate_failed("the upstream failed the call", exc) from None
            raise
        finally:  # what a relist of the SDK's own added (HEADER_MISMATCH: review 62c, mcp 3)
            forget_grown(self.upstream, self._listed.tools if self._listed is not None else ())
        served, max_result = served_result(result), RESULT_LIMIT.get()
        if max_result is None or not over_limit(served, max_result):
            return served
        del result, served  # not held while its refusal is recorded
        over = f"the upstream's answer is over the {max_result}-byte limit of an answer"
        refused = f"denied: {over} in the caller's session; the call ran, its result unserved"
        await self._refuse(record, refused)
        raise McpGateError(f"{over} in this session (the call ran)")

    async def _unanswered(self, record: DecisionRecord, exc: BaseException) -> None:
        """Record that the call `record` allowed got no result from the upstream (it may have
        run in part), after its allowed record, as `DecisionPoint.refuse` records a refused
        lease: no call whose result never came is left recorded as only allowed (review 47m,
        mcp 1). The cancellation that ended the call does not end its record (`_refuse`). A
        recorder that fails is logged (an error: the trace holds the call as allowed only) and
        leaves the call's answer as it was: the gate's error for the upstream's failure, or the
        cancellation (review 54j, mcp 1: its text was the answer, code 0)."""
        why = "cancelled" if isinstance(exc, anyio.get_cancelled_exc_class()) else "failed"
        await self._refuse(
            record,
            f"denied: the call was {why} before the upstream answered ({type(exc).__name__}); "
            "it may have run in part",
        )

    async def _refuse(self, record: DecisionRecord, reason: str) -> None:
        """Record the call `record` allowed as refused after all, outcome UNANSWERED for
        `reason` (`_unanswered`; an answer over the session's limit: review 58t, mcp 1): kept
        work of the gate's threads, written whatever becomes of this task and once the gate is
        closed too; a cancelled task waits for it up to MCP_GATE_GRACE_SECONDS, never for ever
        (review 63x2, exit 3: shielded, a recorder that never returned held it for ever)."""
        refuse = functools.partial(_refused, self.point, record, reason)
        if self.point.recorder is None:
            refuse()
        else:
            await self._worker.run(refuse, keep=True, grace=limits.MCP_GATE_GRACE_SECONDS)

    def _never_forwarded(self, judged: tuple[DecisionRecord, PolicyDecision]) -> None:
        """On a gate thread: the call `judged` was decided for a caller cancelled meanwhile, or
        as the gate closed (review 64l, mcp 1), so it is not forwarded; allowed, it is recorded
        refused after its allowed record."""
        record = judged[0]
        if record.decision.allowed:
            reason = (
                "denied: the call was cancelled, or the gate closed, as it was decided; it was "
                "not forwarded"
            )
            _refused(self.point, record, reason)

    async def close(self) -> bool:
        """Decide no more calls (McpGateError; those waiting for a thread answered so, never
        decided), then wait up to MCP_GATE_DRAIN_SECONDS for the records under way: whether
        they were all written (the rest left to the gate's daemon threads). Call it before the
        recorder's trace log is closed."""
        return await self._worker.drain(limits.MCP_GATE_DRAIN_SECONDS)


def _refused(point: DecisionPoint, record: DecisionRecord, reason: str) -> None:
    """`point.refuse` the call `record` allowed, outcome UNANSWERED for `reason`; a recorder
    failing is logged (an error: the trace holds the call as allowed only)."""
    try:
        point.refuse(record, PolicyDecision.deny(Outcome.UNANSWERED, reason))
    except Exception as failure:
        log.error(
            "tool %s: the call's unanswered record failed (%s): recorded allowed only",
            record.request.tool if isinstance(record.request, ToolCall) else "?",
            upstream_said(failure),
        )


class _Revisions:
    """The bundle (revision and digest) one connection's requests were last decided under: a
    new one (a bundle swapped in, of the same revision too: review 50d, mcp 3; or none in
    force any more) may change the tools its caller sees."""

    def __init__(self) -> None:
        self.last: tuple[int | None, str | None] = (None, None)
        self.seen = False
        self.changed = False

    def __call__(self, revision: int | None, digest: str | None) -> None:
        if self.seen and (revision, digest) != self.last:
            self.changed = True
        self.seen, self.last = True, (revision, digest)

    async def tell(self, ctx: ServerRequestContext[Any]) -> None:
        """Send `notifications/tools/list_changed` once the bundle changed, to a client of
        a protocol version before 2026-07-28 (the gate declares `tools.listChanged` to them;
        later versions have it on `subscriptions/listen` streams only, which the gate does not
        serve). Review 49o, mcp 2: a new bundle changed what a caller could see unannounced."""
        if not self.changed or ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return
        self.changed = False
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await ctx.session.send_tool_list_changed()


class _GateServer(Server[Any]):
    """A `Server` declaring `tools.listChanged` (its `_Revisions` tell the client), its
    `serverInfo` stamp copied flat."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(tools_changed=True)
        return super().create_initialization_options(options, experimental_capabilities, extensions)

    @functools.cached_property
    def _stamp(self) -> dict[str, Any]:
        return self.server_info.model_dump(by_alias=True, mode="json", exclude_none=True)

    @property
    def server_info_stamp(self) -> dict[str, Any]:
        """A fresh copy of the gate's `serverInfo` stamp (every response on the 2026-07-28
        protocol carries it): of text only (the gate's name and version: no icons), a flat
        copy is the fresh dict the SDK's `copy.deepcopy` made per response (review 61o, mcp
        1); another value deep-copied as the SDK does."""
        stamp = self._stamp
        if all(type(value) is str for value in stamp.values()):
            return dict(stamp)
        return copy.deepcopy(stamp)


class _OwnErrors:
    """`with _OWN_ERRORS:` any failure of a request not already the gate's own error
    (`McpGateError`, which `McpGate` raises for each it knows) answered as one, never by the
    MCP SDK's code 0 and the exception's text (review 54j, mcp 1). A class, not a
    `contextlib.contextmanager` generator: no generator and helper object per request (review
    54y, gates.mcp.call)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, MCPError):
            raise gate_failed("the gate failed the request", exc) from None


_OWN_ERRORS: Final = _OwnErrors()


class _InProgress:
    """`with held:` one request of a connection in the gate, at most `most` at once: past it
    McpGateError at once. The MCP SDK's server starts every request as it reads it, so the
    connection's inbound queue never fills while its requests wait in the gate (for a call
    slot, a listing): without this a member whose calls the upstream was slow to answer piled
    up waiting calls, each holding its arguments, as fast as its budget let it send (review
    55s, mcp 1)."""

    __slots__ = ("count", "most")

    def __init__(self, most: int) -> None:
        self.count = 0
        self.most = most

    def __enter__(self) -> None:
        if self.count >= self.most:
            raise McpGateError(f"{self.most} requests in progress in this session: send later")
        self.count += 1

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self.count -= 1


def _room_for(ctx: ServerRequestContext[Any]) -> contextlib.AbstractAsyncContextManager[None]:
    """Room for the answer of the request `ctx` in the session's backlog, waited for before it
    is decided (`ANSWER_ROOM`; review 59a, mcp 1); none looked for over stdio."""
    room = ANSWER_ROOM.get()
    if room is None:
        return _NO_ROOM  # shared: no object per call (review 61o, mcp 2)
    return room.promised(ctx.request_id)


_NO_ROOM: Final = contextlib.nullcontext(None)
"""`_room_for` where no room is looked for (it holds nothing)."""
_NO_SLOT: Final = contextlib.nullcontext(None)
"""What a tools/call over MAX_TOOL_ARGUMENT_VALUES takes of the session's calls: no slot (nor
room for its answer: `_NO_ROOM`)."""


def gate_server(gate: McpGate, caller: Caller) -> Server[Any]:
    """The MCP server of one connection: `gate` deciding for `caller` (a `CredentialSource`
    is asked for the caller's current credential at every request), at most
    MAX_MCP_CALLS_PER_SESSION tools/call at once (the others wait, in turn). A request decided
    under another bundle (revision or digest) than the connection's last one is followed by
    `notifications/tools/list_changed` (`_Revisions`; review 49o, mcp 2). The connection holds
    at most MAX_MCP_CALLS_PER_SESSION + MAX_MCP_QUEUE tools/call and tools/list in the gate
    (at the upstream or waiting): past it one is answered at once with the gate's error, never
    decided (`_InProgress`; review 55s, mcp 1); one over MAX_TOOL_ARGUMENT_VALUES takes no slot
    nor room (decided, denied, as it comes; review 70l, mcpwait 1). Over a secure channel each
    waits, before it is decided, for room for its answer in the session's backlog (`_room_for`;
    review 59a, mcp 1). A result over what the way to the client carries (`RESULT_LIMIT`,
    which the session's transport sets around the server; less the serverInfo stamp of a
    2026-07-28 answer: review 62c, mcp 1) is refused as the upstream answers it
    (`McpGate.call_tool`; review 58t, mcp 1)."""
    # a free slot is taken without a trip through the event loop (review 60d, gates.mcp.call:
    # one more loop iteration per call); a call waits for a slot in turn as before
    calls = anyio.Semaphore(limits.MAX_MCP_CALLS_PER_SESSION, fast_acquire=True)
    revisions = _Revisions()
    held = _InProgress(limits.MAX_MCP_CALLS_PER_SESSION + limits.MAX_MCP_QUEUE)
    pages = Pages()  # its tools/list cursors' key (review 63k, limits 4)

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        cursor = None if params is None else params.cursor
        with held, Unheld(ctx.request_id):
            async with _room_for(ctx):  # review 59a, mcp 1
                stamp = stamped if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS else 0
                with _OWN_ERRORS, result_limit(ctx.request_id, stamp):  # pages (63k, limits 4)
                    listing = await gate.list_tools(
                        caller, decided=revisions, cursor=cursor, pages=pages
                    )
        revisions.changed = False  # this listing is already the new revision's
        return listing

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        # one over MAX_TOOL_ARGUMENT_VALUES is denied as decided: it waits, holding its
        # arguments, neither for a slot at the upstream nor for room for its answer (a denial
        # is answered at once, as an error is; review 70l, mcpwait 1)
        over = not within_value_limit(params.arguments or {})
        with held, Unheld(ctx.request_id):
            async with (  # review 30c, mcp 5; review 59a, mcp 1
                _NO_SLOT if over else calls,
                _NO_ROOM if over else _room_for(ctx),
            ):
                # its id's bytes (review 58v, mcp 2), a 2026-07-28 answer's stamp (62c, mcp 1)
                stamp = stamped if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS else 0
                with _OWN_ERRORS, result_limit(ctx.request_id, stamp):
                    result = await gate.call_tool(
                        caller, params.name, params.arguments, decided=revisions
                    )
                await revisions.tell(ctx)  # before the room is handed to the answer
        return result

    server = _GateServer(
        GATE_NAME, version=__version__, on_list_tools=on_list_tools, on_call_tool=on_call_tool
    )
    stamped = stamp_bytes(server.server_info_stamp)  # review 62c, mcp 1
    return server


def upstream_error(exc: BaseException, upstream: str) -> OSError | None:
    """The error to report when the connection to `upstream` (its command line) failed with
    `exc`: an OSError naming it and the MCP SDK's reason when `exc` is the SDK's error (alone,
    or alone in its task groups: the upstream exited, or speaks no MCP), or naming it and why
    it could not start when `exc` is spawning's OSError (its program or working directory
    missing, not executable: the one OSError with a file name), or naming it and saying it wrote
    bytes that are not UTF-8 when `exc` is the UnicodeDecodeError of the reader of its stdout
    (troth.integrations.mcp.upstream), else None (not the upstream's: re-raise `exc`). Review
    30c, mcp 3: the commands' errors are typed; review 49g, cli 1: a spawn that failed was a
    traceback of the SDK's task groups; review 54d, json 2: so was an upstream's byte that is
    not UTF-8."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, OSError) and exc.filename is not None:
        reason = exc.strerror or type(exc).__name__
        where = exc.filename
        return OSError(f"the upstream MCP server {upstream} could not start: {reason}: {where}")
    if isinstance(exc, UnicodeDecodeError):
        where = f"{exc.reason} at byte {exc.start} of a line"
        said = f"it wrote bytes that are not UTF-8 ({where})"
        return OSError(f"the upstream MCP server {upstream} failed: {said}")
    if not isinstance(exc, MCPError):
        return None
    return OSError(f"the upstream MCP server {upstream} failed: {exc}")
