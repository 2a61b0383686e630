"""Review 62c, mcp: adversarial review of the MCP integration (the gate, a published server's
sessions over secure channels).

1. A client of the 2026-07-28 protocol (each request carrying its own envelope in `_meta`, no
   `initialize`) gets every result stamped with the gate's `serverInfo` in the result's
   `_meta` (the SDK's runner), which the gate's limit of a result (`result_limit`, review 58v,
   mcp 2) did not count: with a long request id, a result the narrowed limit let through made
   a frame over MAX_MCP_FRAME, so the client got the channel's "message is over the limit"
   error in its place while the trace recorded the call allowed only (served).
"""

from __future__ import annotations

import json
from typing import Any

import anyio

from tests.support.gates import make_world
from tests.test_review47m_mcp_cancel import Blocking, gate_of, outcomes
from tests.test_review58f_mcp import offer
from tests.test_review58j_refuted import _answers
from tests.test_review58t_mcp import SERVED_EMPTY, answering
from tests.test_review58v_mcp import LONG_ID
from troth import __version__, limits
from troth.gates import ListRecorder
from troth.integrations.mcp.channel import new_session, run_session
from troth.integrations.mcp.gate import GATE_NAME, gate_server

ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "agent", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
"""A 2026-07-28 request's envelope (`params._meta`): no handshake before it."""


def modern_call(ident: Any, order: str = "o1") -> dict[str, Any]:
    """A 2026-07-28 tools/call of lookup_order, its id `ident`."""
    params = {"name": "lookup_order", "arguments": {"order_id": order}, "_meta": ENVELOPE}
    return {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params}


def modern_session(upstream: Blocking, *requests: dict[str, Any]) -> tuple[list[Any], Any]:
    """The answers a session over a secure channel (`run_session`) gave `requests` of a
    2026-07-28 client (no initialize), sent in turn; and the trace (a ListRecorder)."""
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    recorder, frames = ListRecorder(), []

    async def way_back(frame: bytes) -> bool:
        frames.append(frame)
        return True

    async def main() -> None:
        async with gate_of(world, upstream, recorder) as gate:
            inbound, read = anyio.create_memory_object_stream[Any](limits.MAX_MCP_QUEUE)
            async with anyio.create_task_group() as tg:
                server = gate_server(gate, support)
                tg.start_soon(run_session, server, read, new_session(), way_back)
                for request in requests:
                    assert offer(inbound, request)
                with anyio.move_on_after(5):
                    while len(_answers(frames)) < len(requests):
                        await anyio.sleep(0.01)
                tg.cancel_scope.cancel()

    anyio.run(main)
    return _answers(frames), recorder


def test_a_modern_clients_result_filling_the_frame_left_by_its_long_id_is_not_lost() -> None:
    """mcp 1: the result fills what a long id leaves of a frame as the gate counted it (58v,
    mcp 2), but a 2026-07-28 answer carries the gate's serverInfo stamp besides: the frame
    would be over the limit, so the gate refuses the result as it comes and records the call
    unanswered (before: the channel's error, the call recorded served)."""
    ident = f"1{LONG_ID}"
    size = limits.MAX_MCP_FRAME - 73 - len(json.dumps(ident)) - SERVED_EMPTY
    (answer,), recorder = modern_session(answering(size), modern_call(ident))
    assert answer["error"]["message"].startswith("troth: the upstream's answer is over the")
    assert outcomes(recorder) == [("lookup_order", "allowed"), ("lookup_order", "unanswered")]


def test_a_modern_clients_result_filling_its_frame_with_the_stamp_is_served_whole() -> None:
    """The limit narrowed for the stamp is exact: a result filling what the long id and the
    2026-07-28 serverInfo stamp leave of a frame is served whole, recorded allowed only."""
    ident = f"1{LONG_ID}"
    stamp = {"io.modelcontextprotocol/serverInfo": {"name": GATE_NAME, "version": __version__}}
    extra = len(',"_meta":' + json.dumps(stamp, separators=(",", ":")))
    size = limits.MAX_MCP_FRAME - 73 - len(json.dumps(ident)) - SERVED_EMPTY - extra
    (answer,), recorder = modern_session(answering(size), modern_call(ident))
    assert len(answer["result"]["content"][0]["text"]) == size
    assert answer["result"]["_meta"] == stamp
    assert outcomes(recorder) == [("lookup_order", "allowed")]
