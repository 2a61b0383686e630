"""What one MCP session over a secure channel holds of its client's requests, decoded
(docs/protocols.md, "MCP service"; review 70l, mcpwait 1).

A request waits in the session from its `send` until it is answered: in the session's queue, then
in the gate (for one of MAX_MCP_CALLS_PER_SESSION slots at the upstream, for room for its
answer), as the Python objects its JSON decoded to, which weigh up to ~40 times the frame (a
1 MiB frame of `[{"":0},...]`: ~28 MB). Counted by their number only, a session's
MAX_MCP_CALLS_PER_SESSION + MAX_MCP_QUEUE requests held ~1.5-2 GB, one member's sessions
~12-16 GB (review 70f, values 3). `message_weight` estimates what a decoded message holds (each
value's own size, `sys.getsizeof`, keys included: at least what tracemalloc measures, shared
small values counted each time; a request also the SDK's copies and objects as it serves it,
and what the gate never serves dropped: review 71a, mcpheld 1-3, 5 and 7; a 2026-07-28
request's envelope as the SDK makes it again: review 71i, wave2b 3; an `initialize` held, once
answered, for as long as the SDK keeps its params: review 71i, wave2b 2), and
`HeldRequests` counts the weight of the requests a session holds, each from its `send` until
its answer is written (or it ends unanswered: cancelled by its client, or with the session),
at most MAX_MCP_SESSION_HELD; one more past it is refused at
`send` (`the MCP session holds ... send again later`), never decided. A session holding no
request takes one of any weight (while its server's pool has a byte of room for it: review
71i, wave2b 1): a request at the limits of a frame is served, and a tools/call over
MAX_TOOL_ARGUMENT_VALUES is decided (denied, recorded) as the gate decides it, as it comes: it
waits neither for a slot at the upstream nor for room for its answer.
A notification or a response from the client (never held by the gate, answered by nothing)
weighs at most MAX_MCP_SESSION_HELD / MAX_MCP_QUEUE, so the session's queue of them holds no
more, and so does a request but for a tools/call's arguments (its `_meta`, its other params:
uncharged, they weighed up to ~40 MB a frame and waited as its arguments do): a heavier one is
refused at `send`. So a session holds at most MAX_MCP_SESSION_HELD, or one tools/call whose
arguments weigh more: over MAX_TOOL_ARGUMENT_VALUES, decided (denied) as it comes.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

from troth import limits

if TYPE_CHECKING:  # the SDK is imported once a server is published (troth.node.services.mcp)
    import mcp_types as types
    from mcp.shared.message import SessionMessage

__all__ = [
    "DENSEST",
    "ENVELOPE_COPIES",
    "ENVELOPE_OVERHEAD",
    "HELD",
    "KEPT_COPIES",
    "MESSAGE_OVERHEAD",
    "SERVED_OVERHEAD",
    "UNSERVED",
    "HeldPool",
    "HeldRequests",
    "Unheld",
    "Weighed",
    "loose_most",
    "message_weight",
    "weigh_arguments",
]

MESSAGE_OVERHEAD: Final = 4096
"""What a decoded JSON-RPC message weighs besides its values (its pydantic models, the
SDK's request objects): a ping's weight."""


def message_weight(item: SessionMessage | Exception, most: int) -> int:
    """What the decoded message `item` holds, estimated (bytes: MESSAGE_OVERHEAD and each
    value's `sys.getsizeof` rounded up to 16, at any depth, object keys included, and 1/64
    more), counted up to one past `most` (then given up: the message is over any limit);
    MESSAGE_OVERHEAD for an error."""
    import mcp_types as types

    if isinstance(item, Exception):
        return MESSAGE_OVERHEAD
    message = item.message
    if isinstance(message, types.JSONRPCRequest | types.JSONRPCNotification):
        content: Any = [message.method, message.params]
    elif isinstance(message, types.JSONRPCResponse):
        content = message.result
    elif isinstance(message, types.JSONRPCError):
        content = [message.error.message, message.error.data]
    else:  # what the SDK's adapter decodes is one of those
        content = None
    return _weigh([getattr(message, "id", None), content], most)


_ROUND: Final = 15
"""Each size is rounded up to pymalloc's 16 bytes: an int of one 30-bit digit is 28 bytes to
`sys.getsizeof` and 32 allocated (review 70u, mcpheld 1: a frame of them weighed ~10% under
what tracemalloc measures of it, beyond the 1/64 margin)."""


_COPIES: Final = 3
"""Copies of a tools/call's arguments object (its table: the members are shared) made as it is
served while the request itself is held: the SDK's typed params (`CallToolRequestParams`), the
gate's own dict, a filler's (review 70u, mcpheld 2: weighed once, a wide object held ~1.2-1.35
times its weight)."""


SERVED_OVERHEAD: Final = 8192
"""What the SDK holds of a request it serves besides the decoded message (its task, request
context and session, the dispatcher's scopes, its span), counted on top of a request's
MESSAGE_OVERHEAD: a small tools/call waiting in the gate held ~13.4-14.6 KB in a session,
weighed ~9-10 KB before (review 71a, mcpheld 5)."""


_META_COPIES: Final = 2
"""Copies of a request's `_meta` object's table (its members shared) the SDK makes as it
serves it, held with it: the request context's (`_extract_meta`) and its typed params'
(review 71a, mcpheld 3: weighed once, a wide `_meta` held ~1.08 times its weight)."""


_ENVELOPE: Final = (
    "io.modelcontextprotocol/clientInfo",
    "io.modelcontextprotocol/clientCapabilities",
)
"""The `_meta` keys of a 2026-07-28 request's envelope made the SDK's typed models for it."""
_ENVELOPE_VERSION: Final = "io.modelcontextprotocol/protocolVersion"
"""The `_meta` key that makes it a 2026-07-28 request's envelope (the SDK's
`PROTOCOL_VERSION_META_KEY`)."""


ENVELOPE_COPIES: Final = 3
"""Times a 2026-07-28 request's envelope (its `_meta`'s client info and capabilities, when it
names a protocol version) is counted more, and ENVELOPE_OVERHEAD: the SDK makes them its typed
models again for each request (`Connection.from_envelope`: `Implementation`,
`ClientCapabilities`, `InitializeRequestParams`), held while it waits (review 71i, wave2b 3:
weighed once, ten small calls waiting in the gate held ~1.11 times their weight, ~2 times with
300 icons in their client info; a client info's icons are ~2.1 times their weight as models)."""


ENVELOPE_OVERHEAD: Final = 4096
"""What the SDK holds besides of a 2026-07-28 request's envelope (its connection, the models'
own objects): ~2.1 KB measured a small call (ENVELOPE_COPIES)."""


_LONGEST_METHOD: Final = 32
"""More characters than a request's method that waits in the gate (tools/call, tools/list)
has, and its space: the span name `<method> <name>` is at most this longer than its name."""


KEPT_COPIES: Final = 4
"""What a session's `initialize` weighs, times its weight as a request: the SDK keeps its
params as its typed models for the session's life (the connection's `client_params`, until a
later initialize replaces them; a client info's icons ~2.1 times their weight), its raw
message too while it is served (review 71i, wave2b 2: let go as it was answered, ~1.1 MB a
session held unweighed)."""


UNSERVED: Final = frozenset({"inputResponses", "requestState"})
"""A request's params the gate never serves (the 2026-07-28 input-required round trips: the
gate asks its client nothing), dropped as it is sent: the SDK parsed them into its models,
held with the request, ~3 times their weight (review 71a, mcpheld 1: a session's 32 MiB of
tools/call carrying `inputResponses` of roots held ~100 MB)."""


DENSEST: Final = 48
"""What a tools/call over MAX_TOOL_ARGUMENT_VALUES weighs per byte of its frame (and
MESSAGE_OVERHEAD), its values not walked past the limit (review 70y, weighing 1: all walked,
~500,000 of a frame cost ~0.1-0.3 s, twice what its value charge pays for). The most measured
of ~1 MiB frames of the densest shapes, decoded and served (copies included): `[{"":{}},...]`
~43 weighed and ~32 held (tracemalloc), `[{"":0},...]` ~43 and ~27, a wide object of short
keys ~28 and ~22, `[[[]],...]` ~28 and ~26, `[[],...]`/`[{},...]` ~24 and ~24, `[0,...]` ~20
and 4; whitespace and escapes only make a frame less dense."""


_UNCOUNTED: Final = sys.maxsize
"""The values `_weigh` walks at most: no limit."""


def _weigh(content: Any, most: int) -> int:
    """`message_weight` of the values `content`, MESSAGE_OVERHEAD and 1/64 more counted (one
    past `most` when over it: the walk ends there)."""
    return _walk(content, most, _UNCOUNTED, counted=False)[1] or 0  # never None: no limit


def weigh_arguments(arguments: Any, most: int) -> tuple[int, int | None]:
    """(the values the containers in a tools/call's `arguments` hold, counted as
    `argument_values` counts them: up to one past MAX_TOOL_ARGUMENT_VALUES; their weight as
    `message_weight` weighs them, one past `most` when over it, None when they hold more
    values than the limit) in one walk, which ends one value past the limit (review 70y,
    weighing 1; review 71a, mcpheld 4: the count and the weight were two walks)."""
    return _walk(arguments, most, limits.MAX_TOOL_ARGUMENT_VALUES, counted=True)


def _walk(content: Any, most: int, values: int, *, counted: bool) -> tuple[int, int | None]:
    """(the values the containers in `content` hold, up to one past `values`; their weight
    with MESSAGE_OVERHEAD and 1/64 more, one past `most` when over it, None when they hold
    more than `values`). Past `most` the walk ends, or only counts on (`counted`)."""
    total = MESSAGE_OVERHEAD
    pending: list[Any] = [content]
    size = sys.getsizeof
    count = 0
    heavy = False  # over `most`: weighed no further
    while pending:
        value = pending.pop()
        if not heavy:
            total += (size(value) + _ROUND) & ~_ROUND
            if total > most:
                heavy = True
                if not counted:
                    return count, most + 1
        if isinstance(value, dict | list | tuple):
            count += len(value)
            if count > values:
                return values + 1, most + 1 if heavy else None
            if isinstance(value, dict):
                if heavy:
                    pending.extend(value.values())
                    continue
                for key, item_value in value.items():
                    total += (size(key) + _ROUND) & ~_ROUND
                    pending.append(item_value)
            else:
                pending.extend(value)
    if heavy:
        return count, most + 1
    return count, min(total + (total >> 6), most + 1)  # and what the parser's allocations round


def _copied(ident: types.RequestId, params: dict[str, Any], most: int) -> int:
    """What the SDK copies of a request as it serves it (but its arguments), held with it: its
    `_meta` object's table `_META_COPIES` times (the request context's and the typed
    params', review 71a, mcpheld 3), a 2026-07-28 envelope's client info and capabilities
    ENVELOPE_COPIES times and ENVELOPE_OVERHEAD (review 71i, wave2b 3; each weighed up to one
    past `most`), its tool name once (the OpenTelemetry middleware's span name,
    `<method> <name>`: review 71a, mcpheld 2) and an int id's decimal text (the span's
    `jsonrpc.request.id`: review 71a, mcpheld 7)."""
    copied = 0
    meta, name = params.get("_meta"), params.get("name")
    if isinstance(meta, dict):
        copied += _META_COPIES * ((sys.getsizeof(meta) + _ROUND) & ~_ROUND)
        if _ENVELOPE_VERSION in meta:  # a 2026-07-28 request's envelope
            copied += ENVELOPE_OVERHEAD
            for key in _ENVELOPE:
                if key in meta:
                    copied += ENVELOPE_COPIES * (_weigh(meta[key], most) - MESSAGE_OVERHEAD)
    if isinstance(name, str):  # a method's name is at most 4 bytes a character longer
        copied += (sys.getsizeof(name) + 4 * _LONGEST_METHOD + _ROUND) & ~_ROUND
    if isinstance(ident, int):  # its digits, at most one more than 0.302 of its bits
        digits = ident.bit_length() * 302 // 1000 + 2  # and its sign
        copied += (sys.getsizeof("") + digits + _ROUND) & ~_ROUND
    return copied


class Weighed(NamedTuple):
    """What `HeldRequests.weigh` found of a client's message."""

    ident: types.RequestId | None
    """A request's id (held until answered), None for a notification or response."""
    weight: int
    """Its weight (bytes)."""
    values: int
    """The values of a tools/call's arguments object, as `argument_values` counts them (what
    its value charge counts); 0 for any other message."""
    fits: bool
    """Whether it is within what it may weigh outside the session's most: a notification's or
    response's weight, a request's but for a tools/call's arguments, at most `loose_most`."""
    kept: bool = False
    """An `initialize`: held, once answered, until the session ends or a later one is
    answered (`KEPT_COPIES`)."""


class HeldPool(Protocol):
    """The weight the sessions of one published server hold together (review 71a, mcpheld 6):
    room for `size` more bytes for one session, taken, released (troth.node.services.mcp)."""

    def room(self, size: int) -> bool: ...

    def take(self, size: int) -> None: ...

    def release(self, size: int) -> None: ...


class HeldRequests:
    """The weight of the requests one session holds (`message_weight`), by request id: at most
    `most` bytes, and within `pool` (its server's sessions together), one request of any weight
    when it holds none and the pool has a byte of room (module docstring)."""

    __slots__ = ("_by_id", "_keeping", "kept", "most", "pool", "total")

    def __init__(self, most: int, pool: HeldPool | None = None) -> None:
        self.most = most
        self.pool = pool
        self.total = 0
        """The requests' weight and `kept`."""
        self.kept = 0
        """The weight of the `initialize` the session's SDK keeps (answered: review 71i,
        wave2b 2)."""
        self._by_id: dict[types.RequestId, int] = {}
        self._keeping: set[types.RequestId] = set()  # the initialize requests held

    def take(self, ident: types.RequestId, weight: int) -> bool:
        """Count in the request `ident` of `weight` bytes; False (nothing counted) when it
        would take the session past its most, or its server's sessions past their room in the
        pool, or a request of that id is held already. A session holding none takes one of
        any weight while the pool has a byte of room for it (review 71i, wave2b 1: taken
        whatever the pool held, one authority's sessions, a request each, took the pool past
        twice its bound, where every other authority is refused its share)."""
        if ident in self._by_id:
            return False
        pool = self.pool
        if self._by_id:
            if self.total + weight > self.most or (pool is not None and not pool.room(weight)):
                return False
        elif pool is not None and not pool.room(1):
            return False
        self._by_id[ident] = weight
        self.total += weight
        if pool is not None:
            pool.take(weight)
        return True

    def weigh(self, item: SessionMessage | Exception, size: int) -> Weighed:
        """What the client's message `item` (of a frame of `size` bytes) weighs as it is sent,
        and its tools/call arguments' values, in one walk (review 71a, mcpheld 4: the value
        charge's count and the weight walked them twice). A request's params the gate never
        serves (`UNSERVED`) are dropped first (review 71a, mcpheld 1); a request weighs
        SERVED_OVERHEAD more (review 71a, mcpheld 5) and the SDK's copies of its tool name,
        `_meta` table, 2026-07-28 envelope and int id (`_copied`; review 71a, mcpheld 2, 3 and
        7; review 71i, wave2b 3); a tools/call's arguments object's table `_COPIES` more
        (review 70u, mcpheld 2); arguments of more than MAX_TOOL_ARGUMENT_VALUES values weigh
        `DENSEST` a byte of the frame, their values walked no further (review 70y, weighing
        1); an `initialize`, KEPT_COPIES times its weight as a request, is `kept` (review 71i,
        wave2b 2)."""
        import mcp_types as types

        message = None if isinstance(item, Exception) else item.message
        loose = loose_most()
        if not isinstance(message, types.JSONRPCRequest):
            alone = message_weight(item, loose)
            return Weighed(None, alone, 0, alone <= loose)
        params = message.params or {}
        for key in UNSERVED.intersection(params):
            del params[key]  # never parsed nor held (review 71a, mcpheld 1)
        # only a tools/call's arguments may weigh more (charged for their values, denied at
        # once past MAX_TOOL_ARGUMENT_VALUES): the rest of a request weighs as a notification
        arguments = params.get("arguments") if message.method == "tools/call" else None
        if arguments is not None:
            params = {key: value for key, value in params.items() if key != "arguments"}
        rest = _weigh([message.id, message.method, params], loose)
        rest += _copied(message.id, params, loose)
        rest += SERVED_OVERHEAD  # the SDK's own objects for it (review 71a, mcpheld 5)
        if rest > loose:
            return Weighed(message.id, rest, 0, False)
        if message.method == "initialize":  # kept for the session (review 71i, wave2b 2)
            return Weighed(message.id, KEPT_COPIES * rest, 0, True, kept=True)
        # the arguments and the values in them, as the value charge counts them: one more is
        # over the limit (denied at once), weighed by its frame's bytes
        values, weight = weigh_arguments(arguments, self.most)
        charged = values if isinstance(arguments, dict) else 0  # as `argument_values`
        if weight is None:
            return Weighed(message.id, rest + MESSAGE_OVERHEAD + DENSEST * size, charged, True)
        if isinstance(arguments, dict):  # copied as it is served (review 70u, mcpheld 2)
            weight += _COPIES * ((sys.getsizeof(arguments) + _ROUND) & ~_ROUND)
        return Weighed(message.id, rest + weight, charged, True)

    def admit(self, weighed: Weighed) -> bool:
        """Count in the message `weighed` (`take`, a request: held until answered); False
        (nothing counted) when it is refused: a request past the session's most or of an id
        held, a notification or response, or a request but for a tools/call's arguments,
        weighing over `loose_most`."""
        if not weighed.fits:
            return False
        if weighed.ident is None:
            return True
        if not self.take(weighed.ident, weighed.weight):
            return False
        if weighed.kept:
            self._keeping.add(weighed.ident)
        return True

    def hold(self, item: SessionMessage | Exception, size: int) -> bool:
        """`admit` the client's message `item` (of a frame of `size` bytes) as `weigh`
        weighs it."""
        return self.admit(self.weigh(item, size))

    def answered(self, message: SessionMessage) -> None:
        """The server wrote `message`: a response or error lets go of the request it answers
        (a new request of that id is taken only since: one held is refused)."""
        import mcp_types as types

        inner = message.message
        if isinstance(inner, types.JSONRPCResponse) and inner.id in self._keeping:
            self._keep(inner.id)  # its params kept by the SDK (review 71i, wave2b 2)
        elif isinstance(inner, types.JSONRPCResponse | types.JSONRPCError):
            self.let_go(inner.id)

    def _keep(self, ident: types.RequestId) -> None:
        """The `initialize` `ident` is answered: its weight is held as the session's `kept`
        until the session ends, in place of an earlier one's (the SDK's params replaced)."""
        self._keeping.discard(ident)
        earlier, self.kept = self.kept, self._by_id.pop(ident, 0)
        self.total -= earlier
        if self.pool is not None and earlier:
            self.pool.release(earlier)

    def let_go(self, ident: types.RequestId | None) -> None:
        """The request `ident` is answered, or ended unanswered (nothing when not held)."""
        if ident is not None:
            self._keeping.discard(ident)
            weight = self._by_id.pop(ident, 0)
            self.total -= weight
            if self.pool is not None and weight:
                self.pool.release(weight)

    def close(self) -> None:
        """The session has ended: every request still counted (queued, never started) lets
        go of its weight, and so does what its SDK kept, the pool's too (what is let go later
        is nothing)."""
        if self.pool is not None and self.total:
            self.pool.release(self.total)
        self._by_id.clear()
        self._keeping.clear()
        self.total = self.kept = 0

    def __len__(self) -> int:
        return len(self._by_id)


HELD: ContextVar[HeldRequests | None] = ContextVar("troth_mcp_held", default=None)
"""The requests of the session being served (`run_session` sets it around the MCP server it
runs, whose handlers the SDK starts in its context); None over stdio (`troth mcp gate`)."""


class Unheld:
    """`with Unheld(request_id):` around a handler of the session being served: cancelled (its
    client's `notifications/cancelled`, the session's end: the SDK writes it no answer), the
    request lets go of its weight. A class, not a generator (one object per request)."""

    __slots__ = ("ident",)

    def __init__(self, ident: types.RequestId | None) -> None:
        self.ident = ident

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: object, tb: object) -> None:
        held = HELD.get()
        if held is not None and kind is not None and not issubclass(kind, Exception):
            held.let_go(self.ident)  # cancelled (an error is answered: let go then)


def loose_most() -> int:
    """The most a notification or response from the client may weigh (module docstring)."""
    return limits.MAX_MCP_SESSION_HELD // limits.MAX_MCP_QUEUE
