"""MCP over a secure channel (docs/protocols.md, "MCP service"; research §2.3): JSON-RPC
messages in `McpFrame`s, one-way service messages through a channel.

The client side is `ChannelTransport`, an MCP SDK transport (an async context manager yielding
the session's read and write streams): `mcp.Client(ChannelTransport(...))` in process, or
`troth mcp connect` between stdio and the channel. It sends each client message as a `send`
request (so the serving node's access decision answers: a denied request comes back to the
client as its answer, a denied tools/call as an isError result with the reasons), and takes
the server's messages as one-way frames at its own worker address. The serving side is
`run_session`: one MCP `Server` (a gate built for the channel's verified peer) over a
session's frames.

Every queue is bounded (MAX_MCP_QUEUE messages): a side whose reader falls that far behind
loses its session rather than growing memory; the serving side's answers wait as their frames,
at most twice that many and MAX_MCP_SESSION_BACKLOG bytes (review 58t, mcp 2), a call or listing
waiting for room for its answer there before it is decided (troth.integrations.mcp.room; review
59a, mcp 1: a slow client's calls wait, rather than end its session). A message that
would make a frame over MAX_MCP_FRAME is not sent: a request or a response gets a JSON-RPC
error in its place; the gate refuses a tools/call result over MAX_MCP_RESULT as the upstream
answers it (`RESULT_LIMIT`; review 58t, mcp 1).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server import Server
from mcp.shared.message import SessionMessage

from troth import limits
from troth.errors import DecodeError, Denied, RemoteError, TrothError
from troth.integrations.mcp.answers import RESULT_LIMIT
from troth.integrations.mcp.frames import SESSION_BYTES, McpFrame
from troth.integrations.mcp.gate import DENIED_PREFIX
from troth.integrations.mcp.held import HELD, HeldRequests
from troth.integrations.mcp.quiet import quiet_sdk
from troth.integrations.mcp.room import ANSWER_ROOM, AnswerRoom
from troth.node.channel_ends import ChannelEnd
from troth.node.channels import ChannelManager
from troth.node.services.base import call
from troth.routing import Address, RoutedMessage, Router, Source, new_worker_address
from troth.transport.ratelog import RateLimitedLog

__all__ = [
    "ChannelTransport",
    "decode_message",
    "encode_message",
    "frames_of",
    "new_session",
    "refusal",
    "run_session",
]

log = logging.getLogger("troth.mcp")
_TOO_LARGE: Final = -32603  # JSON-RPC internal error
_REFUSED: Final = -32099
"""A request the serving node refused: JSON-RPC's implementation-defined band, clear of the
SDK's -32000..-32019 (-32001 is its REQUEST_TIMEOUT) and MCP's own codes."""
Inbound = MemoryObjectSendStream[SessionMessage | Exception]
_ENDED: Final = RateLimitedLog(log, limits.MCP_SDK_LOG_LINES_PER_MINUTE)
"""Sessions ended for answers not taken, logged a few times a minute (a peer's doing)."""
_DROPPED: Final = RateLimitedLog(log, limits.MCP_SDK_LOG_LINES_PER_MINUTE)
"""Answers dropped that not even their error fits a frame of (a peer's doing: review 59h)."""
_WAITING: Final = 2 * limits.MAX_MCP_QUEUE
"""Answers one session holds for its client at most: MAX_MCP_QUEUE and as many again (review
58f, mcp 1: queued, and as many waiting to be)."""


def new_session() -> bytes:
    """A fresh session id."""
    return os.urandom(SESSION_BYTES)


def encode_message(message: SessionMessage) -> bytes:
    """One JSON-RPC message as the stdio transport writes it."""
    return message.message.model_dump_json(by_alias=True, exclude_unset=True).encode()


def decode_message(data: bytes) -> SessionMessage:
    """One JSON-RPC message as the stdio transport reads it (DecodeError when it is not)."""
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(data, by_name=False))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise DecodeError(f"not a JSON-RPC message: {exc.__class__.__name__}") from None


def frames_of(
    session: bytes, message: SessionMessage
) -> tuple[bytes | None, SessionMessage | None]:
    """(the frame carrying `message`, None); when that frame would be over MAX_MCP_FRAME,
    (None, the JSON-RPC error answering `message` if it is a request or a response: it goes
    back to whoever sent it)."""
    try:
        return McpFrame(session, encode_message(message)).encode(), None
    except DecodeError:
        pass
    ident = getattr(message.message, "id", None)
    if ident is None:
        log.warning("dropped an MCP notification over the %d-byte limit", limits.MAX_MCP_FRAME)
        return None, None
    error = types.JSONRPCError(
        jsonrpc="2.0",
        id=ident,
        error=types.ErrorData(
            code=_TOO_LARGE, message=f"the message is over the {limits.MAX_MCP_FRAME}-byte limit"
        ),
    )
    return None, SessionMessage(error)


