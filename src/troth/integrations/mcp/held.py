"""What one MCP session over a secure channel holds of its client's requests, decoded
(docs/protocols.md, "MCP service"; review 70l, mcpwait 1).

A request waits in the session from its `send` until it is answered: in the session's queue, then
in the gate (for one of MAX_MCP_CALLS_PER_SESSION slots at the upstream, for room for its
answer), as the Python objects its JSON decoded to, which weigh up to ~40 times the frame (a
1 MiB frame of `[{"":0},...]`: ~28 MB). Counted by their number only, a session's
MAX_MCP_CALLS_PER_SESSION + MAX_MCP_QUEUE requests held ~1.5-2 GB, one member's sessions
~12-16 GB (review 70f, values 3). `message_weight` estimates what a decoded message holds (each
value's own size, `sys.getsizeof`, keys included: at least what tracemalloc measures, shared
small values counted each time), and `HeldRequests` counts the weight of the requests a session
holds, each from its `send` until its answer is written (or it ends unanswered: cancelled by its
client, or with the session), at most MAX_MCP_SESSION_HELD; one more past it is refused at
`send` (`the MCP session holds ... send again later`), never decided. A session holding no
request takes one of any weight: a request at the limits of a frame is always served, and a
tools/call over MAX_TOOL_ARGUMENT_VALUES is decided (denied, recorded) as the gate decides it,
as it comes: it waits neither for a slot at the upstream nor for room for its answer.
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
from typing import TYPE_CHECKING, Any, Final

from troth import limits

if TYPE_CHECKING:  # the SDK is imported once a server is published (troth.node.services.mcp)
    import mcp_types as types
    from mcp.shared.message import SessionMessage

__all__ = [
    "DENSEST",
    "HELD",
    "MESSAGE_OVERHEAD",
    "HeldRequests",
    "Unheld",
    "loose_most",
    "message_weight",
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
    return _weigh([getattr(message, "id", None), content], most) or 0  # counted, never None


_ROUND: Final = 15
"""Each size is rounded up to pymalloc's 16 bytes: an int of one 30-bit digit is 28 bytes to
`sys.getsizeof` and 32 allocated (review 70u, mcpheld 1: a frame of them weighed ~10% under
what tracemalloc measures of it, beyond the 1/64 margin)."""


_COPIES: Final = 3
"""Copies of a tools/call's arguments object (its table: the members are shared) made as it is
served while the request itself is held: the SDK's typed params (`CallToolRequestParams`), the
gate's own dict, a filler's (review 70u, mcpheld 2: weighed once, a wide object held ~1.2-1.35
times its weight)."""


DENSEST: Final = 48
"""What a tools/call over MAX_TOOL_ARGUMENT_VALUES weighs per byte of its frame (and
MESSAGE_OVERHEAD), its values not walked past the limit (review 70y, weighing 1: all walked,
~500,000 of a frame cost ~0.1-0.3 s, twice what its value charge pays for). The most measured
of ~1 MiB frames of the densest shapes, decoded and served (copies included): `[{"":{}},...]`
~43 weighed and ~32 held (tracemalloc), `[{"":0},...]` ~43 and ~27, a wide object of short
keys ~28 and ~22, `[[[]],...]` ~28 and ~26, `[[],...]`/`[{},...]` ~24 and ~24, `[0,...]` ~20
and 4; whitespace and escapes only make a frame less dense."""


def _weigh(content: Any, most: int, values: int = sys.maxsize) -> int | None:
    """`message_weight` of the values `content`, MESSAGE_OVERHEAD and 1/64 more counted; None
    when the containers in it hold more than `values` values (as `argument_values` counts them:
    the walk ends there, review 70y, weighing 1)."""
    total = MESSAGE_OVERHEAD
    pending: list[Any] = [content]
    size = sys.getsizeof
    left = values
    while pending:
        value = pending.pop()
        total += (size(value) + _ROUND) & ~_ROUND
        if total > most:
            return most + 1
        if isinstance(value, dict | list | tuple):
            left -= len(value)
            if left < 0:
                return None
            if isinstance(value, dict):
                for key, item_value in value.items():
                    total += (size(key) + _ROUND) & ~_ROUND
                    pending.append(item_value)
            else:
                pending.extend(value)
    return min(total + (total >> 6), most + 1)  # and what the parser's allocations round up


class HeldRequests:
    """The weight of the requests one session holds (`message_weight`), by request id: at most
    `most` bytes, one request of any weight when it holds none (module docstring)."""

    __slots__ = ("_by_id", "most", "total")

    def __init__(self, most: int) -> None:
        self.most = most
        self.total = 0
        self._by_id: dict[types.RequestId, int] = {}

    def take(self, ident: types.RequestId, weight: int) -> bool:
        """Count in the request `ident` of `weight` bytes; False (nothing counted) when it
        would take the session past its most, or a request of that id is held already."""
        if ident in self._by_id or (self._by_id and self.total + weight > self.most):
            return False
        self._by_id[ident] = weight
        self.total += weight
        return True

    def hold(self, item: SessionMessage | Exception, size: int) -> bool:
        """Count in the client's message `item` (of a frame of `size` bytes) as it is sent
        (`take`, a request: held until answered); False (nothing counted) when it is refused: a
        request past the session's most or of an id held, a notification or response, or a
        request but for a tools/call's arguments, weighing over `loose_most`. A tools/call's
        arguments object's table is counted `_COPIES` more times (review 70u, mcpheld 2);
        arguments of more than MAX_TOOL_ARGUMENT_VALUES values weigh `DENSEST` a byte of the
        frame, their values walked no further (review 70y, weighing 1)."""
        import mcp_types as types

        message = None if isinstance(item, Exception) else item.message
        loose = loose_most()
        if not isinstance(message, types.JSONRPCRequest):
            return message_weight(item, loose) <= loose
        # only a tools/call's arguments may weigh more (charged for their values, denied at
        # once past MAX_TOOL_ARGUMENT_VALUES): the rest of a request weighs as a notification
        params = message.params or {}
        arguments = params.get("arguments") if message.method == "tools/call" else None
        if arguments is not None:
            params = {key: value for key, value in params.items() if key != "arguments"}
        rest = _weigh([message.id, message.method, params], loose) or 0  # never None
        if rest > loose:
            return False
        # the arguments and the values in them, as the value charge counts them: one more is
        # over the limit (denied at once), weighed by its frame's bytes
        weight = _weigh(arguments, self.most, limits.MAX_TOOL_ARGUMENT_VALUES)
        if weight is None:
            return self.take(message.id, rest + MESSAGE_OVERHEAD + DENSEST * size)
        if isinstance(arguments, dict):  # copied as it is served (review 70u, mcpheld 2)
            weight += _COPIES * ((sys.getsizeof(arguments) + _ROUND) & ~_ROUND)
        return self.take(message.id, rest + weight)

    def answered(self, message: SessionMessage) -> None:
        """The server wrote `message`: a response or error lets go of the request it answers
        (a new request of that id is taken only since: one held is refused)."""
        import mcp_types as types

        inner = message.message
        if isinstance(inner, types.JSONRPCResponse | types.JSONRPCError):
            self.let_go(inner.id)

    def let_go(self, ident: types.RequestId | None) -> None:
        """The request `ident` is answered, or ended unanswered (nothing when not held)."""
        if ident is not None:
            self.total -= self._by_id.pop(ident, 0)

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
