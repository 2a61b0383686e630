"""Review 62c, mcp: attacks on the MCP gate that did not work, kept as tests that fail if the
defence breaks. Raw JSON-RPC lines (as a client writes them) go to one gate connection in front
of an upstream that records what it runs: what the policy judged must be what the tool ran, a
hidden or made-up name never runs, and only tools/call reaches the upstream."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server import MCPServer

from tests.support.gates import POLICIES, T, make_world
from tests.test_review47m_mcp_cancel import Blocking, outcomes
from tests.test_review58f_mcp import HELLO, _settle, offer
from tests.test_review58j_refuted import _answers
from tests.test_review58t_mcp import SERVED_EMPTY, answering
from tests.test_review62c_mcp import modern_call, session_of, until
from troth import limits
from troth.clock import FixedClock
from troth.errors import DecodeError
from troth.gates import ListRecorder, ToolCall
from troth.integrations.mcp.channel import decode_message, encode_message
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server


class Recording:
    """The orders upstream, recording every call it runs (name and arguments as it got them),
    with a resource and a prompt a client could ask the gate for."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, dict[str, Any]]] = []
        self.app = app = MCPServer("orders")

        @app.tool()
        def lookup_order(order_id: str) -> str:
            self.ran.append(("lookup_order", {"order_id": order_id}))
            return "ok"

        @app.tool()
        def refund(order_id: str, amount: int) -> str:
            self.ran.append(("refund", {"order_id": order_id, "amount": amount}))
            return f"refunded {amount}"

        @app.resource("orders://all")
        def everything() -> str:
            self.ran.append(("resource", {}))
            return "secret"

        @app.prompt()
        def leak() -> str:
            self.ran.append(("prompt", {}))
            return "secret"


def exchange(lines: list[str]) -> tuple[list[dict[str, Any]], Recording, ListRecorder]:
    """The answers one gate connection of the support agent gave `lines` (each a raw JSON-RPC
    line, after the handshake), what its upstream ran, and the trace."""
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    upstream, recorder, answers = Recording(), ListRecorder(), []
    point = world.point(world.store(world.bundle()), recorder)

    async def main() -> None:
        async with Client(upstream.app, cache=None) as client:
            server = gate_server(McpGate(point, client, clock=FixedClock(T + 10)), support)
            sending, read = anyio.create_memory_object_stream[Any](64)
            write, receiving = anyio.create_memory_object_stream[Any](64)
            async with anyio.create_task_group() as tg:
                options = server.create_initialization_options()
                tg.start_soon(server.run, read, write, options)
                hello = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": HELLO}
                ready = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                for line in [json.dumps(hello), json.dumps(ready), *lines]:
                    await sending.send(decode_message(line.encode()))
                    with anyio.move_on_after(0.5 if '"id"' in line else 0.05):
                        answers.append(json.loads(encode_message(await receiving.receive())))
                tg.cancel_scope.cancel()

    anyio.run(main)
    return answers[1:], upstream, recorder


def call(name: str, arguments: str, ident: int = 1, extra: str = "") -> str:
    """A tools/call line, its arguments' JSON text as given (duplicate keys, NaN, ...)."""
    params = f'{{"name":{json.dumps(name)},"arguments":{arguments}{extra}}}'
    return f'{{"jsonrpc":"2.0","id":{ident},"method":"tools/call","params":{params}}}'


def _text(answer: dict[str, Any]) -> str:
    return str(answer["result"]["content"][0]["text"])


@pytest.mark.parametrize(
    ("arguments", "runs"),
    [
        ('{"order_id":"o","amount":20,"amount":5000}', None),  # the last key is judged and run
        ('{"order_id":"o","amount":5000,"amount":20}', 20),
        ('{"order_id":"o","amount":-0}', 0),
    ],
)
def test_duplicate_keys_are_judged_as_the_upstream_runs_them(arguments: str, runs: Any) -> None:
    """Refuted: JSON with a key twice, which a policy might read one way and the upstream the
    other. The gate parses the line once and forwards the very arguments it judged, so the cap
    (`amount <= 1000`) holds for the value run."""
    (answer,), upstream, recorder = exchange([call("refund", arguments)])
    if runs is None:
        assert _text(answer) == DENIED_PREFIX + "denied by policy refund-cap"
        assert upstream.ran == []
    else:
        assert upstream.ran == [("refund", {"order_id": "o", "amount": runs})]
        judged = recorder.records[0].request
        assert isinstance(judged, ToolCall)
        assert judged.arguments == {"order_id": "o", "amount": runs}


