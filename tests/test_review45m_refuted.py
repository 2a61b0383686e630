"""Review 45m (gates, MCP): attacks an agent makes on the MCP gate that were refuted, pinned.

The gate is an MCP `Server` of the SDK built per connection with two handlers (tools/list,
tools/call): every JSON-RPC message the agent sends is parsed once, by the SDK, and an allowed
call goes to the upstream through the gate's own client, re-encoded from the dict the policies
judged. So:

1. A parser differential by duplicate JSON keys (`"name"` or an argument twice, where the
   gate and the upstream might each keep another one) has nothing to act on: the upstream
   receives exactly the name and arguments judged and recorded (the SDK keeps the last).
2. A JSON-RPC batch (an array) is not a message: refused at decoding (stdio and the channel
   frames alike), nothing decided, nothing run.
3. A tools/call sent as a notification (no id), a progress notification carrying a tool
   name, a task-augmented call (`task`) and a call with `_meta` never reach the upstream
   undecided: the first two run nothing, the last two are decided as any call.
4. A policy store that fails (its engine raising, e.g. SQLite "database is locked") runs no
   tool and lists none: the agent gets an error.
5. A caveat naming an argument the tool lacks, or a tag the chain lacks, denies (an erring
   forbid never lets an Allow through); a look-alike argument value (U+043E, Cyrillic small
   o) is not the one a caveat allows.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from tests.support.gates import T, make_world
from tests.support.mcp_orders import orders_server, text
from troth.clock import FixedClock
from troth.credentials import VerifiedFeed
from troth.errors import DecodeError
from troth.gates import DecisionPoint, ListRecorder, Outcome, PolicyEngine, ToolCall
from troth.identity import Identifier
from troth.integrations.mcp.channel import decode_message
from troth.integrations.mcp.gate import McpGate, gate_server

INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "agent", "version": "1"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


class Spy:
    """The upstream as the gate sees it, keeping every call it forwards."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls: list[tuple[str, dict[str, Any] | None]] = []

    async def list_tools(self, *, cursor: str | None = None) -> types.ListToolsResult:
        return await self.client.list_tools(cursor=cursor)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        self.calls.append((name, arguments))
        return await self.client.call_tool(name, arguments)


def _raw(
    lines: list[bytes], answers: set[int]
) -> tuple[dict[int, dict[str, Any]], list[tuple[str, dict[str, Any] | None]], ListRecorder]:
    """Send `lines` (raw JSON-RPC, each parsed as the stdio transport parses a line) to a gate
    for the support agent after the handshake; wait for the answers of ids `answers`: those
    answers, what reached the upstream, and the decisions recorded."""
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = world.credential(world.support_chain, world.support)
    got: dict[int, dict[str, Any]] = {}

    async def main() -> list[tuple[str, dict[str, Any] | None]]:
        async with Client(orders_server(), cache=None) as upstream:
            spy = Spy(upstream)
            server = gate_server(McpGate(point, spy, clock=FixedClock(T + 10)), caller)
            to_gate, gate_in = anyio.create_memory_object_stream[SessionMessage | Exception](64)
            gate_out, from_gate = anyio.create_memory_object_stream[SessionMessage](64)
            async with anyio.create_task_group() as group:
                options = server.create_initialization_options()
                group.start_soon(server.run, gate_in, gate_out, options)
                for line in [json.dumps(INIT).encode(), json.dumps(INITIALIZED).encode(), *lines]:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                    await to_gate.send(SessionMessage(message))
                with anyio.fail_after(60):  # a bound on a hang only: nothing is timed
                    while not answers <= set(got):
                        answer = (await from_gate.receive()).message
                        dumped = answer.model_dump(by_alias=True, exclude_none=True)
                        if isinstance(dumped.get("id"), int):
                            got[dumped["id"]] = dumped
                group.cancel_scope.cancel()
            return spy.calls

    calls = anyio.run(main)
    return got, calls, recorder


def _line(value: Any) -> bytes:
    return json.dumps(value).encode()


def _denial(answer: dict[str, Any]) -> str:
    result = answer["result"]
    assert result["isError"] is True
    return str(result["content"][0]["text"])


def test_duplicate_keys_run_exactly_what_was_judged() -> None:
    """1: `name` twice (a hidden tool first) and `amount` twice (over the cap first): the
    upstream runs the one name and the arguments judged, recorded, and no other."""
    line = (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"export_customers",'
        b'"name":"refund","arguments":{"order_id":"o1","amount":5000,"amount":20}}}'
    )
    got, calls, recorder = _raw([line], {1})
    assert got[1]["result"]["isError"] is False
    assert calls == [("refund", {"order_id": "o1", "amount": 20})]
    (record,) = recorder.records
    assert isinstance(record.request, ToolCall)
    assert (record.request.tool, dict(record.request.arguments)) == calls[0]
    assert record.decision.allowed


