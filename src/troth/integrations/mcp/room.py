"""Room for the answers of one MCP session over a secure channel: what its backlog holds for a
client slow to take them (troth.integrations.mcp.channel, `_Backlog`), and the room promised to
the answers of the tools/call and tools/list in progress (docs/protocols.md, "MCP service").

A request the gate answers from the upstream (tools/call, tools/list) waits, before it is decided,
until the backlog has room for the largest answer a frame carries (MAX_MCP_FRAME, and one of the
backlog's frames), MCP_AT_ONCE_BYTES and MCP_AT_ONCE_FRAMES left over for the answers given at once
(`AnswerRoom.kept`; review 59h, mcp 1: the calls' room left none, and a slow honest client's
keepalive ping ended its session): that room is promised to its answer (`AnswerRoom.promised`) until
the answer is queued, or not sent (`AnswerRoom.unsent`: not even its error fits a frame; review 59h,
mcp 2), or the request ends unanswered. So a client slow to take its answers makes its next calls
wait in the gate (the gate's MAX_MCP_QUEUE beyond the calls it runs at once; past them, one is
answered at once with the gate's error), never ends its session by answers it asked for (review 59a,
mcp 1: a call's place was given back as the upstream answered, and a few more calls than
MAX_MCP_CALLS_PER_SESSION with answers near a frame each overflowed MAX_MCP_SESSION_BACKLOG: the
session ended as fallen behind). Every other frame (an answer the SDK or the gate gives at once: a
ping's, an error, a notification) is queued only in the room left: past it, the client has fallen
behind (it asks and does not read) and the session ends. Either way a session holds at most
MAX_MCP_SESSION_BACKLOG bytes of frames.

How the promise meets its answer: the handler's task, which the MCP SDK goes on to write the
answer in, is marked (`_ANSWERING`, a context variable of that task) as the handler returns or
fails; the frame of a response or error with that request's id, written by that task, takes the
promised room. A request cancelled by its client (`notifications/cancelled`, which the SDK
answers never, delivering it to the handler as a cancellation) or with the session lets its room
go as its handler ends; one whose task ends without writing its answer all the same lets it go
with the task (the promises are held weakly, the task's context holding its own), waking the
calls waiting for room (review 59n, mcp 1: none was woken), through their event loop when the
promise is freed in another thread (review 59o, mcp 1).

So one session holds at most MAX_MCP_SESSION_BACKLOG bytes of frames waiting and one frame on
its way out: one member's MAX_MCP_SESSIONS_PER_PEER sessions at most 72 MiB, a published server's
MAX_MCP_SESSIONS at most 2.25 GiB (a frame of a call's result exists as the SDK's objects only
between the upstream's answer and its frame, no wait between them: its room is already there).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Final

import anyio
import anyio.lowlevel
import mcp_types as types

from troth.integrations.mcp.worker import loop_soon

__all__ = ["ANSWER_ROOM", "AnswerRoom"]


class _Promise:
    """Room promised to the answer of the request `ident` in `room`."""

    __slots__ = ("__weakref__", "ident", "room")

    def __init__(self, room: AnswerRoom, ident: types.RequestId | None) -> None:
        self.room = room
        self.ident = ident

    def __del__(self) -> None:
        # let go with its task (held weakly): the calls waiting for room look again (review
        # 59n, mcp 1: its room came free and none was woken, with every answer read: a stall)
        self.room._gone()


_ANSWERING: Final[ContextVar[_Promise | None]] = ContextVar("troth_mcp_answering", default=None)
"""The promise of the request whose handler ran in this task (the SDK writes its answer here)."""


class AnswerRoom:
    """The frames one session holds for its client, at most `most_bytes` bytes and `most_frames`
    of them, counting `share` bytes and one frame for every answer promised room (`promised`,
    which leaves `kept` bytes and frames free beside it for the answers given at once).
    `queued` counts a frame in (False: no room, the client has fallen behind), `taken` one out.
    The promises are held weakly: one whose task ended without its answer (the SDK writes none
    to a request its client cancelled) is let go with the task."""

    def __init__(
        self, most_bytes: int, most_frames: int, share: int, kept: tuple[int, int] = (0, 0)
    ) -> None:
        self.most_bytes = most_bytes
        self.most_frames = most_frames
        self.share = share
        self.kept = kept
        self.bytes = 0
        self.frames = 0
        self._promises: weakref.WeakSet[_Promise] = weakref.WeakSet()
        self._changed = anyio.Event()
        self._waiting = 0  # calls waiting for room
        # the thread of their event loop, and its thread-safe `call_soon` (review 59o, mcp 1)
        self._loop: tuple[int, Callable[[Callable[[], None]], object]] | None = None

    def _fits(self, size: int, frames: int = 1) -> bool:
        """Whether `frames` frames of `size` bytes in all fit beside those waiting and the room
        promised."""
        promised = len(self._promises)
        return (
            self.bytes + self.share * promised + size <= self.most_bytes
            and self.frames + promised + frames <= self.most_frames
        )

    def queued(self, message: types.JSONRPCMessage, size: int) -> bool:
        """Count in a frame of `size` bytes carrying `message`: in the room promised to it (a
        response or error written by the task of the request it answers), else in the room
        left; False when there is none (nothing counted)."""
        if self._answered(message):  # its room becomes its frame's (at most `share`)
            self._count(size)
            self._wake()  # it may take less than was promised
            return True
        if not self._fits(size):
            return False
        self._count(size)
        return True

    def unsent(self, message: types.JSONRPCMessage) -> None:
        """`message` is not sent (no frame carries it, nor its error: review 59h, mcp 2): the
        room promised to it, if it is the answer this task writes, is let go."""
        if self._answered(message):
            self._wake()

    def _answered(self, message: types.JSONRPCMessage) -> bool:
        """Whether `message` answers the request whose handler ran in this task and still holds
        its promise, which it lets go (the caller counts its frame, or none)."""
        promise = _ANSWERING.get()
        answers = isinstance(message, types.JSONRPCResponse | types.JSONRPCError)
        if promise is None or not answers or getattr(message, "id", None) != promise.ident:
            return False
        _ANSWERING.set(None)
        if promise not in self._promises:
            return False
        self._promises.discard(promise)
        return True

    def _count(self, size: int) -> None:
        self.bytes += size
        self.frames += 1

    def taken(self, size: int) -> None:
        """A frame of `size` bytes left (to be sent, or dropped): its room is free."""
        self.bytes -= size
        self.frames -= 1
        self._wake()

    def _wake(self) -> None:
        """Wake the calls waiting for room, if any: none waits on the event in force (each
        waiter is counted in `_waiting` before it waits), so with none it is kept unset, not
        made anew for every frame (review 60d, mcp 2)."""
        if self._waiting:
            self._changed.set()
            self._changed = anyio.Event()

    def _gone(self) -> None:
        """A promise is gone (its room let go, or let go with its task): wake the calls waiting
        (none: nothing to do, as when the event loop is gone). Freed in another thread (the
        cyclic garbage collector runs in any), the wake is handed to their event loop: set
        there, the event completed their futures off its thread, the loop asleep in its selector
        not woken (review 59o, mcp 1)."""
        if self._waiting and self._loop is not None:
            thread, soon = self._loop
            with contextlib.suppress(RuntimeError):  # no event loop left (its tasks dropped)
                if thread == threading.get_ident():
                    self._wake()
                else:
                    soon(self._wake)

    def promised(self, ident: types.RequestId | None) -> _Promised:
        """`async with room.promised(request_id):` around a request the gate answers from the
        upstream: waits until an answer of `share` bytes fits, then promises it that room until
        it is queued (its handler returned or failed: the SDK writes its answer next, in the
        same task) or the request ends unanswered (cancelled: by its client, whose
        `notifications/cancelled` the SDK delivers as a cancellation, or with the session)."""
        return _Promised(self, _Promise(self, ident))

    async def _wait(self, promise: _Promise) -> None:
        kept_bytes, kept_frames = self.kept  # left for the answers given at once: review 59h
        if not self._fits(self.share + kept_bytes, 1 + kept_frames):
            if self._loop is None:  # (review 59o, mcp 1)
                self._loop = (threading.get_ident(), loop_soon())  # asyncio's, or trio's
            self._waiting += 1
            try:
                while not self._fits(self.share + kept_bytes, 1 + kept_frames):
                    await self._changed.wait()
            finally:
                self._waiting -= 1
        self._promises.add(promise)

    def _let_go(self, promise: _Promise) -> None:
        self._promises.discard(promise)
        self._wake()


class _Promised:
    """`AnswerRoom.promised`: a class, not a generator (no generator object per request)."""

    __slots__ = ("_promise", "_room")

    def __init__(self, room: AnswerRoom, promise: _Promise) -> None:
        self._room = room
        self._promise = promise

    async def __aenter__(self) -> None:
        await self._room._wait(self._promise)

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        try:  # a cancellation pending (the client's, the session's): no answer is written
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            self._room._let_go(self._promise)
            raise
        if exc is None or isinstance(exc, Exception):  # answered: its result, or an error
            _ANSWERING.set(self._promise)
        else:
            self._room._let_go(self._promise)


ANSWER_ROOM: ContextVar[AnswerRoom | None] = ContextVar("troth_mcp_answer_room", default=None)
"""The room of the session being served: set by its transport (`run_session`) around the MCP
server it runs, whose handlers the SDK starts in its context; None (stdio: `troth mcp gate`,
whose way out waits for its reader) no room is looked for."""
