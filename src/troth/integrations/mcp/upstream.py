"""An upstream MCP server over stdio, its stdout read line by line within
MAX_MCP_UPSTREAM_LINE (review 54d, json 3).

The MCP SDK's `stdio_client` joins each chunk its reader takes (64 KiB at most) to the line so
far and splits the whole again: a line of n bytes costs n²/64 KiB of copying and searching, in
the event loop — an upstream answering a tools/call with one 64 MiB line (a file read, a page
fetched) stalled the node's every service for some 80 s, and a line of any length was held.
`upstream_stdio` is that client with another reader: each chunk is searched once for the end
of a line, the parts of a line are joined once when it ends, and a line past
MAX_MCP_UPSTREAM_LINE bytes is dropped as it comes (the session is told, as of a line that is
not JSON-RPC: logged; the request it answered gets no answer). A request of the upstream (a
ping; sampling, roots, elicitation, which the gate's client refuses) read while MAX_MCP_QUEUE
answers to its requests wait for it to read its stdin is dropped, logged a few times a minute:
the SDK starts a task for each request it reads, which waits to write its answer, so an
upstream flooding requests and reading nothing held them without bound (review 58f, mcp 2).
The gate's own requests waiting (its callers' tools/call, of every session) do not count: an
upstream busy for a moment had its request dropped, and its tool waiting for the answer held
the caller's call for ever (review 58j, mcp 1). The process, its
environment, the writer and the shutdown are the SDK's own (its spawn, stop and drain helpers).

An upstream that exits (mid-session, or as the gate ends it) ends its process group with it
(the SDK's tree kill: SIGTERM, then SIGKILL), as the SDK ends it at shutdown when the upstream
itself does not exit: else a child it left holding its stdout (spawned by a tool, `cmd &`)
kept the pipe open, so the session never saw the upstream end: a call under way waited for
ever, unrecorded as unanswered, every later call was written to a pipe nobody read, and the
child outlived the gate (review 65v, mcp 1). A child that left the group (setsid, a daemon) is
the upstream's to end, but not its stdout: once the upstream exited and its group is ended, its
stdout is closed after MCP_UPSTREAM_EXIT_IDLE_SECONDS with nothing to read since the group's end
(what it wrote read first: review 66p, mcp 3), so the session sees the upstream end (review
66c, mcp 3: such a child held the pipe, and the call under way waited for ever, as before 65v).
The session's shutdown ends the group too, however the session ended (review 66p, mcp 4: one
cancelled, its upstream exiting within the SDK's grace, left what the upstream started). The
group is ended as the SDK's tree kill does, but is over once every member left is a zombie
(`_terminate_process_tree`; review 66y, mcp 2: the end waited 2 s for pid 1 to reap one).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Final, TextIO

import anyio
import anyio.lowlevel
import mcp_types as types
from anyio.streams.memory import MemoryObjectSendStream
from mcp.client._transport import TransportStreams
from mcp.client.stdio import (
    _WRITER_FLUSH_TIMEOUT,
    FORCE_KILL_TIMEOUT,
    StdioServerParameters,
    _aclose_all,
    _create_platform_compatible_process,
    _drain_stdout,
    _get_executable_command,
    _parse_line,
    _stop_server_process,
    get_default_environment,
)
from mcp.client.stdio import _terminate_process_tree as _sdk_tree_kill
from mcp.os.win32.utilities import ServerProcess
from mcp.shared.message import SessionMessage

from troth import limits
from troth.integrations.mcp.quiet import quiet_sdk
from troth.transport.ratelog import RateLimitedLog

__all__ = ["LineTooLong", "connectable", "upstream_stdio"]

log = logging.getLogger("troth.mcp")


class LineTooLong(ValueError):
    """A line of the upstream's stdout past MAX_MCP_UPSTREAM_LINE bytes (dropped)."""


def connectable(upstream: object) -> object:
    """What `mcp.Client` connects to for `upstream`: `upstream_stdio` of stdio parameters, any
    other server or transport as it is. The SDK's log of what it cannot read of the upstream
    is throttled (`quiet_sdk`; review 57l, mcp 2)."""
    quiet_sdk()
    if isinstance(upstream, StdioServerParameters):
        return upstream_stdio(upstream)
    return upstream


