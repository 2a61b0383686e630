"""Review 61o, refuted: attacks on the decision's structured uids that did not work.

With uids handed as `{"type", "id"}` (review 61o, gates 1) an id Cedar's grammar would refuse
(a quote, a newline) is a valid uid, no longer a request Cedar fails to build: tried as a
tool, a server, a service and method, a secret. Each is still refused by its name's check
before a uid is written (toolschema.NAME, the bundle's declarations), as each was before.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cedar_spy import spy_native
from tests.support.gates import T, make_world
from troth.gates import LeaseRequest, Outcome, ServiceCall, ToolCall

QUOTED = 'refund" || true || "'


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every request the engine hands cedarpy's native call."""
    return spy_native(monkeypatch)


@pytest.mark.parametrize(
    "request_",
    [
        ToolCall(QUOTED, {"order_id": "o", "amount": 5}),
        ToolCall("refund\n", {"order_id": "o", "amount": 5}),
        ToolCall("refund", {"order_id": "o", "amount": 5}, server='payments"'),
        ServiceCall("orders", 'status"'),
        ServiceCall('orders" || true', "status"),
        LeaseRequest('db"', ("read",), 60),
    ],
)
def test_a_name_no_uid_text_could_hold_is_denied_before_its_uid(
    handed: list[dict[str, Any]], request_: Any
) -> None:
    world = make_world()
    point = world.point(world.store(world.bundle(services={"orders": ["status"]})))
    credential = world.credential(world.support_chain, world.support)
    decision = point.decide(credential, request_, now=T + 10)
    assert not decision.allowed
    assert decision.outcome is Outcome.UNKNOWN_REQUEST
    for request in handed:  # a tool's denial costs one placeholder evaluation (review 48t)
        assert request["action"] == {"type": "Action", "id": "invoke:*"}


def test_the_uids_kept_are_not_changed_by_decisions(handed: list[dict[str, Any]]) -> None:
    world = make_world()
    point = world.point(world.store(world.bundle()))
    credential = world.credential(world.support_chain, world.support)
    call = ToolCall("refund", {"order_id": "o", "amount": 5})
    first = point.decide(credential, call, now=T + 10)
    second = point.decide(credential, call, now=T + 10)
    assert first == second
    assert first.allowed
    assert handed[0]["action"] is handed[1]["action"]  # one dict per tool, handed each time
    assert handed[1]["action"] == {"type": "Action", "id": "invoke:refund"}
    assert handed[1]["principal"] == {"type": "Agent", "id": str(credential.actor)}
