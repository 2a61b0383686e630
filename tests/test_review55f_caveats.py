"""Review 55f, caveats 1: a member's caveat made every call of its delegate cost the node CPU
time in proportion to the argument's length times the caveat's `like` pattern.

Cedar matches `s like p` by trying the pattern's literal text after each `*` at every position
of `s` again (measured here, cedarpy 4.12, the GIL held throughout): `like "*" + 1,000 a's +
"b"` against a 1 MiB string argument of a's took ~1.3-2.7 s, ~100 ms with 30 a's, against ~30
ms for the whole decision without it. A member mints delegates and writes their caveats for
free: one caveat of MAX_CAVEAT_TEXT (1 KiB) held one such pattern, a chain of MAX_DELEGATION_LINKS
links up to MAX_CAVEATS each, and every tools/call of the delegate to a published MCP server
(1 MiB of arguments a second under MCP_BYTES_PER_SECOND) froze the serving node for seconds
per call, minutes per chain, every other member's calls, channels and feeds with it.

Now a chain's caveats hold at most MAX_CAVEAT_LIKE_WEIGHT of `like` work: each pattern counts
one and each character after its first `*` one (text before the first `*` is matched once).
A caveat past it alone is refused when it is checked (at delegation, `check_caveat`); a chain
whose caveats add up past it is denied every request (`caveat-invalid`), and refused by
`troth.Verifier.verify` (`caveat cannot be evaluated`), before Cedar runs. The arguments here
are short: these tests do not time Cedar (no timing assertions), they show the bound holds."""

from __future__ import annotations

import pytest

from tests.support.gates import T, make_world
from troth import limits
from troth.errors import PolicyError, PolicyFailure
from troth.gates import Outcome, ToolCall, check_caveat
from troth.gates.caveats import evaluate_caveats

_LEFT = 'context.args.order_id like "*'
HEAVY = _LEFT + "a" * (limits.MAX_CAVEAT_TEXT - len(_LEFT) - 2) + 'b"'
"""One caveat of MAX_CAVEAT_TEXT characters: ~1,000 literal characters after a `*`."""
LIGHT = _LEFT + "a" * 20 + '"'
"""A caveat within the bound alone (21), four of them past it together (84)."""


def _lookup(order_id: str) -> ToolCall:
    return ToolCall("lookup_order", {"order_id": order_id})


def test_a_caveat_whose_like_pattern_is_past_the_bound_is_refused_when_checked() -> None:
    """`check_caveat` (what a delegation runs before it signs) refuses the heavy caveat."""
    with pytest.raises(PolicyError) as caught:
        check_caveat(HEAVY)
    assert caught.value.reason is PolicyFailure.CAVEAT_INVALID
    assert "MAX_CAVEAT_LIKE_WEIGHT" in caught.value.detail


@pytest.mark.parametrize(
    ("caveats", "order_id"),
    [((HEAVY,), "a" * 1200 + "b"), ((LIGHT,) * 4, "b" + "a" * 1200)],
    ids=["one-heavy", "four-light"],
)
def test_a_chain_past_the_like_bound_is_denied_before_cedar(
    caveats: tuple[str, ...], order_id: str
) -> None:
    """The sub-agent's chain carries the caveats (made by hand: `delegate` checks none): the
    gate denies its calls as a chain whose caveat is no condition it evaluates, whatever the
    arguments (the caveats would hold for these)."""
    world = make_world(sub_caveats=caveats)
    point = world.point(world.store(world.bundle()))
    sub = world.credential(world.sub_chain, world.sub)
    decision = point.decide(sub, _lookup(order_id), now=T + 10)
    assert decision.outcome is Outcome.CAVEAT_INVALID


def test_a_chain_past_the_like_bound_is_refused_outside_a_bundle() -> None:
    """`troth.Verifier.verify`'s evaluation (no bundle) refuses it unevaluated."""
    world = make_world(sub_caveats=(LIGHT,) * 4)
    sub = world.credential(world.sub_chain, world.sub)
    failure = evaluate_caveats(sub, '{"args":{"order_id":"' + "a" * 30 + '"},"now":1}')
    assert failure is not None
    assert not failure.evaluated
    assert "MAX_CAVEAT_LIKE_WEIGHT" in failure.detail


@pytest.mark.parametrize(
    ("caveat", "order_id", "allowed"),
    [
        ('context.args.order_id like "*.txt"', "4471.txt", True),
        ('context.args.order_id like "*.txt"', "4471.csv", False),
        ('context.args.order_id like "orders/2026/*/*"', "orders/2026/x/y", True),
        ('context.args.order_id like "orders/2026/*"', "orders/2025/x", False),
    ],
)
def test_caveats_within_the_like_bound_are_evaluated(
    caveat: str, order_id: str, allowed: bool
) -> None:
    """Ordinary patterns (a suffix after a `*`, a prefix before it) are within the bound and
    decide as before: allowed where they hold, denied by the caveat where they do not."""
    check_caveat(caveat)
    world = make_world(sub_caveats=(caveat,))
    point = world.point(world.store(world.bundle()))
    sub = world.credential(world.sub_chain, world.sub)
    decision = point.decide(sub, _lookup(order_id), now=T + 10)
    assert decision.allowed is allowed
    assert decision.outcome is (Outcome.ALLOWED if allowed else Outcome.FORBIDDEN)


# -- caveats 2: the caveats' text a chain brings to every evaluation ---------------------------

_NOT = 'context.args.order_id != "'
LONG = tuple(_NOT + chr(ord("a") + n) * (1000 - len(_NOT) - 1) + '"' for n in range(5))
"""Five caveats of 1,000 characters, each true for order `4471` and within every bound alone:
5,000 characters together."""


def test_a_chain_whose_caveats_are_past_the_text_bound_is_denied_before_cedar() -> None:
    """The sub-agent's chain carries the five caveats (each checks alone): its calls are
    denied as a chain with a caveat no gate evaluates, its preview shows no tool, and
    `Verifier.verify` refuses it unevaluated, all before Cedar runs."""
    for caveat in LONG:
        check_caveat(caveat)
    world = make_world(sub_caveats=LONG)
    point = world.point(world.store(world.bundle()))
    sub = world.credential(world.sub_chain, world.sub)
    assert point.decide(sub, _lookup("4471"), now=T + 10).outcome is Outcome.CAVEAT_INVALID
    assert point.visible_tools(sub, now=T + 10) == frozenset()
    failure = evaluate_caveats(sub, '{"args":{"order_id":"4471"},"now":1}')
    assert failure is not None
    assert not failure.evaluated
    assert "MAX_CHAIN_CAVEAT_TEXT" in failure.detail


def test_a_chain_whose_caveats_are_within_the_text_bound_is_decided() -> None:
    """Four of them (4,000 characters): decided as before, the call allowed and the tool
    shown."""
    world = make_world(sub_caveats=LONG[:4])
    point = world.point(world.store(world.bundle()))
    sub = world.credential(world.sub_chain, world.sub)
    assert point.decide(sub, _lookup("4471"), now=T + 10).allowed
    assert "lookup_order" in point.visible_tools(sub, now=T + 10)
