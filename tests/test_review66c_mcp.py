"""Review 66c, mcp: `troth mcp connect` (the client-to-node path) when its side ends.

mcp 1: `troth mcp connect` read its agent's stdin with the MCP SDK's `stdio_server`, whose
reader is a worker thread that nothing cancels (review 65b2 fixed only `troth mcp gate`).
When the serving node ended the session (the channel closed, the node stopped, the
publication withdrawn), connect stopped forwarding but did not end: it waited for its agent's
next line, or for the agent to close its stdin, so an agent waiting on a call held a dead
connect for ever, and nothing told it the session was gone (exit 0 once it did end). The SDK's
reader also held a line of the agent of any length. Now connect reads its agent with
`agent_stdio` (within MAX_MCP_UPSTREAM_LINE), ends as soon as the server ends the session, and
exits 4 (`the MCP server at ROUTE ended the session`); an agent that closes its stdin still
ends it with exit 0.

mcp 2: SIGTERM, the MCP client's next step after closing a stdio server's stdin (the spec's
shutdown), killed `troth mcp gate` at once: its upstream runs in a session of its own (the SDK's
spawn), so the upstream and what it started (here a tool's child, `sleep 600`) were left
running, and the call under way was never recorded unanswered. Now SIGTERM ends the gate as its
agent's going away does (`on_sigterm`): the agent read no more, the requests read answered
(within MCP_GATE_DRAIN_SECONDS), the records written, the upstream's process group ended, exit
0; `troth mcp connect` the same way.

mcp 1 in process: the serving node is a fake transport whose server ends at once, the agent a pipe
that sends nothing (the test closes it in `finally`, which lets the unfixed reader's thread
end).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.message import SessionMessage

from tests.support.gates import TOOLS
from tests.test_mcp_channels import shop
from tests.test_review65b2_mcp import _DYING
from troth.clock import SystemClock
from troth.integrations.mcp import connect as connect_module
from troth.integrations.mcp.agent_stdio import on_sigterm
from troth.node import open_node
from troth.trace.dsse import parse_envelope
from troth.trace.log import open_node_log
from troth.trace.record_decode import decode_payload

ROUTE = "/tcp/127.0.0.1:9/service/mcp.orders"


class _Runtime:
    def __init__(self, node: object) -> None:
        self.node = node

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class _Node:
    def __init__(self) -> None:
        self.config = _Config()


@dataclasses.dataclass(frozen=True)
class _Config:
    services: tuple[str, ...] = ("x",)


class _Transport:
    """The server's side: it ends the session at once (`ends`), or once the client's stream
    ends."""

    def __init__(self, ends: bool) -> None:
        self.ends = ends

    async def __aenter__(self) -> tuple[Any, Any]:
        to_client, self.read = anyio.create_memory_object_stream[SessionMessage | Exception](1)
        self.write, from_client = anyio.create_memory_object_stream[SessionMessage](1)
        self.server, self.client = to_client, from_client
        if self.ends:
            to_client.close()
            return self.read, self.write
        return self.read, _Echo(self.write, to_client)

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        self.client.close()


class _Echo:
    """The client's write stream to a server that ends the session when the client's stream
    ends."""

    def __init__(self, stream: Any, server: Any) -> None:
        self.stream, self.server = stream, server

    async def send(self, item: SessionMessage) -> None:
        await self.stream.send(item)

    async def __aenter__(self) -> _Echo:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.aclose()
        self.server.close()


def _fake_node(monkeypatch: pytest.MonkeyPatch, *, ends: bool) -> None:
    @contextlib.contextmanager
    def open_node(name: str, *, home: Path) -> Iterator[_Node]:
        yield _Node()

    @contextlib.asynccontextmanager
    async def connect(runtime: object, identity: str, to: str, **_: object) -> AsyncIterator[Any]:
        yield _Transport(ends)

    monkeypatch.setattr(connect_module, "open_node", open_node)
    monkeypatch.setattr(connect_module, "NodeRuntime", _Runtime)
    monkeypatch.setattr(connect_module, "connect", connect)


@contextlib.contextmanager
def _agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """This process's stdin a pipe (yields its write end, closed afterwards), stdout a sink."""
    read, write = os.pipe()
    stdin = io.TextIOWrapper(os.fdopen(read, "rb", buffering=0))
    sink = io.TextIOWrapper(io.BytesIO())
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", sink)
    try:
        yield write
    finally:
        with contextlib.suppress(OSError):
            os.close(write)  # the unfixed reader's thread sees the end and ends


def _serve(tmp_path: Path, outcome: list[BaseException | None]) -> None:
    try:
        anyio.run(lambda: connect_module.serve_connect(tmp_path, "agent", "support", ROUTE))
        outcome.append(None)
    except BaseException as exc:
        outcome.append(exc)


def test_connect_ends_with_an_io_error_when_the_server_ends_the_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_node(monkeypatch, ends=True)
    outcome: list[BaseException | None] = []
    with _agent(monkeypatch):
        served = threading.Thread(target=_serve, args=(tmp_path, outcome), daemon=True)
        served.start()
        served.join(5)  # the agent sends nothing and keeps its stdin open
        ended = not served.is_alive()
    served.join(5)
    assert ended, "troth mcp connect waited for its agent's next line"
    assert isinstance(outcome[0], OSError), outcome
    assert str(outcome[0]) == f"the MCP server at {ROUTE} ended the session"


