"""Review 61o, gates.mcp.call: what a decision costs on the gated call's path (the bench row
`gates.mcp.call`: its added latency less one decision is held to 0.5 ms; `gates.decide.*`).

1. Every decision handed Cedar its principal, action and resource as Cedar text
   (`Agent::"T..."`, `Action::"invoke:refund"`, `Tool::"refund"`), which cedarpy parses with
   Cedar's grammar (a LALRPOP parser whose lexer builds its regex DFA's cache anew) at every
   call: ~290 k of the ~540 k instructions of the native call (callgrind, 350 decisions), the
   most cache-hungry part of it, so worse still between the MCP SDK's work (a decision there
   took ~150 us against ~53 us in a tight loop). The engine now hands them as the
   `{"type", "id"}` form cedarpy also takes (the same entity uid, no text parsed), built once
   per tool and per chain; the same decisions (tests/test_gates_engine.py and every gates test
   pin them), the placeholder evaluation of a call denied before Cedar alike (review 48t).

Counted, not timed: what the native call is handed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cedar_spy import spy_native
from tests.support.gates import T, make_world
from troth.gates import LeaseRequest, ServiceCall, ToolCall

UID_KEYS = ("principal", "action", "resource")


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every request the engine hands cedarpy's native call."""
    return spy_native(monkeypatch)


def test_decisions_hand_cedar_structured_uids(handed: list[dict[str, Any]]) -> None:
    world = make_world()
    point = world.point(world.store(world.bundle(services={"orders": ["status"]})))
    credential = world.credential(world.support_chain, world.support)
    now = T + 10
    allowed = point.decide(credential, ToolCall("refund", {"order_id": "o", "amount": 5}), now=now)
    over = ToolCall("refund", {"order_id": "o", "amount": 5000})
    capped = point.decide(credential, over, now=now)
    unknown = point.decide(credential, ToolCall("nope", {}), now=now)  # the placeholder
    point.decide(credential, ServiceCall("orders", "status"), now=now)
    point.decide(credential, LeaseRequest("db", ("read",), 60), now=now)
    assert (allowed.allowed, allowed.policies) == (True, ("refund",))
    assert (capped.allowed, capped.policies) == (False, ("refund-cap",))
    assert not unknown.allowed
    agent = {"type": "Agent", "id": str(credential.actor)}
    for request in handed:
        assert request["principal"] == agent
    assert [(r["action"], r["resource"]) for r in handed] == [
        ({"type": "Action", "id": "invoke:refund"}, {"type": "Tool", "id": "refund"}),
        ({"type": "Action", "id": "invoke:refund"}, {"type": "Tool", "id": "refund"}),
        ({"type": "Action", "id": "invoke:*"}, {"type": "Tool", "id": "*"}),
        ({"type": "Action", "id": "status"}, {"type": "Service", "id": "orders"}),
        ({"type": "Action", "id": "lease"}, {"type": "Secret", "id": "db"}),
    ]