COERCED = [
    "20.0",
    '"20"',
    "true",
    "null",
    "NaN",
    "Infinity",
    "1e400",
    "1e3",
    str(2**53),
    str(10**30),
]
"""Amounts the upstream's pydantic would coerce to an int (20.0, "20", true) or that a policy
could read otherwise (NaN, 1e400, past 2^53)."""
LOOK_ALIKES = ["Refund", "refund ", " refund", "refund\u200b", "\uff52efund", "refund\n", "refunD"]
"""Names like refund: case, spaces, a zero-width or full-width letter, a newline."""


def test_an_integer_the_upstream_would_coerce_is_denied() -> None:
    """Refuted: each of COERCED is denied as not of the schema, never run."""
    lines = [
        call("refund", f'{{"order_id":"o","amount":{amount}}}', ident)
        for ident, amount in enumerate(COERCED, 1)
    ]
    answers, upstream, _ = exchange(lines)
    mismatch = DENIED_PREFIX + "denied: the arguments do not match the tool's input schema"
    assert [_text(answer) for answer in answers] == [mismatch] * len(COERCED)
    assert upstream.ran == []


def test_a_name_like_an_allowed_tool_is_undeclared() -> None:
    """Refuted: the bundle declares none of LOOK_ALIKES (names are exact, of MCP's ASCII
    charset), and the upstream never runs one."""
    lines = [
        call(name, '{"order_id":"o","amount":1}', ident)
        for ident, name in enumerate(LOOK_ALIKES, 1)
    ]
    answers, upstream, recorder = exchange(lines)
    undeclared = DENIED_PREFIX + "denied: the policy bundle declares no such tool"
    assert [_text(answer) for answer in answers] == [undeclared] * len(LOOK_ALIKES)
    assert upstream.ran == []
    assert [r.decision.allowed for r in recorder.records] == [False] * len(LOOK_ALIKES)


def test_a_call_named_twice_in_its_params_runs_as_judged() -> None:
    """Refuted: params naming two tools ("name" twice) run the one judged, with the arguments
    judged (here denied: lookup_order takes no amount)."""
    line = call("refund", '{"order_id":"o","amount":1}').replace(
        '"name":"refund"', '"name":"refund","name":"lookup_order"'
    )
    (answer,), upstream, recorder = exchange([line])
    assert answer["result"]["isError"]
    assert upstream.ran == []
    judged = recorder.records[0].request
    assert isinstance(judged, ToolCall)
    assert judged.tool == "lookup_order"


def test_a_notification_carrying_a_call_runs_nothing() -> None:
    """Refuted: a tools/call without an id (a notification) is neither decided nor run."""
    line = call("refund", '{"order_id":"o","amount":1}').replace('"id":1,', "")
    answers, upstream, recorder = exchange([line, call("lookup_order", '{"order_id":"x"}', 2)])
    assert [a["id"] for a in answers] == [2]
    assert upstream.ran == [("lookup_order", {"order_id": "x"})]
    assert len(recorder.records) == 1


def test_a_batch_is_not_a_message() -> None:
    """Refuted: a JSON-RPC batch (an array of calls) is refused as a message whole."""
    with pytest.raises(DecodeError):
        decode_message(f"[{call('refund', '{}')}]".encode())