def refusal(message: SessionMessage, reason: str) -> SessionMessage | None:
    """The answer to a client message the serving node refused: an isError result for a
    tools/call, a JSON-RPC error for another request, nothing for a notification."""
    inner = message.message
    if not isinstance(inner, types.JSONRPCRequest):
        return None
    text = DENIED_PREFIX + reason
    if inner.method == "tools/call":
        result = types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], is_error=True
        )
        return SessionMessage(
            types.JSONRPCResponse(
                jsonrpc="2.0",
                id=inner.id,
                result=result.model_dump(by_alias=True, mode="json", exclude_none=True),
            )
        )
    error = types.ErrorData(code=_REFUSED, message=text)
    return SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=inner.id, error=error))


def _offer(queue: Inbound, item: SessionMessage | Exception) -> bool:
    """Queue `item` without waiting; False when the reader is too far behind (or gone)."""
    try:
        queue.send_nowait(item)
    except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
        return False
    return True


class ChannelTransport:
    """The client side of an MCP session with the MCP service at `service` over channel
    `end` (usable as `mcp.Client(ChannelTransport(...))`): the session ends when the channel
    closes or the server ends it."""

    def __init__(
        self, router: Router, channels: ChannelManager, end: ChannelEnd, service: Address
    ) -> None:
        self.router = router
        self.channels = channels
        self.end = end
        self.service = service
        self.session = new_session()
        self.worker = new_worker_address("mcp")
        self._inbound: Inbound | None = None
        self._group: Any = None

    async def __aenter__(
        self,
    ) -> tuple[
        MemoryObjectReceiveStream[SessionMessage | Exception],
        MemoryObjectSendStream[SessionMessage],
    ]:
        inbound, read = anyio.create_memory_object_stream[SessionMessage | Exception](
            limits.MAX_MCP_QUEUE
        )
        write, outbound = anyio.create_memory_object_stream[SessionMessage](limits.MAX_MCP_QUEUE)
        self._inbound = inbound
        self.router.register(self.worker, self._from_server)
        self.channels.closed_hooks.append(self._closed)
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self._to_server, outbound, inbound)
        return read, write

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self.router.unregister(self.worker)
        if self._closed in self.channels.closed_hooks:
            self.channels.closed_hooks.remove(self._closed)
        with contextlib.suppress(TrothError):  # the session ends (if the channel still runs)
            await self._send(McpFrame(self.session, None).encode())
        if self._inbound is not None:
            self._inbound.close()
        self._group.cancel_scope.cancel()
        return bool(await self._group.__aexit__(kind, exc, tb))

    async def _send(self, frame: bytes) -> None:
        """One frame as a `send` request (Denied, RemoteError: refused; other errors: the
        channel is gone)."""
        route = (self.end.enc, self.service)
        self.end.allow(self.worker)  # the server's frames may come back here (a reply path)
        await call(self.router, route, "send", [frame, self.worker.value])

    async def _to_server(
        self, outbound: MemoryObjectReceiveStream[SessionMessage], inbound: Inbound
    ) -> None:
        async with outbound:
            async for message in outbound:
                frame, refused = frames_of(self.session, message)
                if refused is not None:  # answered here: the server never sees it
                    _offer(inbound, refused)
                if frame is None:
                    continue
                try:
                    await self._send(frame)
                except (Denied, RemoteError) as exc:
                    reason = "; ".join(exc.reasons) if isinstance(exc, Denied) else str(exc)
                    answer = refusal(message, reason)
                    if answer is not None:
                        _offer(inbound, answer)
                except TrothError as exc:
                    log.info("MCP session: %s", exc)
                    inbound.close()
                    return

    async def _from_server(self, message: RoutedMessage, source: Source | None) -> None:
        inbound = self._inbound
        if source is not self.end or inbound is None:
            return  # only the server, over this channel, speaks in this session
        try:
            frame = McpFrame.decode(message.payload)
            if frame.session != self.session:
                return
            if frame.message is None:
                inbound.close()  # the server ended the session
                return
            item: SessionMessage | Exception = decode_message(frame.message)
        except DecodeError as exc:
            item = exc
        if not _offer(inbound, item):
            log.warning("MCP session: the client fell behind; the session ends")
            inbound.close()

    def _closed(self, end: ChannelEnd) -> None:
        if end is self.end and self._inbound is not None:
            self._inbound.close()


