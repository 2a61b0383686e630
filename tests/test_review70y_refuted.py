"""Review 70y (the weighing of MCP requests held by a session, area weighing): attacks that did
not work, kept as passing tests."""

from __future__ import annotations

import json

import pytest

from tests.test_review70y_weighing import visits
from troth.integrations.mcp.held import loose_most

_MANY = 500_000


@pytest.mark.parametrize(
    "message",
    [
        {"method": "tools/call", "params": {"name": "t", "_meta": {"x": [0] * _MANY}}},
        {"method": "tools/call", "params": {"name": "t", "_meta": {"x": [[]] * _MANY}}},
        {
            "method": "tools/call",
            "params": {"name": "t", "other": {f"{i}": 0 for i in range(_MANY)}},
        },
        {"method": "notifications/x", "params": {"x": [0] * _MANY}},
        {"method": "x/unknown", "params": {"x": [{"": 0} for _ in range(_MANY // 4)]}},
    ],
    ids=["meta zeros", "meta lists", "other wide", "notification", "request"],
)
def test_weighing_refuted_the_rest_of_a_request_is_walked_a_bounded_way(
    monkeypatch: pytest.MonkeyPatch, message: dict[str, object]
) -> None:
    """70y weighing, refuted: a request's params but for a tools/call's arguments, and a
    notification, of ~500,000 values: their walk is cut short by the weight they may have
    (`loose_most`, 512 KiB: each value visited weighs 16 bytes or more, a container's own size
    counted before its items), so it visits at most ~32,000 of them, and they are refused."""
    if message["method"] != "notifications/x":
        message = {"id": 7, **message}
    frame = json.dumps({"jsonrpc": "2.0", **message}).encode()
    seen, taken = visits(monkeypatch, frame)
    assert not taken
    assert seen <= loose_most() // 16 + 16