ARG = {"name": "a", "value": "b"}
"""A completion's argument."""
OTHER_METHODS: list[tuple[str, dict[str, Any]]] = [
    ("resources/list", {}),
    ("resources/read", {"uri": "orders://all"}),
    ("resources/templates/list", {}),
    ("prompts/list", {}),
    ("prompts/get", {"name": "leak"}),
    ("completion/complete", {"ref": {"type": "ref/prompt", "name": "leak"}, "argument": ARG}),
    ("logging/setLevel", {"level": "debug"}),
    ("tasks/list", {}),
    ("sampling/createMessage", {"messages": [], "maxTokens": 1}),
]
"""Methods besides tools: resources, prompts, completions, logging, tasks, a server's own."""


def test_methods_besides_tools_reach_nothing() -> None:
    """Refuted: the gate serves none of OTHER_METHODS (method not found), nothing reaches the
    upstream nor is decided."""
    lines = [
        json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        for ident, (method, params) in enumerate(OTHER_METHODS, 1)
    ]
    answers, upstream, recorder = exchange(lines)
    assert [answer["error"]["code"] for answer in answers] == [-32601] * len(OTHER_METHODS)
    assert upstream.ran == []
    assert recorder.records == []


def test_a_task_or_progress_call_is_decided_once_as_a_plain_call() -> None:
    """Refuted: a tools/call with a `task` (2025-11-25 augmentation) or a progress token is
    decided and run once, with its arguments as judged; over the cap, denied all the same."""
    answers, upstream, recorder = exchange(
        [
            call("refund", '{"order_id":"o","amount":3}', 1, ',"task":{"ttl":1000}'),
            call("refund", '{"order_id":"o","amount":4}', 2, ',"_meta":{"progressToken":"p"}'),
            call("refund", '{"order_id":"o","amount":4000}', 3, ',"task":{"ttl":1000}'),
        ]
    )
    assert [_text(a) for a in answers[:2]] == ["refunded 3", "refunded 4"]
    assert _text(answers[2]) == DENIED_PREFIX + "denied by policy refund-cap"
    assert [args["amount"] for _, args in upstream.ran] == [3, 4]
    assert [r.decision.allowed for r in recorder.records] == [True, True, False]


@pytest.mark.parametrize("modern", [False, True])
def test_a_client_gone_mid_call_leaves_it_recorded_unanswered(modern: bool) -> None:
    """Refuted: the client's session ends (its channel closed) while its allowed call waits at
    the upstream, of either protocol era: the call is cancelled and recorded unanswered after
    its allowed record; the upstream's later answer goes nowhere."""
    recorder, upstream = ListRecorder(), Blocking()

    async def way_back(frame: bytes) -> bool:
        return True

    async def main() -> None:
        async with session_of(upstream, recorder, way_back, hello=not modern) as (inbound, ended):
            request = modern_call(1)
            if not modern:
                del request["params"]["_meta"]
            offer(inbound, request)
            with anyio.fail_after(5):
                await upstream.started.wait()
            inbound.close()
            await until(lambda: bool(ended))
            upstream.release.set()

    anyio.run(main)
    assert outcomes(recorder) == [("lookup_order", "allowed"), ("lookup_order", "unanswered")]
    assert upstream.answered == 0


def test_a_modern_clients_large_answers_take_their_promised_room() -> None:
    """Refuted: on the 2026-07-28 path (no handshake; the SDK's per-request dispatch) the
    answers of a slow client's MAX_MCP_CALLS_PER_SESSION calls, each a whole frame, still meet
    the room promised to them (troth.integrations.mcp.room): all held whole and served, the
    session not ended as fallen behind."""
    size, calls = limits.MAX_MCP_RESULT - SERVED_EMPTY, limits.MAX_MCP_CALLS_PER_SESSION
    recorder, upstream, release = ListRecorder(), answering(size), anyio.Event()
    frames: list[bytes] = []
    ends: list[bool] = []

    async def way_back(frame: bytes) -> bool:
        await release.wait()
        frames.append(frame)
        return True

    async def main() -> None:
        async with session_of(upstream, recorder, way_back) as (inbound, ended):
            for ident in range(1, calls + 1):
                await _settle()
                assert offer(inbound, modern_call(ident, f"o{ident}"))
            await until(lambda: upstream.answered == calls)
            release.set()
            await until(lambda: len(_answers(frames)) == calls)
            ends.extend(ended)

    anyio.run(main)
    assert ends == []
    answers = _answers(frames)
    assert sorted(a["id"] for a in answers) == list(range(1, calls + 1))
    assert all(len(a["result"]["content"][0]["text"]) == size for a in answers)


