"""Review 71a (MCP held-request weighing, area mcpheld): attacks tried that did not work."""

from __future__ import annotations

import json
from typing import Any

from tests.test_review70u_mcpheld import call_frame, decoded_call
from troth import limits


def test_mcpheld_refuted_calls_over_and_under_the_value_limit_in_turn_leave_no_drift() -> None:
    """Tried: a session sending calls over and under MAX_TOOL_ARGUMENT_VALUES in turn, each
    answered, to make the count drift (an over-limit call weighed by its frame, let go by its
    weight): the session holds exactly what it held before after each answer, and an
    over-limit call that would pass its most is refused, nothing counted."""
    from troth.integrations.mcp.channel import decode_message
    from troth.integrations.mcp.held import HeldRequests

    held = HeldRequests(limits.MAX_MCP_SESSION_HELD)
    assert held.take("kept", 1 << 20)
    under = call_frame({"x": list(range(100))})
    over = call_frame({"x": [0] * (limits.MAX_TOOL_ARGUMENT_VALUES + 1)})
    items = [(decode_message(frame), len(frame)) for frame in (under, over)]
    for item, size in items * 5:
        assert held.hold(item, size)
        assert held.total > 1 << 20
        held.let_go(1)
        assert held.total == 1 << 20
        assert held.take("filler", held.most - (2 << 20))  # the over-limit call: ~2.4 MB
        assert not held.hold(*items[1])
        held.let_go("filler")
        assert (held.total, len(held)) == (1 << 20, 1)


def test_mcpheld_refuted_let_go_twice_takes_nothing_of_another() -> None:
    """Tried: a request let go twice (cancelled, then its answer written; or an answer to an
    id never held) to take another's weight off the count: `let_go` pops the id's own weight
    only, once."""
    from troth.integrations.mcp.held import HeldRequests

    held = HeldRequests(limits.MAX_MCP_SESSION_HELD)
    assert held.take(1, 5000)
    assert held.take(2, 7000)
    held.let_go(1)
    held.let_go(1)
    held.let_go(3)
    held.let_go(None)
    assert held.total == 7000


def test_mcpheld_refuted_shared_short_strings_weigh_at_least_what_they_hold() -> None:
    """Tried: short strings the parser caches (the same object for each repeat: counted each
    time, so over) and long distinct ones (counted once each, held once) under their weight."""
    from troth.integrations.mcp.held import HeldRequests

    for arguments in ({"x": ["k" * 60] * 5000}, {"x": [f"{i:08d}" * 20 for i in range(3000)]}):
        item, served = decoded_call(arguments, serve=True)
        held = HeldRequests(1 << 40)
        assert held.hold(item, len(call_frame(arguments)))
        assert held.total >= served


def test_mcpheld_refuted_the_decoded_message_holds_no_container_subclass() -> None:
    """Tried: dict or list subclasses the SDK builds, whose instances are larger than their
    `sys.getsizeof` says or hold more: a decoded tools/call's params hold plain dicts and
    lists only, at any depth."""
    from troth.integrations.mcp.channel import decode_message

    shape = {"a": [{"b": [[], {}]}, {"c": {"d": []}}], "_meta": {"e": [{}]}}
    params: dict[str, Any] = {"name": "t", "arguments": shape, "_meta": {"f": [{"g": {}}]}}
    frame = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
    message = decode_message(frame.encode()).message
    pending: list[Any] = [getattr(message, "params", None)]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            assert type(value) is dict
            pending.extend(value.values())
        elif isinstance(value, list):
            assert type(value) is list
            pending.extend(value)


def _nested(depth: int, wrap: Any) -> Any:
    value: Any = [] if wrap is list else {}
    for _ in range(depth):
        value = [value] if wrap is list else {"": value}
    return value


def test_mcpheld_refuted_deep_nesting_over_the_limit_weighs_at_least_what_it_holds() -> None:
    """Tried: shapes denser than 70y measured, cut short past MAX_TOOL_ARGUMENT_VALUES and
    weighed DENSEST a byte: arrays of arrays or objects nested 120 deep (2 or 5 bytes a
    level, one container each: ~31-32 bytes held a byte, served), floats (~6): all under 48."""
    from troth.integrations.mcp.held import HeldRequests

    shapes = [{"x": [_nested(120, wrap) for _ in range(150)]} for wrap in (list, dict)]
    for arguments in [*shapes, {"x": [0.5] * 20_000}]:
        item, served = decoded_call(arguments, serve=True)
        held = HeldRequests(1 << 40)
        assert held.hold(item, len(call_frame(arguments)))
        assert held.total >= served


def test_mcpheld_refuted_a_session_ends_and_its_late_let_gos_release_nothing_twice() -> None:
    """Tried: a session's end (`close`: its requests queued, never started, given back to
    the server's pool) followed by its cancelled handlers' `Unheld` and the SDK's shutdown
    errors (`answered`) letting go of the same requests again, to drive the pool below what
    the other sessions hold: what is let go after `close` is nothing."""
    from troth.integrations.mcp.held import HeldRequests
    from troth.node.shares import Shares

    shares = Shares(lambda: 1)

    class Pool:
        def room(self, size: int) -> bool:
            return shares.room([b"a"], 1 << 20, size)

        def take(self, size: int) -> None:
            shares.take([b"a"], size)

        def release(self, size: int) -> None:
            shares.release([b"a"], size)

    ended, other = HeldRequests(1 << 20, Pool()), HeldRequests(1 << 20, Pool())
    assert other.take(1, 300)
    assert ended.take(1, 500)
    assert ended.take(2, 700)
    ended.close()
    for ident in (1, 2, 1):
        ended.let_go(ident)
    assert (shares.places, ended.total) == (300, 0)
