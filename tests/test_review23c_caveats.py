"""Review 23c: the caveat docs/policy.md gives "to cap a refund and leave other tools alone".

`!(context.args has amount) || context.args.amount <= 100` holds for any call that omits
`amount`: where `amount` is optional (a payment API's refund of the whole charge when no amount
is given), the delegate refunds in full by leaving it out. The caveat the docs give must cap
the refund tool whatever the call omits, and still leave the other tools alone. This test
reads the caveat from the docs, so the docs and what it checks cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import T, make_world
from troth.gates import Outcome, ToolCall

DOCS = Path(__file__).resolve().parent.parent / "docs" / "policy.md"
REFUND: dict[str, Any] = {  # `amount` omitted: the whole order is refunded
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "amount": {"type": "integer"}},
    "required": ["order_id"],
}
LOOKUP: dict[str, Any] = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"],
}
POLICIES = """\
@id("refund") permit(principal, action == Action::"invoke:refund", resource);
@id("lookup") permit(principal, action == Action::"invoke:lookup_order", resource);
"""


def documented_cap() -> str:
    """The caveat docs/policy.md says caps a refund and leaves other tools alone."""
    text = " ".join(DOCS.read_text().split())
    found = re.search(r"Write `([^`]*)` to cap a refund and leave other tools alone", text)
    assert found is not None, "docs/policy.md no longer shows the refund cap"
    return " ".join(found[1].split())


@pytest.mark.parametrize(
    ("tool", "arguments", "allowed"),
    [
        ("refund", {"order_id": "o1", "amount": 100}, True),
        ("refund", {"order_id": "o1", "amount": 5000}, False),
        ("refund", {"order_id": "o1"}, False),  # the whole order: over any cap
        ("lookup_order", {"order_id": "o1"}, True),  # other tools left alone
    ],
)
def test_the_documented_refund_cap_caps_a_refund_that_omits_its_amount(
    tool: str, arguments: dict[str, Any], allowed: bool
) -> None:
    world = make_world(sub_caveats=(documented_cap(),))
    bundle = world.bundle(policies=POLICIES, tools={"refund": REFUND, "lookup_order": LOOKUP})
    point = world.point(world.store(bundle))
    sub = world.credential(world.sub_chain, world.sub)
    decision = point.decide(sub, ToolCall(tool, arguments), now=T + 10)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.outcome is Outcome.FORBIDDEN
        assert decision.policies == ("caveat:1:0",)
