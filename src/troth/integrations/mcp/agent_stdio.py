"""The local gate's agent (and `troth mcp connect`'s client: review 66c, mcp 1) over this
process's stdin and stdout: the MCP SDK's `stdio_server` with a reader of stdin that can be
stopped (review 65b2, mcp 1).

The SDK reads stdin in a worker thread, which nothing cancels: a gate whose upstream died
mid-session could end only once its agent sent another line or closed its stdin, so it went on
serving, every tools/list failing and every allowed call recorded allowed then unanswered.
`agent_stdio` reads stdin when the event loop sees it readable (a regular file, which is
always readable, directly) and `AgentStdio.stop` ends it: no line is read after, the requests
read before are answered (within `MCP_GATE_DRAIN_SECONDS`), then the server's read stream
ends. The descriptors are the SDK's: fd 0 points at the null device and fd 1 at stderr while
the gate serves, so the gate's children read nothing of the agent and write nothing to it.
A line of the agent is read within MAX_MCP_UPSTREAM_LINE bytes, as the upstream's are (a longer
one dropped as it comes, the server told of it as of a line that is not JSON-RPC), each chunk
searched once (`_Lines`: the SDK's reader held a line of any length).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import stat
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Final

import anyio
import anyio.lowlevel
import mcp_types as types
from mcp.server.stdio import _claim_fd, _open_stdin_diversion, _open_stdout_diversion
from mcp.shared._context_streams import (
    ContextReceiveStream,
    ContextSendStream,
    create_context_streams,
)
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp.shared.message import SessionMessage

from troth import limits
from troth.integrations.mcp.upstream import _Lines

__all__ = ["AgentStdio", "agent_stdio", "on_sigterm"]

_CHUNK = 65536
_FULL_WAIT: Final = 0.01  # seconds between writes to a full non-blocking stdout


class AgentStdio:
    """The requests read from the agent and not answered yet, and the stop of the reading."""

    def __init__(self) -> None:
        self.pending: set[types.RequestId] = set()
        self.stopping = False
        self.waits = True  # stdin is waited on until readable (not a file, which always is)
        self.reading: anyio.CancelScope | None = None
        self.answered = anyio.Event()  # set when `pending` empties while stopping
        self.gone = False  # the agent's reading end of stdout closed: no answer reaches it

    def went(self) -> None:
        """The agent closed its reading end of stdout (its terminal closed, it died): it went
        away, as at the end of its stdin, and no answer can reach it, so none is waited for
        (review 67t, mcp 2: the write's EPIPE ended the gate as an internal error, exit 70)."""
        self.gone = True
        self.stop(drain=False)

    def stop(self, *, drain: bool = True) -> None:
        """Read no more of stdin; end the server's read stream once the requests read are
        answered (or MCP_GATE_DRAIN_SECONDS passed; at once without `drain`: none can be)."""
        self.stopping = True
        if self.reading is not None:
            self.reading.cancel()
        if not drain or not self.pending:
            self.answered.set()

    def read(self, message: SessionMessage | Exception) -> None:
        """Counts a request read; a request the agent cancelled is not answered (MCP)."""
        if not isinstance(message, SessionMessage):
            return
        if isinstance(message.message, types.JSONRPCRequest):
            self.pending.add(message.message.id)
        elif (
            isinstance(message.message, types.JSONRPCNotification)
            and message.message.method == "notifications/cancelled"
        ):
            self.pending.discard(cancelled_request_id_from_params(message.message.params))

    def written(self, message: SessionMessage) -> None:
        """Counts a request answered (once its answer is written)."""
        if isinstance(message.message, types.JSONRPCResponse | types.JSONRPCError):
            self.pending.discard(message.message.id)
            if self.stopping and not self.pending:
                self.answered.set()


async def _chunk(fd: int, state: AgentStdio) -> bytes | None:
    """The next bytes of `fd` (b"" at its end), None once the reading is stopped."""
    if state.waits and not state.stopping:
        try:
            with anyio.CancelScope() as state.reading:
                await anyio.wait_readable(fd)
        except OSError:  # not pollable (/dev/null): always readable, as a regular file
            state.waits = False
        state.reading = None
    if state.stopping:
        return None
    return os.read(fd, _CHUNK)  # readable, or a regular file: it does not block


def _parse(line: bytes) -> SessionMessage | Exception:
    """One line of the agent: its message, or the error the server is told of (as the SDK's
    reader does)."""
    try:
        return SessionMessage(
            types.jsonrpc_message_adapter.validate_json(
                line.decode("utf-8", "replace"), by_name=False
            )
        )
    except Exception as exc:
        return exc


async def _read(
    fd: int, state: AgentStdio, into: ContextSendStream[SessionMessage | Exception]
) -> None:
    """Hands each line of `fd` to the server, until its end or `state.stop()` (then once the
    requests read are answered)."""
    state.waits = not stat.S_ISREG(os.fstat(fd).st_mode)  # a regular file: never waited on
    lines = _Lines(limits.MAX_MCP_UPSTREAM_LINE)
    async with into:
        while (data := await _chunk(fd, state)) is not None:
            # at the end of stdin (the agent closed it): its last line, if unended
            for line in lines.feed(data) if data else lines.end():
                item: SessionMessage | Exception = (
                    line if isinstance(line, Exception) else _parse(line)
                )
                state.read(item)
                await into.send(item)
            if not data:
                return
            await anyio.lowlevel.checkpoint()
        with anyio.move_on_after(limits.MCP_GATE_DRAIN_SECONDS):
            await state.answered.wait()


async def _write_all(out: anyio.AsyncFile[bytes], data: bytes) -> None:
    """Writes all of `data` to `out` and flushes it: a raw stream (the program's unbuffered
    stdout, served in place) may take a part of a write (review 67z, mcp 1: the rest of the
    answer was dropped, the agent's line cut and the request counted answered)."""
    view = memoryview(data)
    while view:
        taken = await out.write(view)
        if taken is None:  # (a non-blocking stream, full: the agent is slow to read)
            await anyio.sleep(_FULL_WAIT)
            continue
        view = view[taken:]
    await out.flush()


@contextlib.asynccontextmanager
async def agent_stdio() -> AsyncIterator[
    tuple[
        ContextReceiveStream[SessionMessage | Exception],
        ContextSendStream[SessionMessage],
        AgentStdio,
    ]
]:
    """(read stream, write stream, its `AgentStdio`) of the agent on this process's stdin
    and stdout (module docstring)."""
    stdin, restore_stdin = _claim_fd(0, sys.stdin, "rb", _open_stdin_diversion)
    try:
        stdout, restore_stdout = _claim_fd(1, sys.stdout, "wb", _open_stdout_diversion)
        try:
            state = AgentStdio()
            read_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
            write_stream, write_reader = create_context_streams[SessionMessage](0)
            out = anyio.wrap_file(stdout)

            async def writer() -> None:
                async with write_reader:
                    async for message in write_reader:
                        if state.gone:  # (what the server still answers reaches no one)
                            continue
                        json = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                        try:
                            await _write_all(out, (json + "\n").encode())
                        except (BrokenPipeError, ConnectionResetError):
                            state.went()
                            continue
                        state.written(message)

            async with anyio.create_task_group() as group:
                group.start_soon(_read, stdin.fileno(), state, read_writer)
                group.start_soon(writer)
                yield read_stream, write_stream, state
                state.stop()  # served: the reader ends
        finally:
            if restore_stdout is not None:
                restore_stdout()
    finally:
        if restore_stdin is not None:
            restore_stdin()


@contextlib.asynccontextmanager
async def on_sigterm(act: Callable[[], None]) -> AsyncIterator[None]:
    """Calls `act()` when this process gets SIGTERM within the block: MCP's way to end a stdio
    server after closing its stdin. `troth mcp gate` and `troth mcp connect` then end as when
    their agent goes away, their upstream ended and their records written (review 66c, mcp 2:
    SIGTERM killed them at once, the upstream, in a session of its own, left running and the
    call under way unrecorded). SIGHUP (its terminal closed) acts as SIGTERM does, unless
    ignored as the block begins (`nohup`; review 67n, mcp 1: it killed the gate at once). In the
    main thread only (the signal is the process's); elsewhere both keep their handlers. Blocks
    open at once (two gates of one program) share one handler, each `act` called; the handler
    each signal had before the first is restored when the last ends, in whatever order they
    end (review 66p, mcp 2), unless the program set one since (kept: review 67t, mcp 4). One
    the running asyncio loop holds (`loop.add_signal_handler`, a program running the gate
    through the Python API) is left in place, so it is called too (review 66p, mcp 1: anyio's
    receiver replaced it in the loop and removed it, and that program's SIGTERM did nothing for
    good after the block).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    send, receive = anyio.create_memory_object_stream[None](math.inf)

    def deliver() -> None:
        with contextlib.suppress(anyio.ClosedResourceError):  # (the block ended meanwhile)
            send.send_nowait(None)

    def wake() -> None:  # in the signal handler: act() runs in the loop, in a task
        with contextlib.suppress(RuntimeError):  # (its loop closed meanwhile)
            loop.call_soon_threadsafe(deliver)

    async def calls() -> None:
        async for _ in receive:
            act()

    async with send, receive, anyio.create_task_group() as group:
        group.start_soon(calls)
        with _sigterm_calls(loop, wake):
            yield
        group.cancel_scope.cancel()


_Block = tuple[asyncio.AbstractEventLoop, Callable[[], None]]  # a block's loop and delivery
_sigterm_blocks: dict[int, _Block] = {}  # the open `on_sigterm` blocks
_sigterm_before: dict[int, Any] = {}  # each signal's handler before the first of them, if taken
# the wakeup pipe the first set, if it set one (review 66y, mcp 1): its loop, read end, write end
_sigterm_wakeup: list[tuple[asyncio.AbstractEventLoop, int, int]] = []
# the blocks' wakeup pipe: (pid, read end, write end), one for the process, never closed
_sigterm_pipe: list[tuple[int, int, int]] = []

_ENDS: Final = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""The signals that end a gate as its agent's going away does: SIGTERM, MCP's shutdown of a
stdio server; SIGHUP, its terminal closed (review 67n, mcp 1: the gate died at once, its
upstream left running)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    abandoned = [key for key, (loop, _) in _sigterm_blocks.items() if loop.is_closed()]
    for key in abandoned:
        _end_block(key)
    for _, delivery in list(_sigterm_blocks.values()):
        delivery()
    if abandoned and not _sigterm_blocks:  # the signal is the program's again: as it had it
        handler = signal.getsignal(signum)
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(signum)


def _drain(fd: int) -> None:
    """Reads what the signals wrote to the wakeup pipe's read end `fd` (it only woke the loop)."""
    with contextlib.suppress(OSError):
        while os.read(fd, 512):
            pass


def _own_pipe() -> tuple[int, int]:
    """The blocks' wakeup pipe (read end, write end), made once per process (a forked child
    makes its own: the one it inherited is its parent's too) and never closed: a program
    that set a wakeup fd of its own within a block and puts back the one it found once the
    block is over (as trio does) puts back this pipe, not a closed number the program's next
    file or socket took (review 67t, mcp 1)."""
    if not _sigterm_pipe or _sigterm_pipe[0][0] != os.getpid():
        read, write = os.pipe()  # (not inherited by the upstream: PEP 446)
        os.set_blocking(read, False)
        os.set_blocking(write, False)  # a storm of signals drops bytes, never blocks
        _sigterm_pipe[:] = [(os.getpid(), read, write)]
    return _sigterm_pipe[0][1], _sigterm_pipe[0][2]


def _wakeup_pipe(loop: asyncio.AbstractEventLoop) -> None:
    """Makes the blocks' own pipe, which `loop` reads, the signal wakeup fd if none is set (or
    it is that pipe already, put back by a program): a Python handler runs in the main thread,
    and a signal another thread took wakes the main thread asleep in the loop's selector only
    through the wakeup fd (review 66y, mcp 1: an idle gate slept on through SIGTERM). Not the
    loop's self-pipe: a block abandoned (its loop closed, its task never ended) left the wakeup
    fd on that pipe's closed descriptor number, which the program's next file took, and every
    signal wrote a byte into that file (review 67n, mcp 2)."""
    read, write = _own_pipe()
    _drain(read)  # (what signals wrote while no loop read it)
    try:
        loop.add_reader(read, _drain, read)
    except NotImplementedError:  # (a loop that watches no pipe)
        return
    there = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    if there in (-1, write):
        _sigterm_wakeup[:] = [(loop, read, write)]
        return
    signal.set_wakeup_fd(there)  # one set already wakes its own loop: left as it was
    loop.remove_reader(read)


@contextlib.contextmanager
def _sigterm_calls(loop: asyncio.AbstractEventLoop, delivery: Callable[[], None]) -> Iterator[None]:
    """`delivery()` called on SIGTERM or SIGHUP (`_ENDS`) within the block (in the main thread
    only); a signal ignored as the first block begins (SIGHUP under `nohup`) stays ignored.
    A block abandoned (its loop closed, the block never ended) ends at the next signal, which,
    the last block gone, goes to the handler the program had (review 67n, mcp 2: the signal
    did nothing for good)."""
    key = id(delivery)
    for abandoned in [k for k, (there, _) in _sigterm_blocks.items() if there.is_closed()]:
        _end_block(abandoned)
    if not _sigterm_blocks:
        for signum in _ENDS:  # handled from here
            if signal.getsignal(signum) is not signal.SIG_IGN:
                _sigterm_before[signum] = signal.signal(signum, _on_sigterm)
        _wakeup_pipe(loop)
    _sigterm_blocks[key] = (loop, delivery)
    try:
        yield
    finally:
        _end_block(key)


def _end_block(key: int) -> None:
    """The block `key` ended (or abandoned): after the last, each signal has its handler back
    (the program's if it set one since), and the wakeup fd what it was (the loop's own if it
    set one since)."""
    if _sigterm_blocks.pop(key, None) is None or _sigterm_blocks:
        return
    for signum, before in _sigterm_before.items():
        if signal.getsignal(signum) is not _on_sigterm:  # the program's own, set since: kept
            continue  # (review 67t, mcp 4: the one before put back over it, for good)
        # (None: not set from Python; its default, as the loop's removal left it before)
        signal.signal(signum, signal.SIG_DFL if before is None else before)
    _sigterm_before.clear()
    if _sigterm_wakeup:
        loop, read, write = _sigterm_wakeup.pop()  # (the pipe left open: `_own_pipe`)
        there = signal.set_wakeup_fd(-1)
        if there != write:  # set since by another (the loop's add_signal_handler)
            signal.set_wakeup_fd(there)
        if not loop.is_closed():
            loop.remove_reader(read)
