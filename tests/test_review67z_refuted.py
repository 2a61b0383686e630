"""Review 67z of 67t's MCP signal changes (`agent_stdio`, `on_sigterm`): attacks that did not
break a promise, each kept as a test of the defence that stopped it.

1. A program that puts SIGTERM's default back itself while the gate serves
   (`signal.signal(SIGTERM, SIG_DFL)`): its explicit default is kept when the block ends, not
   overwritten with the handler the signal had before the block (67t, mcp 4's check is on the
   block's own handler, not on "a callable").
2. A forked child (of a program whose block made the process's wakeup pipe) opening a block of
   its own: it makes a pipe of its own, its wakeup fd is not the parent's write end, and the
   SIGTERM it takes writes no byte into the pipe its parent's loop reads.
3. `troth mcp connect` (which 67t, mcp 2 did not test) with its agent's stdout gone: the server's
   first message written fails with EPIPE, which ends connect as its agent's end does (no more
   of stdin read though the agent holds it open, the server's session closed, no error: exit
   0), not as an internal error.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.message import SessionMessage

from tests.test_review66c_mcp import ROUTE, _fake_node, _Transport
from troth.integrations.mcp import connect as connect_module
from troth.integrations.mcp.agent_stdio import on_sigterm


def _peek_wakeup_fd() -> int:
    there = signal.set_wakeup_fd(-1)
    if there != -1:
        signal.set_wakeup_fd(there)
    return there


def test_a_default_the_program_puts_back_within_the_block_is_kept() -> None:
    def before(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, before)
    try:

        async def main() -> None:
            async with on_sigterm(lambda: None):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the program's explicit choice
                await asyncio.sleep(0)

        asyncio.run(main())
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_forked_childs_block_uses_a_pipe_of_its_own() -> None:
    parent_wakeup: list[int] = []

    async def parent() -> None:
        async with on_sigterm(lambda: None):
            parent_wakeup.append(_peek_wakeup_fd())

    previous = signal.getsignal(signal.SIGTERM)
    try:
        asyncio.run(parent())  # the process's pipe made
        (parent_write,) = parent_wakeup
        assert parent_write != -1
        parent_read = next(
            fd for fd in range(3, 1024) if _is_pipe_pair(fd, parent_write) and fd != parent_write
        )
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if its block used a pipe of its own
            code = 1
            try:
                got: list[str] = []

                async def child() -> None:
                    done = asyncio.Event()

                    def act() -> None:
                        got.append("act")
                        done.set()

                    async with on_sigterm(act):
                        mine = _peek_wakeup_fd()
                        got.append("own" if mine not in (-1, parent_write) else "parent's")
                        os.kill(os.getpid(), signal.SIGTERM)
                        await asyncio.wait_for(done.wait(), 5)

                asyncio.run(child())
                code = 0 if got == ["own", "act"] else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        os.set_blocking(parent_read, False)
        with pytest.raises(BlockingIOError):  # no byte of the child's signal in the parent's
            os.read(parent_read, 512)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _is_pipe_pair(fd: int, other: int) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == os.readlink(f"/proc/self/fd/{other}")
    except OSError:
        return False


class _Talks(_Transport):
    """The server's side, which tells the client of a change at once."""

    async def __aenter__(self) -> tuple[Any, Any]:
        read, write = await super().__aenter__()
        changed = types.JSONRPCNotification(
            jsonrpc="2.0", method="notifications/tools/list_changed"
        )
        self.server.send_nowait(SessionMessage(changed))
        return read, write


def test_connect_with_its_agents_stdout_gone_ends_as_at_its_agents_end(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_node(monkeypatch, ends=False)
    sessions: list[_Talks] = []

    @contextlib.asynccontextmanager
    async def connect(runtime: object, identity: str, to: str, **_: object) -> AsyncIterator[Any]:
        sessions.append(_Talks(False))
        yield sessions[-1]

    monkeypatch.setattr(connect_module, "connect", connect)
    in_read, in_write = os.pipe()  # the agent holds its stdin open throughout
    out_read, out_write = os.pipe()
    os.close(out_read)  # its reading end gone
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(in_read, "rb", buffering=0)))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(os.fdopen(out_write, "wb", buffering=0)))
    try:

        async def main() -> None:
            with anyio.fail_after(3):
                await connect_module.serve_connect(tmp_path, "agent", "support", ROUTE)

        anyio.run(main)  # returned, no error: exit 0
    finally:
        os.close(in_write)
    assert len(sessions) == 1
    with pytest.raises(anyio.ClosedResourceError):  # the session closed with the agent's end
        sessions[0].server.send_nowait(
            SessionMessage(
                types.JSONRPCNotification(jsonrpc="2.0", method="notifications/tools/list_changed")
            )
        )