class _Backlog:
    """The way out of one session (the write stream of the MCP server it runs): each message
    the server writes is made its frame at once (one over MAX_MCP_FRAME: the JSON-RPC error in
    its place, `frames_of`) and queued without waiting, so an answer waits as the bytes that
    will be sent, never as the SDK's objects nor in a task. At most _WAITING frames and
    MAX_MCP_SESSION_BACKLOG bytes wait (the one being sent not counted), the room promised to
    the answers of the calls and listings in progress included (`room`, troth.integrations.mcp
    .room: they wait for it before they are decided, leaving MCP_AT_ONCE_BYTES free; review 59a,
    mcp 1; review 59h, mcp 1). A frame without room
    (one not promised: a ping's answer, an error, a notification) means the client has fallen
    behind: `behind` is called and the message dropped (review 58t, mcp 2: up to 128 answers
    of any size waited, each a task; review 58f, mcp 1)."""

    def __init__(
        self, session: bytes, behind: Callable[[], None], held: HeldRequests | None = None
    ) -> None:
        self.session = session
        self.behind = behind
        self.held = held  # the client's requests held: each let go as it is answered
        kept = (limits.MCP_AT_ONCE_BYTES, limits.MCP_AT_ONCE_FRAMES)  # review 59h, mcp 1
        self.room = AnswerRoom(limits.MAX_MCP_SESSION_BACKLOG, _WAITING, limits.MAX_MCP_FRAME, kept)
        self.fallen = False  # behind: what is written next is dropped as it comes
        self._queue, self.frames = anyio.create_memory_object_stream[bytes](_WAITING)

    async def send(self, message: SessionMessage, /) -> None:
        if self.held is not None:  # review 70l, mcpwait 1
            self.held.answered(message)
        if self.fallen:
            raise anyio.BrokenResourceError
        frame, refused = frames_of(self.session, message)
        if refused is not None:
            try:
                frame = McpFrame(self.session, encode_message(refused)).encode()
            except DecodeError:  # its id fills a frame (review 59h, mcp 2: the session failed)
                _DROPPED.log(
                    logging.WARNING, "MCP session: dropped an answer whose error is over a frame"
                )
        if frame is None:
            self.room.unsent(message.message)
            return
        if not self.room.queued(message.message, len(frame)):
            self.fallen = True
            self.behind()
            raise anyio.BrokenResourceError  # the SDK drops what it wrote
        self._queue.send_nowait(frame)  # the room counts frames: there is room for it

    def taken(self, frame: bytes) -> bytes:
        """`frame`, taken off the queue to be sent."""
        self.room.taken(len(frame))
        return frame

    def drop(self) -> None:
        """Let go of the frames still waiting: the session has ended (telling the client so
        may wait on the way back)."""
        with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):
            while True:
                self.taken(self.frames.receive_nowait())
        self.frames.close()

    async def aclose(self) -> None:
        await self._queue.aclose()

    async def __aenter__(self) -> _Backlog:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def run_session(
    server: Server[Any],
    inbound: MemoryObjectReceiveStream[SessionMessage | Exception],
    session: bytes,
    send: Callable[[bytes], Awaitable[bool]],
    held: HeldRequests | None = None,
) -> None:
    """Serve one MCP session: `server` reads what the client sent (`inbound`, closed when the
    client ends the session) and its answers go out as frames through `send` (False: the way
    back is gone, and the session ends). The client is told when the session ends. What the
    SDK logs of a client's messages it cannot read is throttled (`quiet_sdk`; review 57l,
    mcp 2). At most 2 x MAX_MCP_QUEUE answers and MAX_MCP_SESSION_BACKLOG bytes of them wait
    for the client (the way back waits: its peer reads too slowly); a tools/call or tools/list
    waits, before it is decided, for room for its answer there (`ANSWER_ROOM`; review 59a,
    mcp 1), and a client that leaves no room for an answer given at once (a ping's, an error)
    has fallen behind: the session ends, as when its own messages fill `inbound` (`_Backlog`;
    review 58f, mcp 1: the SDK's server starts a task for every request it reads, and each
    waited to write its answer, without bound; review 58t, mcp 2: 128 answers waited, of up to
    a frame each). The
    gate's tools/call results are held to MAX_MCP_RESULT (`RESULT_LIMIT`), what a frame
    carries: one over it is refused as the upstream answers it (review 58t, mcp 1). `held`:
    the weight of the client's requests held (`McpService.send` counts each in), each let go
    as it is answered or its handler is cancelled (troth.integrations.mcp.held; review 70l,
    mcpwait 1)."""
    quiet_sdk()

    def behind() -> None:
        _ENDED.log(logging.WARNING, "MCP session: the client takes no answers; ended")
        group.cancel_scope.cancel()

    backlog = _Backlog(session, behind, held)

    async def answers() -> None:
        async for frame in backlog.frames:
            if not await send(backlog.taken(frame)):
                group.cancel_scope.cancel()  # the way back is gone
                return

    limit = RESULT_LIMIT.set(limits.MAX_MCP_RESULT)  # the SDK starts handlers in this context
    room = ANSWER_ROOM.set(backlog.room)
    holding = HELD.set(held)
    try:
        async with inbound, anyio.create_task_group() as group:
            group.start_soon(answers)
            await server.run(inbound, backlog, server.create_initialization_options())
            group.cancel_scope.cancel()
    finally:
        HELD.reset(holding)
        ANSWER_ROOM.reset(room)
        RESULT_LIMIT.reset(limit)
        backlog.drop()
        with anyio.CancelScope(shield=True):
            await send(McpFrame(session, None).encode())
