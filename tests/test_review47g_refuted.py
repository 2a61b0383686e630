"""Review 47g (gates, MCP): attacks of an agent on the MCP gate that were refuted, pinned.

Review 45m pinned duplicate keys, batches, tools/call sent as a notification, `task` and
`_meta`. The gate is an MCP `Server` of the SDK with two handlers: each JSON-RPC message is
parsed once (by the SDK, the stdio transport and the channel frames alike), judged as the
values parsed (Cedar typed by the bundle's schema: closed records, `Long`, `String`), and an
allowed call goes to the upstream re-encoded from the dict judged. So:

1. Numbers: `1e2`, `100.0`, `-0.0`, NaN, ±Infinity (the SDK's parser takes them), integers
   past I-JSON or past i64, a string, a boolean or null where the schema says integer are
   denied before the upstream; `-0` is the integer 0, judged and forwarded as 0.
2. Strings: `\\u` escapes (in values and argument names), an escaped backslash before
   `u0000` (text, not a NUL: a NUL is denied, test_review47g_gates), a surrogate pair are
   decoded once: the upstream gets the string judged; a lone surrogate is not a message.
3. Tool names that differ from an allowed one by case, a space, a NUL, a zero-width or a
   fullwidth character are undeclared; `\\u0072efund` is `refund`, judged as it.
4. Arguments: an extra one, a missing one, none, null, Cedar's JSON escapes (`__entity`,
   `__extn`, `__expr`) as values, nesting past what Cedar reads: denied. An omitted argument
   a policy tests with `has` is judged with its default, which the upstream receives.
5. Odd request ids (1.0, null, true, an array, an object) make a notification (nothing runs);
   a response or an error the agent sends runs nothing; one id reused gets each call its own
   decision, only the allowed one forwarded.
6. Methods other than tools (resources, prompts, completion, logging, tasks, server/discover,
   sampling) are not found: nothing reaches the upstream, nothing is decided.
7. Cancellation and progress notifications carrying a tool name and arguments run nothing.
8. The 2026-07-28 per-request envelope (no handshake) is decided alike.
9. An upstream's answer to an id not in flight (the gate's next call's, had it been asked) is
   dropped by the gate's client; a sampling request from the upstream never reaches an agent.
   (An upstream that answers a call in flight with another's content is trusted with its
   answers: it could as well send that content as the call's own.)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import Client
from mcp.server import MCPServer
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from tests.support.gates import POLICIES, T, make_world
from tests.support.mcp_orders import orders_server, text
from tests.test_review45m_refuted import INIT, INITIALIZED, Spy
from troth.clock import FixedClock
from troth.errors import DecodeError
from troth.gates import ListRecorder, ToolCall
from troth.integrations.mcp.channel import decode_message
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server

Calls = list[tuple[str, dict[str, Any] | None]]
ARGUMENTS = DENIED_PREFIX + "denied: the arguments do not match the tool's input schema"
UNDECLARED = DENIED_PREFIX + "denied: the policy bundle declares no such tool"
MODERN = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "agent", "version": "1"},
}
SENTINEL_ID = 1000
SENTINEL_ARGS = {"order_id": "sentinel"}


def _call(ident: Any, name: str, arguments: str | None) -> bytes:
    """A tools/call line with `arguments` as raw JSON text (None: no arguments)."""
    args = "" if arguments is None else f',"arguments":{arguments}'
    return (
        f'{{"jsonrpc":"2.0","id":{json.dumps(ident)},"method":"tools/call",'
        f'"params":{{"name":"{name}"{args}}}}}'
    ).encode()


SENTINEL = _call(SENTINEL_ID, "lookup_order", json.dumps(SENTINEL_ARGS))


def _exchange(
    lines: list[bytes],
    answers: int,
    *,
    handshake: bool = True,
    policies: str = POLICIES,
) -> tuple[list[dict[str, Any]], Calls, ListRecorder]:
    """Send `lines` (raw JSON-RPC, parsed as the stdio transport and the channel frames parse
    a line) to a gate for the support agent and wait for `answers` answers (the handshake's
    not counted): those answers in order, what reached the upstream, the decisions recorded."""
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle(policies=policies)), recorder)
    caller = world.credential(world.support_chain, world.support)
    got: list[dict[str, Any]] = []

    async def main() -> Calls:
        async with Client(orders_server(), cache=None) as upstream:
            spy = Spy(upstream)
            server = gate_server(McpGate(point, spy, clock=FixedClock(T + 10)), caller)
            to_gate, gate_in = anyio.create_memory_object_stream[SessionMessage | Exception](64)
            gate_out, from_gate = anyio.create_memory_object_stream[SessionMessage](64)
            opening = [_line(INIT), _line(INITIALIZED)] if handshake else []
            async with anyio.create_task_group() as group:
                options = server.create_initialization_options()
                group.start_soon(server.run, gate_in, gate_out, options)
                for line in [*opening, *lines]:
                    await to_gate.send(decode_message(line))
                with anyio.fail_after(60):  # a bound on a hang only: nothing is timed
                    while len(got) < answers + (1 if handshake else 0):
                        answer = (await from_gate.receive()).message
                        got.append(answer.model_dump(by_alias=True, exclude_none=True))
                group.cancel_scope.cancel()
            return spy.calls

    calls = anyio.run(main)
    return got[1:] if handshake else got, calls, recorder


def _line(value: Any) -> bytes:
    return json.dumps(value).encode()


def _text(answer: dict[str, Any]) -> str:
    return str(answer["result"]["content"][0]["text"])


def _by_id(answers: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {answer["id"]: answer for answer in answers}


def _judged(recorder: ListRecorder) -> list[tuple[str, dict[str, Any], bool]]:
    out = []
    for record in recorder.records:
        assert isinstance(record.request, ToolCall)
        out.append((record.request.tool, dict(record.request.arguments), record.decision.allowed))
    return out


DENIED_NUMBERS = [
    "1e2",
    "100.0",
    "-0.0",
    "1000.5",
    "NaN",
    "Infinity",
    "-Infinity",
    "9007199254740993",
    "-9223372036854775809",
    "99999999999999999999999",
    '"5"',
    "true",
    "null",
    "[1]",
    '{"n":1}',
]


def test_numbers_are_denied_unless_judged_as_the_integer_forwarded() -> None:
    """1: every spelling but an integer is denied before the upstream; `-0` is 0."""
    lines = [
        _call(i, "refund", f'{{"order_id":"o1","amount":{number}}}')
        for i, number in enumerate(DENIED_NUMBERS)
    ]
    lines.append(_call(99, "refund", '{"order_id":"o1","amount":-0}'))
    answers, calls, recorder = _exchange(lines, len(lines))
    by_id = _by_id(answers)
    for i in range(len(DENIED_NUMBERS)):
        assert _text(by_id[i]) == ARGUMENTS, DENIED_NUMBERS[i]
    assert by_id[99]["result"]["isError"] is False
    assert calls == [("refund", {"order_id": "o1", "amount": 0})]
    (amount,) = [a["amount"] for tool, a, allowed in _judged(recorder) if allowed]
    assert type(amount) is int


def test_escaped_strings_are_decoded_once_and_forwarded_as_judged() -> None:
    """2: the upstream gets the strings judged and recorded, escapes decoded once."""
    lines = [
        _call(1, "lookup_order", '{"order_id":"\\u006f1"}'),
        _call(2, "lookup_order", '{"order\\u005fid":"o2"}'),
        _call(3, "lookup_order", '{"order_id":"o\\\\u00003"}'),
        _call(4, "lookup_order", '{"order_id":"\\ud83d\\ude00"}'),
    ]
    answers, calls, recorder = _exchange(lines, 4)
    assert all(a["result"]["isError"] is False for a in answers)
    forwarded = sorted(args["order_id"] for _, args in calls if args is not None)
    assert forwarded == sorted(["o1", "o2", "o\\u00003", "\U0001f600"])
    assert sorted([(t, a) for t, a, _ in _judged(recorder)], key=repr) == sorted(calls, key=repr)


@pytest.mark.parametrize("escaped", ['"\\ud800"', '"\\udc00\\ud800"', '"a\\ud83d"'])
def test_a_lone_surrogate_is_not_a_message(escaped: str) -> None:
    """2: what Cedar could not take (nor the upstream's parser) never reaches the gate."""
    line = _call(1, "lookup_order", f'{{"order_id":{escaped}}}')
    with pytest.raises(ValidationError):
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    with pytest.raises(DecodeError):
        decode_message(line)


def test_look_alike_tool_names_are_undeclared() -> None:
    """3: names one character off an allowed tool are denied; an escape of it is it."""
    arguments = '{"order_id":"o1","amount":20}'
    names = ["Refund", "REFUND", "refund ", " refund", "refund\\u0000", "ref\\u200bund"]
    names.append("\\uff52efund")  # fullwidth r
    lines = [_call(i, name, arguments) for i, name in enumerate(names)]
    lines.append(_call(99, "\\u0072efund", arguments))
    answers, calls, recorder = _exchange(lines, len(lines))
    by_id = _by_id(answers)
    for i, name in enumerate(names):
        assert _text(by_id[i]) == UNDECLARED, name
    assert by_id[99]["result"]["isError"] is False
    assert calls == [("refund", {"order_id": "o1", "amount": 20})]
    assert sum(allowed for _, _, allowed in _judged(recorder)) == 1


def test_arguments_beside_the_schema_are_denied() -> None:
    """4: extra, missing, none, null, Cedar's escapes as values, deep nesting."""
    deep = "[" * 150 + "]" * 150
    arguments = [
        '{"order_id":"o1","amount":20,"note":"x"}',
        '{"order_id":"o1"}',
        "{}",
        None,
        "null",
        '{"order_id":{"__entity":{"type":"Agent","id":"x"}},"amount":20}',
        '{"order_id":"o1","amount":{"__extn":{"fn":"decimal","arg":"1.0"}}}',
        '{"order_id":{"__expr":"\\"o1\\""},"amount":20}',
        '{"order_id":"o1","amount":20,"__entity":{"type":"Agent","id":"x"}}',
        f'{{"order_id":"o1","amount":20,"x":{deep}}}',
    ]
    lines = [_call(i, "refund", args) for i, args in enumerate(arguments)]
    answers, calls, recorder = _exchange(lines, len(lines))
    assert [_text(a) for a in answers] == [ARGUMENTS] * len(arguments)
    assert calls == []
    assert not any(allowed for _, _, allowed in _judged(recorder))


def test_nesting_past_the_parser_is_not_a_message() -> None:
    """4: arguments nested deeper than the SDK's parser reads never reach the gate."""
    deep = "[" * 3000 + "]" * 3000
    with pytest.raises(DecodeError):
        decode_message(_call(1, "refund", f'{{"order_id":"o1","amount":20,"x":{deep}}}'))


NO_CSV = (
    POLICIES
    + """
@id("export-support") permit(principal, action == Action::"invoke:export_customers", resource)
  when { principal.hasTag("orders.access") };
@id("no-csv") forbid(principal, action == Action::"invoke:export_customers", resource)
  when { context.args has fmt && context.args.fmt == "csv" };
"""
)


def test_an_omitted_argument_a_policy_tests_with_has_is_judged_with_its_default() -> None:
    """4: `fmt` omitted is the schema's default "csv" (forbidden), not an absent `fmt`; the
    allowed call goes to the upstream with the value judged."""
    lines = [
        _call(1, "export_customers", "{}"),
        _call(2, "export_customers", None),
        _call(3, "export_customers", '{"fmt":"json"}'),
    ]
    answers, calls, recorder = _exchange(lines, 3, policies=NO_CSV)
    by_id = _by_id(answers)
    assert _text(by_id[1]) == _text(by_id[2]) == DENIED_PREFIX + "denied by policy no-csv"
    assert by_id[3]["result"]["isError"] is False
    assert calls == [("export_customers", {"fmt": "json"})]
    assert sorted(_judged(recorder), key=repr) == [
        ("export_customers", {"fmt": "csv"}, False),
        ("export_customers", {"fmt": "csv"}, False),
        ("export_customers", {"fmt": "json"}, True),
    ]


def test_odd_ids_and_answers_from_the_agent_run_nothing() -> None:
    """5: a tools/call whose id is not an integer or a string is a notification; a response
    or an error the agent sends is no call. The sentinel after them is the only call."""
    export = '{"name":"export_customers","arguments":{}}'
    lines = [
        f'{{"jsonrpc":"2.0","id":{ident},"method":"tools/call","params":{export}}}'.encode()
        for ident in ("1.0", "null", "true", "[1]", '{"a":1}')
    ]
    lines.append(_line({"jsonrpc": "2.0", "id": 5, "result": {"content": []}}))
    lines.append(_line({"jsonrpc": "2.0", "id": 6, "error": {"code": 1, "message": "x"}}))
    lines.append(SENTINEL)
    answers, calls, recorder = _exchange(lines, 1)
    assert [a["id"] for a in answers] == [SENTINEL_ID]
    assert calls == [("lookup_order", SENTINEL_ARGS)]
    assert _judged(recorder) == [("lookup_order", SENTINEL_ARGS, True)]


def test_a_reused_id_gets_each_call_its_own_decision() -> None:
    """5: two calls of one id: the one over the cap denied, only the allowed one forwarded."""
    lines = [
        _call(7, "refund", '{"order_id":"o1","amount":5000}'),
        _call(7, "refund", '{"order_id":"o1","amount":20}'),
    ]
    answers, calls, recorder = _exchange(lines, 2)
    assert [a["id"] for a in answers] == [7, 7]
    assert sorted(_text(a) for a in answers) == [
        "refunded 20 on o1",
        DENIED_PREFIX + "denied by policy refund-cap",
    ]
    assert calls == [("refund", {"order_id": "o1", "amount": 20})]
    assert sorted(_judged(recorder), key=lambda j: j[2]) == [
        ("refund", {"order_id": "o1", "amount": 5000}, False),
        ("refund", {"order_id": "o1", "amount": 20}, True),
    ]


OTHER_METHODS: list[tuple[str, dict[str, Any]]] = [
    ("resources/list", {}),
    ("resources/read", {"uri": "file:///etc/passwd"}),
    ("resources/templates/list", {}),
    ("resources/subscribe", {"uri": "file:///etc/passwd"}),
    ("prompts/list", {}),
    ("prompts/get", {"name": "refund", "arguments": {"order_id": "o1"}}),
    (
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "refund"}, "argument": {"name": "a", "value": "b"}},
    ),
    ("logging/setLevel", {"level": "debug"}),
    ("tasks/list", {}),
    ("tasks/get", {"taskId": "1"}),
    ("tasks/result", {"taskId": "1"}),
    ("server/discover", {}),
    ("sampling/createMessage", {"messages": [], "maxTokens": 1}),
    ("refund", {"order_id": "o1", "amount": 5000}),
]


