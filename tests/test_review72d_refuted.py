"""Review 72d (area: pools): attacks on session 71's pools and budgets that did not work, kept as
passing tests (tests/test_review72d_pools.py holds the one that did)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from tests.test_review71i_wave2b import _BOUND, _initialize, _sessions

if TYPE_CHECKING:
    from troth.integrations.mcp.held import HeldRequests


def _held(held: HeldRequests, frame: bytes) -> int:
    """The client's message `frame` counted into the session `held` (as `McpService.send`
    counts it): its weight, 0 when refused."""
    from troth.integrations.mcp.channel import decode_message

    weighed = held.weigh(decode_message(frame), len(frame))
    return weighed.weight if held.admit(weighed) else 0


def _answer(held: HeldRequests, ident: int | str, *, error: bool = False) -> None:
    """The server writes its answer to request `ident` of the session `held`."""
    from tests.test_review55s_mcp import raw

    reply = {"error": {"code": 1, "message": "m"}} if error else {"result": {}}
    held.answered(raw({"jsonrpc": "2.0", "id": ident, **reply}))


def test_sessions_holding_only_a_kept_initialize_take_no_lone_request_past_the_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried: authority A's sessions each hold only their answered `initialize` (kept: the
    session holds no request, so it may take one of any weight), then, A past its share of
    the server's pool, each sends a request of ~0.3 MiB, hoping each "empty" session takes one
    past the share (the pool past twice its bound, B locked out). A session holding none
    takes a lone request only while its authorities have a byte of room: A's are refused,
    B's is taken."""
    from tests.test_review70u_mcpheld import call_frame
    from troth.node.shares import Shares

    shares = Shares(lambda: 2)  # a share: _BOUND // 4
    sessions = _sessions(monkeypatch, b"A", 8, shares)
    (theirs,) = _sessions(monkeypatch, b"B", 1, shares)
    for session in sessions:
        assert _held(session, _initialize(10))
        _answer(session, 0)
        assert session.kept
        assert not len(session)
    filler = sessions[0]
    assert filler.take("filler", _BOUND)  # A: past the bound and its share
    heavy = call_frame({"x": list(range(8000))})  # ~0.3 MiB weighed: more than a share
    assert [_held(session, heavy) for session in sessions[1:]] == [0] * 7
    weight = _held(theirs, heavy)  # B's lone request: taken past its share
    assert weight > shares.share(_BOUND)
    assert shares.places <= 2 * _BOUND + weight


def test_answers_and_ends_racing_give_back_what_was_taken_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried: a session's requests and its kept `initialize` given back more than once, to
    drive the server's pool below what it holds (then past its bound unchecked): an
    `initialize` answered twice (a result, then an error), a request answered after it was
    cancelled, the session ended twice, and answers written after its end (an `initialize`'s
    too, kept by nothing once ended). The pool holds exactly what the open sessions hold at
    each step, and nothing once all have ended."""
    from troth.node.shares import Shares

    shares = Shares(lambda: 1)
    racing, other = _sessions(monkeypatch, b"A", 2, shares)
    ping = b'{"jsonrpc":"2.0","id":%d,"method":"ping"}'
    assert _held(other, ping % 9)
    assert _held(racing, _initialize(20))
    _answer(racing, 0)
    _answer(racing, 0, error=True)
    assert _held(racing, ping % 1)
    racing.let_go(1)  # cancelled
    _answer(racing, 1)  # then answered: nothing more given back
    assert shares.places == racing.total + other.total
    assert _held(racing, ping % 2)
    assert _held(racing, _initialize(30).replace(b'"id": 0', b'"id": 3'))
    racing.close()
    racing.close()
    for ident in (2, 3, 0):
        _answer(racing, ident)
    assert (racing.total, shares.places) == (0, other.total)
    other.close()
    assert (shares.places, shares.holders()) == (0, 0)


def test_a_cancel_by_an_id_the_sdk_takes_for_another_lets_go_of_the_one_it_cancels() -> None:
    """Tried: ids the MCP SDK takes for one (7 and "7": it correlates a cancellation by the
    int the text names, its table of requests in flight keeps the last of the two) counted
    apart by the session, each a call waiting at the upstream, then `notifications/cancelled`
    for 7: hoping the cancelled handler lets go of the other's weight (the request still
    held, unweighed) or of none (held for ever). The SDK cancels the last ("7"), whose own
    weight is let go; the other is let go as it is answered: nothing is held after."""
    import anyio

    from tests.support.gates import make_world
    from tests.test_review47m_mcp_cancel import Blocking, gate_of
    from troth.gates import ListRecorder
    from troth.integrations.mcp.channel import decode_message, run_session
    from troth.integrations.mcp.gate import gate_server
    from troth.integrations.mcp.held import HeldRequests

    def message(value: dict[str, Any]) -> bytes:
        return json.dumps({"jsonrpc": "2.0", **value}).encode()

    def call(ident: int | str) -> bytes:
        params = {"name": "lookup_order", "arguments": {"order_id": "o1"}}
        return message({"id": ident, "method": "tools/call", "params": params})

    cancel = message({"method": "notifications/cancelled", "params": {"requestId": 7}})
    held = HeldRequests(1 << 40)
    found: list[list[int | str]] = []

    async def main() -> None:
        world = make_world()
        support = world.credential(world.support_chain, world.support)
        upstream = Blocking()
        async with gate_of(world, upstream, ListRecorder()) as gate:
            inbound, read = anyio.create_memory_object_stream[Any](8)

            async def send(answer: bytes) -> bool:
                return True

            async with anyio.create_task_group() as group:
                server = gate_server(gate, support)
                group.start_soon(run_session, server, read, b"s" * 16, send, held)
                for frame in (_initialize(0), call(7), call("7"), cancel):
                    assert _held(held, frame)
                    await inbound.send(decode_message(frame))
                    await anyio.wait_all_tasks_blocked()
                found.append(list(held._by_id))
                upstream.release.set()
                await anyio.wait_all_tasks_blocked()
                found.append(list(held._by_id))
                inbound.close()

    anyio.run(main)
    assert found == [[7], []]
    assert held.total == held.kept  # the initialize, kept until the session's end
