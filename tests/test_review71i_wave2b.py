"""Review 71i (the MCP held-weight changes of review 71a, area wave2b), findings.

Wave2b 1. A session holding no request took one of any weight whatever its server's pool
held (`HeldRequests.take`: the pool's room asked only of a session holding some), and that
weight was counted in the pool all the same. So one authority's members, each of their
sessions holding one request past the pool's bound, pushed the pool past twice
MAX_MCP_SERVER_HELD, where `Shares.room` refuses everyone: another authority's members,
holding nothing near their share, were refused theirs; and the pool was bounded by nothing
but the sessions' count (256 sessions, one request of up to ~4 MB weighed each, or ~50 MB
for a call over MAX_TOOL_ARGUMENT_VALUES while it is decided). A session holding none now
takes one request of any weight only when the pool has a byte of room for its authorities
(below its bound, or one of them holding less than its share).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from troth import limits

if TYPE_CHECKING:
    from troth.integrations.mcp.held import HeldRequests
    from troth.node.shares import Shares

_BOUND = 1 << 20
"""MAX_MCP_SERVER_HELD in these tests: 256 KiB each authority's share, two trusted."""


def _sessions(
    monkeypatch: pytest.MonkeyPatch, authority: bytes, count: int, shares: Shares
) -> list[HeldRequests]:
    """`count` sessions' held requests of members of `authority`, wired to `shares` as a
    published server wires them (`McpService._open`)."""
    from troth.integrations.mcp.held import HeldRequests
    from troth.node.services.mcp import _SharedHeld

    monkeypatch.setattr(limits, "MAX_MCP_SERVER_HELD", _BOUND)
    return [
        HeldRequests(limits.MAX_MCP_SESSION_HELD, _SharedHeld(shares, frozenset({authority})))
        for _ in range(count)
    ]


def test_wave2b_1_lone_requests_keep_another_authority_from_its_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71i wave2b 1: authority A's sessions fill the server's pool to its bound, then each of
    A's other sessions, holding none, takes one request of 700 KiB: the pool went past twice
    its bound, and a member of authority B, holding one small request, was refused a second
    well within B's share. Now A's lone requests past its share are refused, the pool stays
    within twice its bound and one request, and B takes its share."""
    from troth.node.shares import Shares

    shares = Shares(lambda: 2)  # A and B trusted: a share is _BOUND // 4
    first, *others = _sessions(monkeypatch, b"A", 8, shares)
    (theirs,) = _sessions(monkeypatch, b"B", 1, shares)
    assert theirs.take(1, 10_000)
    assert first.take(1, _BOUND - 10_000)
    for session in others:
        session.take(1, 700 << 10)
    assert shares.places <= 2 * _BOUND + (700 << 10)
    for ident in range(2, 20):  # B takes up to its share
        assert theirs.take(ident, 10_000)


def _initialize(icons: int) -> bytes:
    """A client's `initialize` whose client info lists `icons` icons."""
    hello = {"name": "agent", "version": "1", "icons": [{"src": "x"} for _ in range(icons)]}
    params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": hello}
    message = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
    return json.dumps(message).encode()


def test_wave2b_2_what_the_sdk_keeps_of_an_initialize_is_held_for_the_session() -> None:
    """71i wave2b 2: a session's `initialize` (its client info's 1,500 icons: ~0.52 MB
    weighed, under what a request but for a tools/call's arguments may weigh) was let go as
    it was answered, while the SDK keeps its params, as its typed models, for the session's
    life (the connection's `client_params`): ~1.1 MB a session held unweighed, ~285 MB of a
    server's 256 sessions outside MAX_MCP_SERVER_HELD. It is held until the session ends (or
    a later initialize is answered)."""
    import gc
    import tracemalloc

    import anyio

    from tests.support.gates import make_world
    from tests.test_review47m_mcp_cancel import Blocking, gate_of
    from tests.test_review70l_mcpwait import PING
    from troth.gates import ListRecorder
    from troth.integrations.mcp.channel import decode_message, run_session
    from troth.integrations.mcp.gate import gate_server
    from troth.integrations.mcp.held import HeldRequests, loose_most

    frame = _initialize(1500)
    held = HeldRequests(1 << 40)
    assert held.weigh(decode_message(frame), len(frame)).fits
    found: list[int] = []

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        answers = anyio.create_memory_object_stream[bytes](8)
        async with gate_of(world, Blocking(), ListRecorder()) as gate:
            inbound, read = anyio.create_memory_object_stream[Any](8)

            async def send(answer: bytes) -> bool:
                answers[0].send_nowait(answer)
                return True

            async with anyio.create_task_group() as group:
                server = gate_server(gate, support)
                group.start_soon(run_session, server, read, b"s" * 16, send, held)
                for message in (PING % 1, frame):  # the ping: the session's own objects made
                    if message is frame:
                        gc.collect()
                        tracemalloc.start()
                    item = decode_message(message)
                    assert held.hold(item, len(message))
                    await inbound.send(item)
                    del item
                    await answers[1].receive()
                await anyio.wait_all_tasks_blocked()
                gc.collect()
                kept, _ = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                found.extend((held.total, kept))
                inbound.close()

    anyio.run(main)
    weight, kept = found
    assert kept > loose_most()  # what the SDK keeps: more than any such request weighs
    assert weight >= kept