WITHOUT_LOOKUP = "\n".join(POLICIES.splitlines()[2:])
"""The support desk's policies less the permit of lookup_order."""


def test_a_call_waiting_for_its_slot_is_decided_under_the_bundle_then_in_force() -> None:
    """Refuted: a bundle swapped in while a call waits in the gate (its session's
    MAX_MCP_CALLS_PER_SESSION calls at the upstream) cannot let it run under the old one: it is
    decided as it takes its slot, by the new bundle (revision 2: no lookup_order), and denied;
    the calls decided before run as allowed."""
    world = make_world()
    support = world.credential(world.support_chain, world.support)
    recorder, upstream = ListRecorder(), Blocking()
    store = world.store(world.bundle())
    calls = limits.MAX_MCP_CALLS_PER_SESSION
    results: list[bool] = []

    async def one(agent: Client, ident: int) -> None:
        result = await agent.call_tool("lookup_order", {"order_id": f"o{ident}"})
        results.append(bool(result.is_error))

    async def main() -> None:
        async with Client(upstream.app, cache=None) as client:
            gate = McpGate(world.point(store, recorder), client, clock=FixedClock(T + 10))
            async with (
                Client(gate_server(gate, support), mode="legacy", cache=None) as agent,
                anyio.create_task_group() as tg,
            ):
                for ident in range(calls):
                    tg.start_soon(one, agent, ident)
                with anyio.fail_after(5):
                    while len(recorder.records) < calls:
                        await anyio.sleep(0.01)
                tg.start_soon(one, agent, calls)  # waits for a slot
                for _ in range(20):
                    await anyio.sleep(0)
                assert len(recorder.records) == calls
                store.accept(
                    world.bundle(revision=2, policies=WITHOUT_LOOKUP),
                    feeds=world.feeds(),
                    now=T + 6,
                )
                upstream.release.set()

    anyio.run(main)
    assert sorted(results) == [False] * calls + [True]
    assert upstream.answered == calls
    last = recorder.records[-1]
    assert (last.decision.allowed, last.decision.revision) == (False, 2)


def test_a_reused_request_id_leaves_each_call_recorded_as_it_ended() -> None:
    """Refuted: two calls of one session under one id, then the client cancels that id: one
    is cancelled (recorded unanswered after its allowed record, never run), the other runs and
    is answered, once; the trace says which (no answer for a call recorded unanswered)."""
    recorder, upstream, frames = ListRecorder(), Blocking(), []

    async def way_back(frame: bytes) -> bool:
        frames.append(frame)
        return True

    def lookup(order: str) -> dict[str, Any]:
        params = {"name": "lookup_order", "arguments": {"order_id": order}}
        return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}

    async def main() -> None:
        async with session_of(upstream, recorder, way_back, hello=True) as (inbound, _):
            for order in ("a", "b"):
                await _settle()
                offer(inbound, lookup(order))
            await until(lambda: len(recorder.records) == 2)
            cancel = {"requestId": 7}
            offer(
                inbound, {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel}
            )
            await until(lambda: len(recorder.records) == 3)
            upstream.release.set()
            await until(lambda: len(_answers(frames)) == 2)

    anyio.run(main)
    (answer,) = [a for a in _answers(frames) if a["id"] == 7]
    ran = answer["result"]["content"][0]["text"]
    assert upstream.answered == 1
    assert outcomes(recorder) == [("lookup_order", "allowed")] * 2 + [
        ("lookup_order", "unanswered")
    ]
    refused = recorder.records[2].request
    assert isinstance(refused, ToolCall)
    assert ran == f"order {'a' if refused.arguments['order_id'] == 'b' else 'b'}"