def test_a_batch_is_not_a_message() -> None:
    """2: a JSON-RPC batch is refused at decoding, by the stdio transport's parser and by the
    channel frames' (`decode_message`)."""
    batch = _line(
        [{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "refund"}}]
    )
    with pytest.raises(ValidationError):
        types.jsonrpc_message_adapter.validate_json(batch, by_name=False)
    with pytest.raises(DecodeError):
        decode_message(batch)


def test_notifications_and_extra_fields_never_reach_the_upstream_undecided() -> None:
    """3: a tools/call without an id and a progress notification naming a tool run nothing;
    a call with `task` (a tool no permit allows) and one with `_meta` (over the cap) are
    denied; the allowed lookup after them is the only call forwarded."""
    export = {"name": "export_customers", "arguments": {}}
    lines = [
        _line({"jsonrpc": "2.0", "method": "tools/call", "params": export}),
        _line(
            {
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {"progressToken": 1, "progress": 1, **export},
            }
        ),
        _line(
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {**export, "task": {"ttl": 1000}},
            }
        ),
        _line(
            {
                "jsonrpc": "2.0",
                "id": 4,
                "method": "tools/call",
                "params": {
                    "name": "refund",
                    "arguments": {"order_id": "o1", "amount": 5000},
                    "_meta": {"progressToken": "p"},
                },
            }
        ),
        _line(
            {
                "jsonrpc": "2.0",
                "id": 5,
                "method": "tools/call",
                "params": {"name": "lookup_order", "arguments": {"order_id": "o1"}},
            }
        ),
    ]
    got, calls, recorder = _raw(lines, {3, 4, 5})
    # export_customers is hidden from the caller: told as undeclared (review 47h, gates 1)
    assert _denial(got[3]) == "troth: denied: the policy bundle declares no such tool"
    assert _denial(got[4]) == "troth: denied by policy refund-cap"
    assert got[5]["result"]["isError"] is False
    assert calls == [("lookup_order", {"order_id": "o1"})]
    outcomes = sorted(record.decision.outcome.value for record in recorder.records)
    assert outcomes == ["allowed", "forbidden", "no-permit"]


class _Unavailable:
    """A policy source whose storage fails."""

    def engine(self, authority: Identifier, *, feed: VerifiedFeed | None, now: int) -> PolicyEngine:
        raise sqlite3.OperationalError("database is locked")


def test_a_failing_policy_store_runs_and_lists_nothing() -> None:
    """4: the engine's source raising lists no tool and runs none: the agent gets errors."""
    world = make_world()
    recorder = ListRecorder()
    point = DecisionPoint(_Unavailable(), world.held_feed, recorder=recorder)
    caller = world.credential(world.support_chain, world.support)
    outcomes: list[str] = []

    async def main() -> list[tuple[str, dict[str, Any] | None]]:
        async with Client(orders_server(), cache=None) as upstream:
            spy = Spy(upstream)
            gate = McpGate(point, spy, clock=FixedClock(T + 10))
            async with Client(gate_server(gate, caller), mode="legacy", cache=None) as agent:
                for ask in (
                    agent.list_tools(),
                    agent.call_tool("lookup_order", {"order_id": "o1"}),
                ):
                    try:
                        answer = await ask
                    except Exception as exc:  # the SDK's error answer
                        outcomes.append(type(exc).__name__)
                    else:
                        outcomes.append(repr(answer))
            return spy.calls

    assert anyio.run(main) == []
    assert outcomes == ["MCPError", "MCPError"]
    assert recorder.records == []


@pytest.mark.parametrize(
    ("caveat", "order", "outcome"),
    [
        ("context.args.amount <= 10", "o1", Outcome.EVALUATION_ERROR),
        ('principal.getTag("nope").contains("x")', "o1", Outcome.EVALUATION_ERROR),
        ('context.args.order_id == "o1"', "\u043e1", Outcome.FORBIDDEN),
        ('context.args.order_id == "o1"', "o1", Outcome.ALLOWED),
    ],
)
def test_a_caveat_that_errs_or_a_look_alike_denies_over_mcp(
    caveat: str, order: str, outcome: Outcome
) -> None:
    """5: the sub-agent's caveat, through the MCP gate and a real client."""
    world = make_world(sub_caveats=(caveat,))
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = world.credential(world.sub_chain, world.sub)

    async def main() -> types.CallToolResult:
        async with Client(orders_server(), cache=None) as upstream:
            gate = McpGate(point, upstream, clock=FixedClock(T + 10))
            async with Client(gate_server(gate, caller), mode="legacy", cache=None) as agent:
                return await agent.call_tool("lookup_order", {"order_id": order})

    result = anyio.run(main)
    (record,) = recorder.records
    assert record.decision.outcome is outcome
    assert result.is_error is (outcome is not Outcome.ALLOWED)
    if outcome is Outcome.ALLOWED:
        assert text(result) == "order o1: 2 items, paid"