def test_connect_ends_without_error_when_its_agent_closes_its_stdin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_node(monkeypatch, ends=False)
    outcome: list[BaseException | None] = []
    with _agent(monkeypatch) as write:
        os.close(write)  # the agent goes away
        served = threading.Thread(target=_serve, args=(tmp_path, outcome), daemon=True)
        served.start()
        served.join(5)
    served.join(5)
    assert outcome == [None]


_STUCK = _DYING.replace(
    "  # dies with the call unanswered\n        os._exit(0)\n",
    """  # a tool's child, the call unanswered
        import subprocess
        child = subprocess.Popen(["sleep", "600"], stdout=subprocess.DEVNULL)
        open(sys.argv[2], "w").write(str(child.pid))
""",
)


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value) + "\n").encode()


def _alive(pid: int) -> bool:
    """Whether `pid` is still the upstream's child, `sleep 600` (not a pid reused since), and
    not a zombie."""
    try:
        named = Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00600\x00"
        return named and Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_ends_the_gate_and_its_upstream_and_records_the_call_under_way(
    troth_home: Path, tmp_path: Path
) -> None:
    assert end_the_gate(troth_home, tmp_path, "sigterm") == 0


def end_the_gate(troth_home: Path, tmp_path: Path, how: str) -> int:
    """`troth mcp gate`, a call under way at its upstream (which started a child), ended by
    its agent `how` ("sigterm", or "eof": its stdin closed): its exit code, once the child is
    seen gone and the call recorded allowed, then unanswered."""
    shop(troth_home, SystemClock())
    script, called = tmp_path / "stuck.py", tmp_path / "called"
    script.write_text(_STUCK)
    upstream = f"{sys.executable} {script} '{json.dumps(TOOLS['lookup_order'])}' {called}"
    gate = subprocess.Popen(
        [
            *(sys.executable, "-m", "troth.cli.main", "mcp", "gate", "--as", "support"),
            *("--upstream", upstream, "--node", "shop"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    pid = None
    try:
        assert gate.stdin is not None
        assert gate.stdout is not None
        hello = {"protocolVersion": "2025-06-18", "capabilities": {}}
        hello["clientInfo"] = {"name": "agent", "version": "1"}
        gate.stdin.write(
            _line({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
        )
        gate.stdin.write(_line({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        call = {"name": "lookup_order", "arguments": {"order_id": "o1"}}
        gate.stdin.write(_line({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}))
        gate.stdin.flush()
        assert json.loads(gate.stdout.readline())["id"] == 1
        for _ in range(1000):  # the upstream has the call, its child started
            if called.exists() and called.read_text():
                break
            time.sleep(0.01)
        pid = int(called.read_text())
        if how == "sigterm":  # MCP's shutdown: the client's next step after stdin
            gate.send_signal(signal.SIGTERM)
        else:
            gate.stdin.close()
        code = gate.wait(60)  # (about 3.5 s idle: the drain, then the group ended)
        for _ in range(300):  # the upstream's group ends with it (SIGTERM, then SIGKILL)
            if not _alive(pid):
                break
            time.sleep(0.01)
        assert not _alive(pid), "the upstream's child outlived the gate"
    finally:
        if gate.poll() is None:
            gate.kill()
            gate.wait(10)
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)
    with (
        open_node("shop", home=troth_home) as node,
        open_node_log(node, clock=SystemClock()) as log,
    ):
        decided = [decode_payload(parse_envelope(s.envelope).payload) for s in log.records()]
    outcomes = [r.decision for r in decided if r.tool and r.tool.name == "lookup_order"]
    assert len(outcomes) == 2, outcomes  # allowed, then unanswered
    return code


def test_sigterm_in_the_block_acts_and_the_handler_before_is_restored() -> None:
    got: list[str] = []

    def before(signum: int, frame: object) -> None:
        got.append("before")

    previous = signal.signal(signal.SIGTERM, before)
    try:

        async def main() -> None:
            done = anyio.Event()

            def act() -> None:
                got.append("act")
                done.set()

            async with on_sigterm(act):
                os.kill(os.getpid(), signal.SIGTERM)
                with anyio.fail_after(5):
                    await done.wait()

        anyio.run(main)
        assert signal.getsignal(signal.SIGTERM) is before
        os.kill(os.getpid(), signal.SIGTERM)
        assert got == ["act", "before"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_ends_connect_as_its_agents_end_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_node(monkeypatch, ends=False)
    before = signal.signal(signal.SIGTERM, lambda signum, frame: None)  # never the default
    try:
        with _agent(monkeypatch):  # the agent sends nothing and keeps its stdin open

            async def main() -> None:
                with anyio.fail_after(5):
                    async with anyio.create_task_group() as group:
                        group.start_soon(
                            connect_module.serve_connect, tmp_path, "agent", "support", ROUTE
                        )
                        await anyio.sleep(0.2)  # serving (an earlier SIGTERM: dropped, fails)
                        os.kill(os.getpid(), signal.SIGTERM)

            anyio.run(main)  # connect returned: exit 0
    finally:
        signal.signal(signal.SIGTERM, before)