class _Answers:
    """The session's write stream to the upstream, counting the answers to the upstream's own
    requests that wait in it to be written (`waiting`): the gate's requests (its callers'
    tools/call, of every session) wait there too, and are not the upstream's doing (review
    58j, mcp 1)."""

    def __init__(self, stream: MemoryObjectSendStream[SessionMessage]) -> None:
        self.stream = stream
        self.waiting = 0

    async def send(self, item: SessionMessage, /) -> None:
        if not isinstance(item.message, types.JSONRPCResponse | types.JSONRPCError):
            await self.stream.send(item)
            return
        self.waiting += 1
        try:
            await self.stream.send(item)
        finally:
            self.waiting -= 1

    def close(self) -> None:
        self.stream.close()

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def __aenter__(self) -> _Answers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _unanswerable(item: SessionMessage | Exception, answers: _Answers) -> bool:
    """Whether `item` is a request of the upstream read while MAX_MCP_QUEUE answers to its
    requests wait to be written to it (it reads none): its answer would wait too (review 58f,
    mcp 2). The gate's own requests waiting do not count (review 58j, mcp 1)."""
    return (
        isinstance(item, SessionMessage)
        and isinstance(item.message, types.JSONRPCRequest)
        and answers.waiting >= limits.MAX_MCP_QUEUE
    )


