"""Review 70f (second review of tool-argument value limits and MCP charges), findings with
their fixes.

Values 1. MCP_VALUE_CHARGE (64 bytes a value, 69s wave2 2) priced a value at ~5.5 us of
decision, measured on flat arrays of small values. Values nested as records cost more: Cedar
builds and checks each record against its schema type, and troth's checks walk each level
again. Measured (`PolicyEngine.decide`, CPU time, this machine): 16,381 values as an array of
records nested five deep (`{"r": {"r": {"r": {"r": {"r": 1}}}}}`, ~110 KB, within
MAX_TOOL_SCHEMA_DEPTH) took ~0.26 s a call (Cedar's native call ~0.19 s of it), ~16 us a
value; records three deep ~0.18 s; an array of records of two fields ~0.13 s; flat integers
~0.06 s; one 1 MiB string ~0.04 s. Each such call was charged 1 MiB, so a member's 16 MiB
burst bought 16 of them at once (~4 s of CPU with the GIL held: the node's gate stopped) and
one a second after it (~0.26 CPU-seconds a second per member, 3x what the charge meant to
allow). MCP_VALUE_CHARGE is now 256 bytes a value: a call of the most values costs 4 MiB, so
a burst buys 4 (~1 s) and the rate one every 4 s (~0.065 CPU-seconds a second at worst, as a
1 MiB call of bytes costs ~0.04-0.09 s). An honest call at the limit still fits a burst
(69x's refuted test). The test counts what a burst buys, not time.

Values 2. The values' charge was taken after the frame was decoded, and a frame whose values
the member's budget could not pay was refused then: charged its bytes only for a decoding
paid for by the node (a 1 MiB frame of ~340,000 empty arrays, `[[],[],...]`, took ~0.2-0.4 s
of CPU to decode, most of it the garbage collector over its containers, ~0.08 s without it), so
a member at the edge of its budget had one decoded a second for 1 MiB; and a new session such
a frame opened stayed open with nothing delivered (closing_left.md, session 69). The values'
charge is now owed (`ByteBudgets.owe`, as a trace query's answer is): the frame is taken once
its bytes are paid, and its values take the member's budget below zero, so its next frames
wait until it refills. Nothing is refused after its decoding, so no session is left open by a
refusal; an honest call at the value limit is served, then its member waits ~4 s.

Values 3 (closed by review 70l, mcpwait 1: MAX_MCP_SESSION_HELD). The tools/call a session
holds in the gate (MAX_MCP_CALLS_PER_SESSION at the upstream, MAX_MCP_QUEUE more waiting for a
slot or for room for their answers) each hold their decoded arguments, bounded by count only. A
frame's JSON grows ~20x as Python objects: a 1 MiB frame of ~340,000 empty arrays held ~22 MB
(tracemalloc) while its call waits (a call over MAX_TOOL_ARGUMENT_VALUES is denied only once it
is decided). With 8 slow calls at the upstream, one session holds ~1.5 GB of waiting calls, one
member's 8 sessions ~12 GB, for ~2 GiB of its MCP budget (4 MiB a call: ~35 minutes at its
rate, minutes for a few members together), where the answers' side is bounded to 72 MiB a
member (MAX_MCP_SESSION_BACKLOG). Now each request is weighed as it is sent and a session holds
at most MAX_MCP_SESSION_HELD of them until answered (troth.integrations.mcp.held), and a call
over the value limit waits for no slot at the upstream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support.mcp_weights import weighed
from troth import limits
from troth.gates.toolschema import argument_values
from troth.integrations.mcp.channel import decode_message
from troth.node.services.mcp import _values_charge
from troth.rates import ByteBudgets

DEPTH = 5  # records under the array: the deepest MAX_TOOL_SCHEMA_DEPTH lets a schema declare


def _nested(leaf: int) -> object:
    value: object = leaf
    for _ in range(DEPTH):
        value = {"r": value}
    return value


def test_values_1_a_burst_buys_at_most_four_calls_of_nested_records() -> None:
    """70f values 1: calls of MAX_TOOL_ARGUMENT_VALUES values as records nested five deep
    (~0.26 s of CPU each, measured) were charged 1 MiB each: a member's burst bought 16 at
    once, ~4 s of CPU with the GIL held. Now at most 4 (~1 s)."""
    most = limits.MAX_TOOL_ARGUMENT_VALUES
    arguments = {"x": [_nested(i) for i in range((most - 1) // (DEPTH + 1))]}
    assert most - DEPTH <= argument_values(arguments) <= most
    message = _call(arguments)
    rates = ByteBudgets(
        rate=limits.MCP_BYTES_PER_SECOND, burst=limits.MCP_BURST_BYTES, max_sources=1
    )
    cost = max(len(message), limits.MCP_MESSAGE_CHARGE)
    valued = _values_charge(weighed(message)) - cost
    bought = 0
    while rates.take(b"m", cost, now=0):  # as McpService.send: its bytes, then its values owed
        rates.owe([b"m"], max(valued, 0), now=0)
        bought += 1
    assert bought <= 4, f"a burst buys {bought} calls of ~0.26 s each"
    # sustained: one such call takes more than 3 seconds of the member's rate (~4)
    assert cost + max(valued, 0) > 3 * limits.MCP_BYTES_PER_SECOND


def _call(arguments: Mapping[str, object]) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "lookup_order", "arguments": arguments},
        }
    ).encode()


def test_values_2_a_frame_dense_in_values_is_charged_whole_once_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """70f values 2: a tools/call whose bytes the member's budget held but not its values was
    decoded, then refused: charged its bytes only, and the new session it opened stayed open
    with nothing delivered. Now it is taken and its values owed: the member's next frame is
    refused until its budget refills."""
    from tests.support.nodes import MemNet, run_memnet
    from tests.test_mcp_channels import orders_by_frames
    from troth.errors import RemoteError
    from troth.integrations.mcp.frames import McpFrame
    from troth.node.services import call

    monkeypatch.setattr(limits, "MCP_BURST_BYTES", 256 << 10)
    monkeypatch.setattr(limits, "MCP_BYTES_PER_SECOND", 1)
    dense = _call({"order_id": "o1", "notes": [str(i) for i in range(2_000)]})
    ping = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'

    async def test(net: MemNet) -> None:
        service, writer, address = await orders_by_frames(net, "read")
        assert len(dense) < 256 << 10 < 2_000 * limits.MCP_VALUE_CHARGE
        await call(writer.router, address, "send", [McpFrame(b"d" * 16, dense).encode(), "w"])
        assert service.status()["sessions"] == 1
        with pytest.raises(RemoteError, match="MCP budget is spent"):
            await call(writer.router, address, "send", [McpFrame(b"p" * 16, ping).encode(), "w"])
        assert service.status()["sessions"] == 1

    run_memnet(test, tmp_path)


_DENSE = (b"[]", b"{}", b'{"":0}', b'{"a":[]}', b"1.5", b'"ab"', b'"\\ud83d\\ude00a"')
"""Items of the densest frames measured (review 70f, values 3; 70l, mcpwait 1): up to ~28 MB
decoded from one frame."""


def _dense_call(item: bytes, ident: int = 1) -> bytes:
    head = b'{"jsonrpc":"2.0","id":%d,"method":"tools/call",' % ident
    head += b'"params":{"name":"t","arguments":{"x":['
    body = b",".join([item] * ((limits.MAX_MCP_FRAME - len(head) - 64) // (len(item) + 1)))
    frame = head + body + b"]}}}"
    assert len(frame) <= limits.MAX_MCP_FRAME
    return frame


def test_values_3_the_arguments_a_members_waiting_calls_hold_are_bounded() -> None:
    """70f values 3 (70l mcpwait 1): the calls a session held waiting in the gate (each of
    MAX_MCP_CALLS_PER_SESSION + MAX_MCP_QUEUE, its arguments as decoded from one frame) were
    bounded by count only: ~22 MB a 1 MiB frame of empty arrays, ~1.5 GB a session, ~12 GB a
    member. Now each request is weighed as it is sent (`message_weight`, at least what
    tracemalloc measures of its decoding), and a session holds at most MAX_MCP_SESSION_HELD of
    them (one of any weight when it holds none): what a member's sessions hold of waiting
    calls is within MAX_MCP_SESSIONS_PER_PEER x (that, or one frame's weight)."""
    import tracemalloc

    from troth.integrations.mcp.held import HeldRequests, message_weight

    heaviest = 0
    for item in _DENSE:
        frame = _dense_call(item)
        tracemalloc.start()
        try:
            decoded = decode_message(frame)
            measured, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        weight = message_weight(decoded, 1 << 40)
        assert measured <= weight, (item, measured, weight)
        heaviest = max(heaviest, weight)
        held = HeldRequests(limits.MAX_MCP_SESSION_HELD)
        ident = 0
        while ident < limits.MAX_MCP_CALLS_PER_SESSION + limits.MAX_MCP_QUEUE and held.take(
            ident, message_weight(decoded, held.most)
        ):
            ident += 1
        assert 1 <= ident < limits.MAX_MCP_CALLS_PER_SESSION + limits.MAX_MCP_QUEUE, item
        assert held.total <= max(limits.MAX_MCP_SESSION_HELD, weight)
    per_member = limits.MAX_MCP_SESSIONS_PER_PEER * max(limits.MAX_MCP_SESSION_HELD, heaviest)
    assert per_member <= 384 << 20, f"{per_member >> 20} MiB of waiting calls a member"
    # an honest call at the limits (a frame, MAX_TOOL_ARGUMENT_VALUES): as many as run at once
    honest = {"x": [{"r": i} for i in range(limits.MAX_TOOL_ARGUMENT_VALUES // 2 - 1)]}
    honest["pad"] = "p" * (limits.MAX_MCP_FRAME - len(_call(honest)) - 1024)  # type: ignore[assignment]
    weight = message_weight(decode_message(_call(honest)), limits.MAX_MCP_SESSION_HELD)
    assert limits.MAX_MCP_CALLS_PER_SESSION * weight <= limits.MAX_MCP_SESSION_HELD
