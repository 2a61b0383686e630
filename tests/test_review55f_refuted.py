"""Review 55f: attacks on the gates' decision core that did not work. Each test is a real
attempt by a member holding a (caveated) delegation, and fails if the defence it meets breaks.

- A lease asking no scope (or no ttl) gets the secret's every scope (its default ttl): Cedar
  judges those, not the empty set `["refunds"].containsAll(context.scope)` holds for.
- A tool name in another case, or with a trailing dot, is a tool the bundle does not declare,
  not the permitted `refund`.
- The per-chain caches (the chain's entities with one tool in one server, the preview per
  server) never answer for another chain or server, whatever order they are filled in.
- A `str` holding a surrogate pair as two code points is one character to Cedar and to the
  tool alike: the forbid of that character holds.
- The `like` bound (review 55f, caveats 1) is not escaped: a pattern is a literal (Cedar
  refuses one built with `+`), and a pattern inside an `if`, a record or a set is counted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gates import POLICIES, T, make_world
from tests.support.leases import open_broker
from troth import limits
from troth.clock import FixedClock
from troth.errors import PolicyError, PolicyFailure, SecretError, SecretFailure
from troth.gates import Outcome, Tool, ToolCall, ToolGate, check_caveat
from troth.secrets import GatesLeasePolicy

LEASES = """\
@id("lease-refunds") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("orders.access") && principal.getTag("orders.access").contains("write")
         && ["refunds"].containsAll(context.scope) && context.ttl <= 300 };
"""


@pytest.mark.parametrize(
    ("config", "scope", "ttl"),
    [
        ({"scopes": ["refunds", "charges"], "ttl": 120, "max_ttl": 600}, None, 120),
        ({"scopes": ["refunds"], "ttl": 500, "max_ttl": 600}, ("refunds",), None),
    ],
    ids=["no-scope-asked", "no-ttl-asked"],
)
def test_a_lease_asking_nothing_is_judged_with_what_it_would_get(
    tmp_path: Path, config: dict[str, object], scope: tuple[str, ...] | None, ttl: int | None
) -> None:
    """The support agent may lease `payments` with scope refunds and a ttl up to 300 s. Asking
    no scope gets refunds and charges, asking no ttl the secret's 500 s: Cedar judges those
    (an empty scope would pass `containsAll`), so both are denied. The control (refunds, 120
    s) is leased."""
    world = make_world()
    point = world.point(world.store(world.bundle(policies=POLICIES + LEASES)))
    _db, broker = open_broker(tmp_path / "node.db", now=T, policy=GatesLeasePolicy(point))
    broker.put_secret("payments", "token", {**config, "audience": "payments"}, b"", now=T)
    support = world.credential(world.support_chain, world.support)
    with pytest.raises(SecretError) as refused:
        broker.issue(support, "payments", scope=scope, ttl=ttl, now=T + 10)
    assert refused.value.reason is SecretFailure.DENIED
    issued = broker.issue(support, "payments", scope=("refunds",), ttl=120, now=T + 10)
    assert issued.lease.scope == ("refunds",)


@pytest.mark.parametrize("name", ["Refund", "REFUND", "refund.", "refund-", "refund_"])
def test_a_tool_names_variant_is_an_undeclared_tool(name: str) -> None:
    """`refund` is permitted to the support agent (write); its variants are names the bundle
    does not declare: unknown, whatever a case-folding upstream would run."""
    world = make_world()
    point = world.point(world.store(world.bundle()))
    support = world.credential(world.support_chain, world.support)
    arguments = {"order_id": "4471", "amount": 20}
    assert point.decide(support, ToolCall("refund", arguments), now=T + 10).allowed
    decision = point.decide(support, ToolCall(name, arguments), now=T + 10)
    assert decision.outcome is Outcome.UNKNOWN_REQUEST


SERVED = POLICIES.replace(
    'permit(principal, action == Action::"invoke:refund", resource)',
    'permit(principal, action == Action::"invoke:refund", resource in Server::"payments")',
)


def test_the_per_chain_caches_answer_for_their_chain_and_server_only() -> None:
    """The support agent's refund on `payments` is allowed first (its entities with the tool
    in that server cached, its preview there too); then the same chain on `mirror` and on no
    server, and the read-only sub-agent on `payments`, are each denied, and previewed without
    refund; asked again in the other order on a fresh point, the same answers."""
    world = make_world()
    arguments = {"order_id": "4471", "amount": 20}
    support = world.credential(world.support_chain, world.support)
    sub = world.credential(world.sub_chain, world.sub)
    expected = [
        (support, "payments", True),
        (support, "mirror", False),
        (support, None, False),
        (sub, "payments", False),
    ]
    for order in (expected, expected[::-1]):
        point = world.point(world.store(world.bundle(policies=SERVED)))
        for caller, server, allowed in order:
            call = ToolCall("refund", arguments, server=server)
            assert point.decide(caller, call, now=T + 10).allowed is allowed
            shown = point.visible_tools(caller, now=T + 10, server=server)
            assert ("refund" in shown) is allowed


def lookup_order(order_id: str) -> str:
    """What the tool runs with."""
    return order_id


def test_a_surrogate_pair_in_two_code_points_is_one_character_to_both() -> None:
    """A forbid of order `😀`: the caller's `str` holds it as two lone surrogates, which JSON
    writes as the pair: the gate judges (and would run) the one character, and denies it."""
    forbid = '@id("no-emoji") forbid(principal, action, resource) when { context has args && '
    forbid += 'context.args has order_id && context.args.order_id == "\\u{1F600}" };\n'
    world = make_world()
    point = world.point(world.store(world.bundle(policies=POLICIES + forbid)))
    gate = ToolGate(point, [Tool.from_function(lookup_order)], clock=FixedClock(T + 10))
    support = world.credential(world.support_chain, world.support)
    assert gate.invoke(support, "lookup_order", {"order_id": "4471"}).value == "4471"
    denied = gate.invoke(support, "lookup_order", {"order_id": "\ud83d\ude00"})
    assert denied.decision.outcome is Outcome.FORBIDDEN
    assert denied.decision.policies == ("no-emoji",)


@pytest.mark.parametrize(
    "caveat",
    [
        'context.args.order_id like "*" + "' + "a" * 40 + '"',
        'if true then context.args.order_id like "*' + "a" * 40 + '" else false',
        '{a: context.args.order_id like "*' + "a" * 40 + '"}.a',
        '[context.args.order_id like "*' + "a" * 40 + '"].contains(true)',
        'context.args.order_id like "*' + "\\*" * 40 + '"',
    ],
    ids=["concatenated", "in-if", "in-record", "in-set", "escaped-stars"],
)
def test_the_like_bound_is_not_escaped(caveat: str) -> None:
    """Each caveat holds a pattern of 40 literal characters after a `*` (41 > the bound):
    refused, by Cedar's parser (a pattern is a literal) or by the bound."""
    assert limits.MAX_CAVEAT_LIKE_WEIGHT < 41
    with pytest.raises(PolicyError) as refused:
        check_caveat(caveat)
    assert refused.value.reason is PolicyFailure.CAVEAT_INVALID