class _Lines:
    """Splits the bytes read into lines, each at most `limit` bytes (longer: `LineTooLong` in its
    place, its bytes dropped as they come)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.dropping = False

    def feed(self, data: bytes) -> list[bytes | LineTooLong]:
        found: list[bytes | LineTooLong] = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self._add(data[start:end], found)
            if not self.dropping:
                found.append(b"".join(self.parts))
            self.parts, self.size, self.dropping = [], 0, False
            start = end + 1
        self._add(data[start:], found)
        return found

    def end(self) -> list[bytes | LineTooLong]:
        """At the end of the stream: the line begun and not ended, if any."""
        return [] if self.dropping or not self.parts else [b"".join(self.parts)]

    def _add(self, part: bytes, found: list[bytes | LineTooLong]) -> None:
        if self.dropping or not part:
            return
        self.size += len(part)
        if self.size > self.limit:
            self.parts, self.size, self.dropping = [], 0, True
            found.append(LineTooLong(f"a line of the upstream over {self.limit} bytes, dropped"))
        else:
            self.parts.append(part)


_DROPPED = "MCP upstream %s: a request dropped: it reads none of the answers to its requests"


@contextlib.asynccontextmanager
async def upstream_stdio(
    server: StdioServerParameters,
    errlog: TextIO = sys.stderr,
    *,
    max_line: int | None = None,
    ended: anyio.Event | None = None,
) -> AsyncIterator[TransportStreams]:
    """`mcp.client.stdio.stdio_client` with a reader of lines within `max_line` bytes (None:
    MAX_MCP_UPSTREAM_LINE; module docstring). A line that is not in the server's encoding
    raises UnicodeDecodeError, as the SDK's reader does (`upstream_error` names it). A line
    that is not JSON-RPC is logged by the SDK a few times a minute (`quiet_sdk`; review 57l,
    mcp 2: an ERROR and its traceback each). `ended`, if given, is set when the upstream's
    stdout ends before the session does (it exited, or closed it: review 65b2, mcp 1)."""
    quiet_sdk()
    command = await _get_executable_command(server.command)
    process = await _create_platform_compatible_process(
        command=command,
        args=server.args,
        env=get_default_environment() | (server.env or {}),
        errlog=errlog,
        cwd=server.cwd,
    )
    dropped = RateLimitedLog(log, limits.MCP_SDK_LOG_LINES_PER_MINUTE)
    stdout, stdin = process.stdout, process.stdin
    if stdout is None or stdin is None:  # never: the SDK spawns it with pipes
        raise OSError(f"the upstream MCP server {server.command} has no pipes")
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_to, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    write_stream = _Answers(write_to)
    shutting_down = False
    writer_done = anyio.Event()

    waiting: list[float | None] = [None]  # since when the reader waits for stdout, if it does

    async def stdout_reader() -> None:
        lines = _Lines(limits.MAX_MCP_UPSTREAM_LINE if max_line is None else max_line)
        # a line not UTF-8 is raised at once (review 71l, upstream 1): not after the drain,
        # which ends only when shutdown closes the pipe (the failure reached no one while the
        # upstream lived), nor with the session's stream ended or `ended` set first (the
        # session's own errors in the group with it); the transport's shutdown closes both.
        # Once the shutdown began, such a line is dropped: the session's stream is closed, no
        # one waits, and a clean end failed as the upstream, told to end, wrote it (71t, wave3c 1)
        failed = False
        try:
            try:
                while True:
                    waiting[0] = anyio.current_time()
                    try:
                        data = await stdout.receive()
                    except anyio.EndOfStream:
                        break
                    waiting[0] = None
                    for line in lines.feed(data):
                        item: SessionMessage | Exception
                        if isinstance(line, LineTooLong):
                            log.warning("MCP upstream %s: %s", server.command, line)
                            item = line
                        else:
                            try:
                                text = line.decode(server.encoding, server.encoding_error_handler)
                            except UnicodeDecodeError:
                                if shutting_down:  # it reaches no one: the end stays clean
                                    return  # (review 71t, wave3c 1; the rest drained below)
                                failed = True
                                raise
                            item = _parse_line(text)
                            if _unanswerable(item, write_stream):
                                dropped.log(logging.WARNING, _DROPPED, server.command)
                                continue
                        try:
                            await read_writer.send(item)
                        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                            return  # the session is gone; only the drain below remains
            finally:
                if not failed:
                    await _drain_stdout(process)
                    await read_writer.aclose()
        except anyio.ClosedResourceError:
            pass  # our own shutdown closed the stdout stream under the read
        except (anyio.BrokenResourceError, ConnectionError):
            if not shutting_down:
                log.exception("reading the MCP upstream's stdout failed mid-session")
        finally:
            if ended is not None and not shutting_down and not failed:
                ended.set()

    async def stdin_writer() -> None:
        try:
            async with write_reader:
                async for message in write_reader:
                    text = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    data = (text + "\n").encode(server.encoding, server.encoding_error_handler)
                    await stdin.send(data)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await read_writer.aclose()  # the session sees the connection end
        finally:
            writer_done.set()

    async def shutdown() -> None:
        read_stream.close()
        write_stream.close()
        with anyio.move_on_after(_WRITER_FLUSH_TIMEOUT) as flush_scope:
            await writer_done.wait()
        if flush_scope.cancelled_caught:
            await anyio.lowlevel.cancel_shielded_checkpoint()
        await _stop_server_process(process)
        # what it started in its group ends with it, however the session ended: a cancelled
        # one had the reaper cancelled, and an upstream exiting within the SDK's grace had
        # nothing killed (review 66p, mcp 4); a group gone already costs one killpg
        await _terminate_process_tree(process)
        await _aclose_all(read_stream, write_to, read_writer, write_reader)
        await anyio.lowlevel.checkpoint()

    async def reaper() -> None:
        # the upstream exited: what it spawned in its process group ends with it, so its pipes
        # close and the session sees the end after what was written (module docstring)
        await process.wait()
        await _terminate_process_tree(process)
        # a child outside the group may hold stdout: closed once nothing comes (module docstring)
        # for `idle` since the group ended, not since the reader began waiting: what reached the
        # pipe as it ended, the loop yet to read it, was cut at once (review 66p, mcp 3)
        idle, gone = limits.MCP_UPSTREAM_EXIT_IDLE_SECONDS, anyio.current_time()
        while not shutting_down:
            since = waiting[0]
            if since is not None and anyio.current_time() - max(since, gone) >= idle:
                await stdout.aclose()  # the reader's receive: ClosedResourceError
                return
            await anyio.sleep(idle / 4)

    async with anyio.create_task_group() as group:
        group.start_soon(stdout_reader)
        group.start_soon(stdin_writer)
        group.start_soon(reaper)
        try:
            yield read_stream, write_stream
        finally:
            shutting_down = True
            with anyio.CancelScope(shield=True):
                await shutdown()
            group.cancel_scope.cancel()
    await anyio.lowlevel.cancel_shielded_checkpoint()


_GROUP_POLL: Final = 0.02  # seconds between looks at an ended upstream's group (/proc read)


async def _terminate_process_tree(process: ServerProcess) -> None:
    """The upstream's process group ended: SIGTERM, then SIGKILL to what still lives after
    FORCE_KILL_TIMEOUT, as the SDK's tree kill, but over once every member left is dead. The
    SDK's waits while `killpg(group, 0)` succeeds, which a zombie makes it do: the upstream's
    child, orphaned as the kill ended it, is reaped by pid 1, in a container often late or
    never, and the gate's end waited out the 2 s for nothing, then SIGKILLed the dead (review
    66y, mcp 2). Linux only (members seen in /proc); elsewhere the SDK's."""
    if not sys.platform.startswith("linux"):
        await _sdk_tree_kill(process)
        return
    group = process.pid  # (the leader's pid: its group, reaped or not)
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return  # the whole group is gone
    except PermissionError:
        pass  # (never proof it is gone: waited on, then killed)
    with anyio.move_on_after(FORCE_KILL_TIMEOUT):
        dead = 0  # looks in a row that found none living: two, so that a child a member forked
        while dead < 2:  # as the look listed the group, the member dead by its end, is seen
            _ = process.returncode  # (the leader reaped, where reading it does that)
            dead = 0 if _group_lives(group) else dead + 1
            await anyio.sleep(_GROUP_POLL)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


def _group_lives(group: int) -> bool:
    """Whether a member of process group `group` lives: one not a zombie (nothing of it left
    but its exit status: no descriptor, no pipe), nor a process whose first thread alone ended.
    In doubt (/proc unreadable), it lives."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if len(fields) < 3:
            return True
        if int(fields[2]) == group and (fields[0] not in (b"Z", b"X") or _threads_live(pid)):
            return True
    return False


def _threads_live(pid: int) -> bool:
    """Whether process `pid`, its first thread a zombie, has other threads running (its first
    ended by itself: the process lives on)."""
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False  # gone meanwhile
