"""Review 59a, refuted: attacks on the room a session's calls hold for their answers
(troth.integrations.mcp.room) that did not work; each test fails if the defence it names
breaks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from tests.support.gates import make_world
from tests.test_review47m_mcp_cancel import gate_of, outcomes
from tests.test_review58f_mcp import _settle, offer, served
from tests.test_review58j_refuted import _answers
from tests.test_review58t_mcp import answering, lookup, room_for
from tests.test_review58v_mcp import FULL
from tests.test_review59a_mcp import _until, reading_after
from troth import limits
from troth.gates import ListRecorder
from troth.integrations.mcp.channel import new_session, run_session
from troth.integrations.mcp.gate import gate_server

ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "agent", "version": "1"},
}
"""What a client of the 2026-07-28 protocol puts in every request's `_meta` (no handshake)."""


def _modern(ident: int) -> dict[str, Any]:
    message = lookup(ident)
    message["params"]["_meta"] = ENVELOPE
    return message


def test_a_modern_client_past_the_room_is_answered_whole() -> None:
    """A client of the 2026-07-28 protocol (the SDK serves each of its requests on its own, no
    handshake) with more calls than its backlog has room for, slow to read: the room promised
    to each call still meets its answer, so none ends the session; every call is answered and
    recorded allowed, once."""
    calls = room_for(FULL) + 2
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    recorder, upstream, release = ListRecorder(), answering(FULL), anyio.Event()
    frames: list[bytes] = []
    ended: list[bool] = []
    before: list[int] = []
    way_back = reading_after(release, frames)

    async def main() -> None:
        async with gate_of(world, upstream, recorder) as gate:
            inbound, read = anyio.create_memory_object_stream[Any](limits.MAX_MCP_QUEUE)
            async with anyio.create_task_group() as tg:

                async def serve() -> None:
                    await run_session(gate_server(gate, support), read, new_session(), way_back)
                    ended.append(True)

                tg.start_soon(serve)
                for ident in range(1, calls + 1):
                    await _settle()
                    assert offer(inbound, _modern(ident))
                await _until(lambda: upstream.answered >= room_for(FULL))
                before.append(upstream.answered)
                release.set()
                await _until(lambda: len(_answers(frames)) >= calls or bool(ended))
                inbound.close()
                tg.cancel_scope.cancel()

    anyio.run(main)
    assert before[0] < calls  # the client read none: the last call waited for room
    assert ended == []
    assert sorted(a["id"] for a in _answers(frames)) == list(range(1, calls + 1))
    assert outcomes(recorder) == [("lookup_order", "allowed")] * calls


def test_cancelling_answered_calls_frees_no_room() -> None:
    """The attacker fills its backlog with answers, then cancels the calls they answer
    (`notifications/cancelled`: the SDK ignores a request no longer in progress), hoping to get
    their room back while their answers still wait: its next calls still wait, undecided."""
    upstream, recorder, release = answering(FULL), ListRecorder(), anyio.Event()
    fits = room_for(FULL)
    answered: list[int] = []

    async def way_back(frame: bytes) -> bool:
        await release.wait()
        return True

    def cancel(ident: int) -> dict[str, Any]:
        params = {"requestId": ident, "reason": "gave up"}
        return {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}

    async def send(inbound: Any, messages: Callable[[int], dict[str, Any]], idents: range) -> None:
        for ident in idents:
            await _settle()
            assert offer(inbound, messages(ident))

    async def main() -> None:
        async with served(way_back, upstream, recorder, release) as (inbound, _):
            await send(inbound, lookup, range(1, fits + 1))
            await _until(lambda: upstream.answered >= fits)
            await send(inbound, cancel, range(1, fits + 1))
            await send(inbound, lookup, range(fits + 1, 2 * fits + 1))
            for _ in range(10):  # what would run has run
                await anyio.sleep(0.01)
            answered.append(upstream.answered)

    anyio.run(main)
    assert answered == [fits]
    assert outcomes(recorder) == [("lookup_order", "allowed")] * fits
