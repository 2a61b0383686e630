"""Review 55x: attacks on the fixes of reviews 55r (control connection, socket directory) and
55s (requests in progress of an MCP session) that did not work. Each would fail if the
defence broke."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest

from tests.support.gates import make_world
from tests.test_review36d_socket_dir import long_home
from tests.test_review47m_mcp_cancel import Blocking, gate_of
from tests.test_review55r_socket_dir import _linked
from tests.test_review55s_mcp import _run, call, raw, raw_session
from troth import limits
from troth.gates import ListRecorder
from troth.integrations.mcp.gate import gate_server
from troth.node.daemon import _control_request
from troth.node.node import node_dir
from troth.node.socket_dir import _socket_path

_PLANT = (
    "import socket, sys, time\n"
    "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(5)\n"
    "print('ready', flush=True); time.sleep(60)\n"
)


def test_a_listener_planted_while_the_connect_waits_is_refused(tmp_path: Path) -> None:
    """55r's `_connect` retries while the node's backlog is full: the node dies meanwhile and
    another process binds the socket's name. The retry connects to it, but the peer check is
    made on the socket finally connected: it is refused, nothing sent."""
    path = str(tmp_path / "c.sock")
    node = socket.socket(socket.AF_UNIX)
    node.bind(path)
    node.listen(0)
    fillers: list[socket.socket] = []
    while True:  # the node's backlog full: a connect fails with EAGAIN
        filler = socket.socket(socket.AF_UNIX)
        filler.setblocking(False)
        fillers.append(filler)
        try:
            filler.connect(path)
        except BlockingIOError:
            break

    async def main() -> None:
        asking = asyncio.create_task(_control_request(path, "status", {}, 20.0, os.getpid()))
        await asyncio.sleep(0.1)  # it retries
        plant = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _PLANT, f"{path}.new", stdout=asyncio.subprocess.PIPE
        )
        try:
            assert plant.stdout is not None
            assert await plant.stdout.readline() == b"ready\n"
            node.close()  # the node died; its socket's name taken by another process
            os.rename(f"{path}.new", path)
            with pytest.raises(ConnectionRefusedError, match=f"pid {plant.pid}"):
                await asking
        finally:
            plant.kill()
            await plant.wait()

    try:
        asyncio.run(main())
    finally:
        for filler in fillers:
            filler.close()


def test_a_relative_base_with_dot_dot_through_our_link_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A legitimate base is not refused by 55x's walk: relative, through our own link in a
    sticky directory, with a `..` after it (resolved as the kernel does, from the link's
    target)."""
    ours, link = _linked(tmp_path)
    (ours / "run").mkdir(0o700)
    monkeypatch.chdir(link.parent)
    home, _ = long_home(tmp_path, monkeypatch, Path(f"{link.name}/run/../run"))
    path = _socket_path(node_dir(home, "n"))
    assert (ours / "run" / f"troth-{os.getuid()}").is_dir()
    assert path.parent.resolve() == ours / "run" / f"troth-{os.getuid()}"


def test_a_cancelled_or_failed_call_releases_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """55s's `_InProgress` with room for one request: a call cancelled by the client while it
    waits at the upstream, and a call the gate denies (an unknown tool), each give their place
    back; a leak would refuse every later call of the session ("requests in progress")."""
    monkeypatch.setattr(limits, "MAX_MCP_CALLS_PER_SESSION", 1)
    monkeypatch.setattr(limits, "MAX_MCP_QUEUE", 0)
    upstream = Blocking()
    answers: list[Any] = []

    async def main() -> None:
        async with raw_session(upstream, ListRecorder()) as (send, out):
            await send.send(call(1, "lookup_order", {"order_id": "o1"}))
            await upstream.started.wait()
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled"}
            await send.send(raw({**cancel, "params": {"requestId": 1}}))
            with anyio.fail_after(10):  # a leaked place is never given back
                for ident in range(2, 1000):  # until the cancel has been handled
                    await send.send(call(ident, "no_such_tool", {}))
                    answer = (await out.receive()).message
                    if "requests in progress" not in str(answer):
                        break
                    await anyio.sleep(0.05)
                answers.append(answer)
                await send.send(call(1000, "refund", {"order_id": "o1", "amount": 5}))
                answers.append((await out.receive()).message)

    anyio.run(main)
    assert "declares no such tool" in str(answers[0])  # denied
    assert answers[1].id == 1000
    assert isinstance(answers[1], types.JSONRPCResponse)
    assert "refunded 5" in str(answers[1].result)


def test_one_session_full_leaves_another_sessions_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """55s's count is per connection (one `_InProgress` per `gate_server`), not the gate's:
    a member's session holding its one place at a blocked upstream leaves another session of
    the same gate its own, answered."""
    monkeypatch.setattr(limits, "MAX_MCP_CALLS_PER_SESSION", 1)
    monkeypatch.setattr(limits, "MAX_MCP_QUEUE", 0)
    upstream = Blocking()
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    answers: list[Any] = []

    async def main() -> None:
        async with (
            gate_of(world, upstream, ListRecorder()) as gate,
            _run(gate_server(gate, support)) as (send, _),
            _run(gate_server(gate, support)) as (other, out),
        ):
            await send.send(call(1, "lookup_order", {"order_id": "o1"}))
            await upstream.started.wait()
            with anyio.fail_after(10):
                await other.send(call(2, "refund", {"order_id": "o1", "amount": 5}))
                answers.append((await out.receive()).message)
            upstream.release.set()

    anyio.run(main)
    assert isinstance(answers[0], types.JSONRPCResponse)
    assert "refunded 5" in str(answers[0].result)