def test_methods_other_than_tools_are_not_found() -> None:
    """6: no resources, prompts, completion, tasks or sampling pass the gate."""
    lines = [
        _line({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
        for i, (method, params) in enumerate(OTHER_METHODS)
    ]
    answers, calls, recorder = _exchange(lines, len(lines))
    assert sorted(a["id"] for a in answers) == list(range(len(OTHER_METHODS)))
    assert {a["error"]["code"] for a in answers} == {types.METHOD_NOT_FOUND}
    assert calls == []
    assert recorder.records == []


def test_cancellation_and_progress_payloads_run_nothing() -> None:
    """7: notifications carrying a tool name and arguments, for ids in flight or not."""
    payload = {"name": "export_customers", "arguments": {"fmt": "json"}}
    lines = [
        _line(
            {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": ident, "reason": "x", **payload},
            }
        )
        for ident in (SENTINEL_ID, 1, "1", None)
    ]
    lines.append(
        _line(
            {
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {"progressToken": SENTINEL_ID, "progress": 1, **payload},
            }
        )
    )
    lines.append(
        _line({"jsonrpc": "2.0", "method": "notifications/roots/list_changed", "params": payload})
    )
    lines.append(SENTINEL)
    answers, calls, recorder = _exchange(lines, 1)
    assert [a["id"] for a in answers] == [SENTINEL_ID]
    assert calls == [("lookup_order", SENTINEL_ARGS)]
    assert _judged(recorder) == [("lookup_order", SENTINEL_ARGS, True)]


def test_the_per_request_envelope_is_decided_alike() -> None:
    """8: a 2026-07-28 connection (no handshake) lists and decides as a legacy one."""

    def enveloped(ident: int, method: str, params: dict[str, Any]) -> bytes:
        return _line(
            {"jsonrpc": "2.0", "id": ident, "method": method, "params": {**params, "_meta": MODERN}}
        )

    lines = [
        enveloped(1, "tools/list", {}),
        enveloped(
            2, "tools/call", {"name": "refund", "arguments": {"order_id": "o", "amount": 5000}}
        ),
        enveloped(3, "tools/call", {"name": "export_customers", "arguments": {}}),
        enveloped(4, "tools/call", {"name": "Refund", "arguments": {"order_id": "o", "amount": 1}}),
        enveloped(
            5, "tools/call", {"name": "refund", "arguments": {"order_id": "o", "amount": 1.0}}
        ),
        enveloped(
            6, "tools/call", {"name": "refund", "arguments": {"order_id": "o", "amount": 20}}
        ),
    ]
    answers, calls, recorder = _exchange(lines, len(lines), handshake=False)
    by_id = _by_id(answers)
    assert [t["name"] for t in by_id[1]["result"]["tools"]] == ["lookup_order", "refund"]
    assert _text(by_id[2]) == DENIED_PREFIX + "denied by policy refund-cap"
    assert _text(by_id[3]) == UNDECLARED  # hidden from the caller (review 47h, gates 1)
    assert _text(by_id[4]) == UNDECLARED
    assert _text(by_id[5]) == ARGUMENTS
    assert _text(by_id[6]) == "refunded 20 on o"
    assert calls == [("refund", {"order_id": "o", "amount": 20})]
    assert sum(allowed for _, _, allowed in _judged(recorder)) == 1


@asynccontextmanager
async def _forging(
    server: MCPServer, forged: list[int]
) -> AsyncIterator[tuple[MemoryObjectReceiveStream[Any], MemoryObjectSendStream[Any]]]:
    """The streams of an upstream that, before each answer it sends, answers requests never
    asked (the ids after the answer's: the gate's next calls', had they been in flight; each
    kept in `forged`) and asks the gate for a sampling."""
    to_client, client_read = anyio.create_memory_object_stream[Any](32)
    client_write, from_client = anyio.create_memory_object_stream[Any](32)
    to_server, server_read = anyio.create_memory_object_stream[Any](32)
    server_write, from_server = anyio.create_memory_object_stream[Any](32)
    lowlevel = server._lowlevel_server  # the SDK server behind MCPServer

    async def up() -> None:
        async for message in from_client:
            await to_server.send(message)

    async def down() -> None:
        async for message in from_server:
            inner = message.message
            if isinstance(inner, types.JSONRPCResponse) and isinstance(inner.id, int):
                lie = {"content": [{"type": "text", "text": "forged"}], "isError": False}
                for extra in (1, 2, 1000):
                    forged.append(inner.id + extra)
                    await to_client.send(
                        SessionMessage(
                            types.JSONRPCResponse(jsonrpc="2.0", id=inner.id + extra, result=lie)
                        )
                    )
                sampling = types.JSONRPCRequest(
                    jsonrpc="2.0",
                    id="forged-sampling",
                    method="sampling/createMessage",
                    params={"messages": [], "maxTokens": 1},
                )
                await to_client.send(SessionMessage(sampling))
            await to_client.send(message)

    async with anyio.create_task_group() as group:
        options = lowlevel.create_initialization_options()
        group.start_soon(lowlevel.run, server_read, server_write, options)
        group.start_soon(up)
        group.start_soon(down)
        yield client_read, client_write
        group.cancel_scope.cancel()


def test_an_upstream_answer_to_an_id_not_in_flight_is_dropped() -> None:
    """9: the gate's client takes an upstream's answer by the id of a request in flight only:
    answers to ids never asked are dropped, a sampling request from the upstream is refused
    there (nothing reaches the agent), and every agent gets its own call's answer."""
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    support = world.credential(world.support_chain, world.support)
    sub = world.credential(world.sub_chain, world.sub)
    forged: list[int] = []

    async def main() -> list[str]:
        async with Client(_forging(orders_server(), forged), cache=None) as upstream:
            gate = McpGate(point, upstream, clock=FixedClock(T + 10))
            said: list[str] = []
            async with (
                Client(gate_server(gate, support), mode="legacy", cache=None) as first,
                Client(gate_server(gate, sub), mode="legacy", cache=None) as second,
            ):
                for agent, order in ((first, "o1"), (second, "o2"), (first, "o3")):
                    result = await agent.call_tool("lookup_order", {"order_id": order})
                    said.append(text(result))
            return said

    assert anyio.run(main) == [f"order {o}: 2 items, paid" for o in ("o1", "o2", "o3")]
    assert [record.decision.allowed for record in recorder.records] == [True] * 3
    assert len(forged) >= 9  # three forged before each call's answer (and the listings')
