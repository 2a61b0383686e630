"""Review 70u (70l's MCP held-weight limits, area mcpheld): attacks that did not work, kept as
passing tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import MemNet, run_memnet
from troth.errors import RemoteError

_SHAPES: dict[str, Any] = {
    "floats": [0.5 + i for i in range(50_000)],
    "big ints": [10**18 + i for i in range(50_000)],
    "long distinct keys": {f"{i:07d}" * 4: 0 for i in range(10_000)},
    "nested small lists": [[[[]]] for _ in range(30_000)],
    "nested small objects": [{"a": {"b": {}}} for _ in range(20_000)],
    "4-byte chars": ["\U0001f600" * 10 for _ in range(20_000)],
    "one 4-byte char each": ["\U0001f600" for _ in range(50_000)],
    "2-byte chars": ["\u4e00" for _ in range(50_000)],
}


@pytest.mark.parametrize("shape", sorted(_SHAPES))
def test_mcpheld_refuted_shapes_weigh_at_least_what_they_hold(shape: str) -> None:
    """70u mcpheld, refuted: shapes `sys.getsizeof` might undercount (floats, big ints, many
    distinct long keys, deep small containers, strings of 2- and 4-byte characters) weigh at
    least what tracemalloc measures of the decoded request (ints of one digit did not:
    test_review70u_mcpheld.py, mcpheld 1)."""
    from tests.test_review70u_mcpheld import decoded_call
    from troth.integrations.mcp.held import message_weight

    item, held = decoded_call({"x": _SHAPES[shape]})
    assert message_weight(item, 1 << 40) >= held


@pytest.mark.parametrize("method", ["ping", "x/unknown"])
def test_mcpheld_refuted_a_request_cancelled_as_it_comes_lets_go(
    tmp_path: Path, method: str
) -> None:
    """70u mcpheld, refuted: a request the gate's handlers never run (a ping, an unknown
    method) and its `notifications/cancelled` sent together: had the SDK settled it unanswered,
    its weight stayed held for ever; the SDK answers it before it reads the cancellation."""
    import anyio

    from tests.test_mcp_channels import orders_by_frames
    from troth.integrations.mcp.frames import McpFrame
    from troth.node.services import call

    async def test(net: MemNet) -> None:
        service, writer, address = await orders_by_frames(net, "read")

        async def send(value: object) -> None:
            frame = McpFrame(b"c" * 16, json.dumps(value).encode()).encode()
            await call(writer.router, address, "send", [frame, "w"])

        await send({"jsonrpc": "2.0", "id": 99, "method": "ping"})
        (key,) = service.sessions
        held = service.sessions[key].held
        notice = {"jsonrpc": "2.0", "method": "notifications/cancelled"}
        for ident in range(1, 9):
            async with anyio.create_task_group() as both:  # on their way together
                both.start_soon(send, {"jsonrpc": "2.0", "id": ident, "method": method})
                both.start_soon(send, {**notice, "params": {"requestId": ident}})
        await send({"jsonrpc": "2.0", "id": 100, "method": "ping"})
        with anyio.fail_after(10):  # all settled: nothing held
            while len(held):
                await anyio.sleep(0.01)

    run_memnet(test, tmp_path)


def test_mcpheld_refuted_a_duplicate_id_refused_keeps_the_first_held(tmp_path: Path) -> None:
    """70u mcpheld, refuted: a request of an id the session holds is refused at `send`; the
    refusal does not let go of the first one's weight (its answer still does)."""
    from tests.test_mcp_channels import orders_by_frames
    from troth.integrations.mcp.frames import McpFrame
    from troth.node.services import call

    async def test(net: MemNet) -> None:
        service, writer, address = await orders_by_frames(net, "read")
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        frame = McpFrame(b"d" * 16, json.dumps(ping).encode()).encode()
        await call(writer.router, address, "send", [frame, "w"])
        (key,) = service.sessions
        held = service.sessions[key].held
        assert held.take(7, 1000)  # a request of id 7 waiting
        again = McpFrame(b"d" * 16, json.dumps({**ping, "id": 7}).encode()).encode()
        with pytest.raises(RemoteError, match="the MCP session holds"):
            await call(writer.router, address, "send", [again, "w"])
        assert held._by_id.get(7) == 1000
        held.let_go(7)

    run_memnet(test, tmp_path)