def test_wave2b_2_one_initialize_is_kept_the_pools_given_back_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71i wave2b 2: what is kept is the last initialize answered (the SDK replaces its
    params), not one refused (an error: the SDK keeps the earlier), and the session's end
    gives it back to the server's pool."""
    from tests.test_review55s_mcp import raw
    from troth.integrations.mcp.channel import decode_message
    from troth.integrations.mcp.held import KEPT_COPIES
    from troth.node.shares import Shares

    shares = Shares(lambda: 1)
    (held,) = _sessions(monkeypatch, b"A", 1, shares)
    weights = []
    for icons, answer in ((100, "result"), (10, "result"), (50, "error")):
        frame = _initialize(icons)
        weighed = held.weigh(decode_message(frame), len(frame))
        assert weighed.kept
        assert held.admit(weighed)
        weights.append(weighed.weight)
        reply = {"result": {}} if answer == "result" else {"error": {"code": 1, "message": "m"}}
        held.answered(raw({"jsonrpc": "2.0", "id": 0, **reply}))
    assert held.total == held.kept == shares.places == weights[1]
    assert weights[1] >= KEPT_COPIES * 4096
    assert held.take(0, 1)  # its id is free again
    held.close()
    assert (held.total, shares.places, shares.holders()) == (0, 0, 0)


def _modern_call(ident: int, icons: int) -> bytes:
    """A 2026-07-28 tools/call (its `_meta` the request's envelope: its client info listing
    `icons` icons)."""
    hello = {"name": "agent", "version": "1", "icons": [{"src": "x"} for _ in range(icons)]}
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": hello,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    params = {"name": "lookup_order", "arguments": {"order_id": "o1"}, "_meta": meta}
    message = {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params}
    return json.dumps(message).encode()


@pytest.mark.parametrize("icons", [0, 300], ids=["small", "300 icons"])
def test_wave2b_3_a_modern_calls_envelope_weighs_what_the_sdk_makes_of_it(
    monkeypatch: pytest.MonkeyPatch, icons: int
) -> None:
    """71i wave2b 3: in a 2026-07-28 session each request's `_meta` envelope (its client info
    and capabilities) is made the SDK's typed models again for it (`Connection.from_envelope`,
    held while it waits in the gate), weighed once: ten calls waiting for a slot held ~1.11
    times their weight, ~2 times with 300 icons in their client info."""
    import anyio

    from tests.support.gates import make_world
    from tests.support.mcp_weights import held_waiting
    from tests.test_review47m_mcp_cancel import Blocking, gate_of
    from troth.gates import ListRecorder
    from troth.integrations.mcp.channel import decode_message
    from troth.integrations.mcp.gate import gate_server
    from troth.integrations.mcp.held import HeldRequests

    monkeypatch.setattr(limits, "MAX_MCP_CALLS_PER_SESSION", 1)
    upstream, held = Blocking(), HeldRequests(1 << 40)
    frames = [_modern_call(ident, icons) for ident in range(10)]
    waiting = [0]

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        send, read = anyio.create_memory_object_stream[Any](64)
        write, _ = anyio.create_memory_object_stream[Any](64)
        async with gate_of(world, upstream, ListRecorder()) as gate:
            server = gate_server(gate, support)
            async with anyio.create_task_group() as group:
                group.start_soon(server.run, read, write, server.create_initialization_options())
                await send.send(decode_message(_modern_call(99, 0)))
                with anyio.fail_after(10):
                    await upstream.started.wait()  # the one slot taken: the others wait
                waiting[0] = await held_waiting(send, frames, held)
                upstream.release.set()
                group.cancel_scope.cancel()

    anyio.run(main)
    assert held.total >= waiting[0]
