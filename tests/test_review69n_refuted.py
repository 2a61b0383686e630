"""Review 69n (per-call policy evaluation, the Cedar path): attacks that did not work, each
kept as a test that fails if the defence it names breaks.

- Arguments that, turned into Cedar context, could change the decision through encoding: a
  string reading as an entity uid, `__entity` / `__extn` escapes (at the top, in a record),
  integers past i64 and past 2^53, floats (integral, huge), NaN and infinity, a bool or a
  numeric string for an integer, null, a lone surrogate, a look-alike (Cyrillic) argument name,
  arguments nested past the schema and past the encoder: each is denied `arguments` before
  or by Cedar's request check, never judged as another value.
- A tool name that differs from a declared one by case, width or a space: `unknown-request`.
- A bundle `when` on an optional argument without `has`: refused at compile time (Cedar's
  validator); a caveat reading an argument the call leaves out errors, and the error denies,
  even right after the same policy allowed a clean request (the cache of Cedar's answers by
  their text before the metrics, review 69g, keys the errors too).
- A forbid that errors (an overflow) beside a satisfied permit: denied `evaluation-error`.
- The per-chain decision cache (by Allow and the deciding policies): calls with other
  arguments take no cached decision of another outcome; a new bundle revision's engine
  decides afresh (its revision, its policy names); a revocation denies a chain whose
  decisions were cached.
- 2,000 distinct calls: each decided by its own arguments; the answer cache stays within its
  bound.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gates import POLICIES, TOOLS, T, make_world
from tests.test_review41d_caveats import caveated_callers
from troth.credentials import CredentialChain, RevocationKind
from troth.errors import PolicyError
from troth.gates import Outcome, PolicyEngine, ToolCall, cedar_call, compile_policies

NOW = T + 10
STORE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "n": {"type": "integer"},
        "rec": {"type": "object", "properties": {"a": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}
STORE_POLICIES = (
    POLICIES
    + '@id("store") permit(principal, action == Action::"invoke:store", resource);\n'
    + '@id("no-admin") forbid(principal, action == Action::"invoke:store", resource)\n'
    + '  when { context.args has name && context.args.name == "admin" };\n'
    + '@id("n-cap") forbid(principal, action == Action::"invoke:store", resource)\n'
    + "  when { context.args has n && context.args.n > 10 };\n"
)


def _engine(policies: str = STORE_POLICIES, revision: int = 1) -> PolicyEngine:
    return PolicyEngine(
        compile_policies(policies, "", {**TOOLS, "store": STORE}), revision=revision
    )


@pytest.fixture(scope="module")
def member() -> Any:
    world = make_world()
    return world.credential(world.support_chain, world.support)


ENCODED: dict[str, dict[str, Any]] = {
    "entity escape": {"name": {"__entity": {"type": "Agent", "id": "admin"}}},
    "extension escape": {"n": {"__extn": {"fn": "decimal", "arg": "99.0"}}},
    "escape in a record": {"rec": {"__entity": {"type": "Agent", "id": "a"}}},
    "escaped name in a record": {"rec": {"__expr": "1"}},
    "past i64": {"n": 2**63},
    "below i64": {"n": -(2**63) - 1},
    "past 2^53": {"n": 2**53},
    "integral float": {"n": 11.0},
    "huge float": {"n": 1e20},
    "NaN": {"n": float("nan")},
    "infinity": {"n": float("inf")},
    "bool for an integer": {"n": True},
    "numeric string": {"n": "11"},
    "null": {"n": None},
    "lone surrogate": {"name": "\ud800"},
    "look-alike name": {"n\u0430me": "admin"},
    "nested past the schema": {"tags": [["admin"]]},
    "nested past the encoder": {"name": [[[[[]]]]]},
}


@pytest.mark.parametrize("args", ENCODED.values(), ids=list(ENCODED))
def test_encoded_arguments_are_denied_never_judged_as_another_value(
    member: Any, args: dict[str, Any]
) -> None:
    decision = _engine().decide(member, ToolCall("store", args), now=NOW)
    assert (decision.allowed, decision.outcome) == (False, Outcome.ARGUMENTS)


def test_a_string_that_reads_as_an_entity_uid_stays_a_string(member: Any) -> None:
    engine = _engine()
    assert engine.decide(member, ToolCall("store", {"name": 'Agent::"x"'}), now=NOW).allowed
    denied = engine.decide(member, ToolCall("store", {"name": "admin"}), now=NOW)
    assert denied.policies == ("no-admin",)


def test_arguments_nested_past_the_recursion_limit_are_denied(member: Any) -> None:
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]
    decision = _engine().decide(member, ToolCall("store", {"name": deep}), now=NOW)
    assert (decision.allowed, decision.outcome) == (False, Outcome.ARGUMENTS)


@pytest.mark.parametrize("name", ["Store", "STORE", "store ", "\uff53tore", "st\u00f6re"])
def test_a_tool_name_differing_by_case_or_width_is_undeclared(member: Any, name: str) -> None:
    decision = _engine().decide(member, ToolCall(name, {}), now=NOW)
    assert (decision.allowed, decision.outcome) == (False, Outcome.UNKNOWN_REQUEST)


def test_a_bundle_condition_on_an_optional_argument_without_has_is_refused() -> None:
    optional = (
        STORE_POLICIES
        + '@id("x") forbid(principal, action == Action::"invoke:store", resource)\n'
        + "  when { context.args.n > 10 };\n"
    )
    with pytest.raises(PolicyError):
        _engine(optional)


def test_a_caveat_erring_on_a_missing_argument_denies_after_a_clean_allow(member: Any) -> None:
    world = make_world()
    engine = _engine()
    (sub,) = caveated_callers(world, 1, ("context.args.n < 5",))
    plain = world.credential(world.support_chain, world.support)
    for _ in range(3):  # the same answer text, cached after its first reading
        assert engine.decide(plain, ToolCall("store", {}), now=NOW).allowed
    assert engine.decide(sub, ToolCall("store", {"n": 1}), now=NOW).allowed
    erring = engine.decide(sub, ToolCall("store", {}), now=NOW)
    assert (erring.allowed, erring.outcome) == (False, Outcome.EVALUATION_ERROR)
    assert erring.errors
    assert "caveat:" in erring.reason


def test_a_forbid_that_errors_beside_a_permit_denies(member: Any) -> None:
    overflow = (
        STORE_POLICIES
        + '@id("overflow") forbid(principal, action == Action::"invoke:store", resource)\n'
        + "  when { context.args has n && context.args.n * 9223372036854775807 > 0 };\n"
    )
    engine = _engine(overflow)
    assert not engine.decide(member, ToolCall("store", {"n": 1}), now=NOW).allowed
    decision = engine.decide(member, ToolCall("store", {"n": 2}), now=NOW)  # overflows
    assert (decision.allowed, decision.outcome) == (False, Outcome.EVALUATION_ERROR)
    assert decision.reason.endswith("policy overflow could not be evaluated for this request")


def test_cached_decisions_follow_the_arguments_the_bundle_and_revocation() -> None:
    world = make_world()
    store = world.store(world.bundle(policies=STORE_POLICIES, tools={**TOOLS, "store": STORE}))
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    outcomes = []
    for n in (1, 11, 2, 12, 3):  # alternating: each decision its own
        decision = point.decide(member, ToolCall("store", {"n": n}), now=NOW)
        outcomes.append((decision.allowed, decision.policies, decision.revision))
    allowed, capped = (True, ("store",), 1), (False, ("n-cap",), 1)
    assert outcomes == [allowed, capped, allowed, capped, allowed]
    renamed = STORE_POLICIES.replace('@id("store")', '@id("store-v2")')
    tools = {**TOOLS, "store": STORE}
    store.accept(
        world.bundle(revision=2, policies=renamed, tools=tools), feeds=world.feeds(), now=NOW
    )
    again = point.decide(member, ToolCall("store", {"n": 1}), now=NOW)
    assert (again.allowed, again.policies, again.revision) == (True, ("store-v2",), 2)
    link = CredentialChain.decode(world.support_chain).credentials[-1].hash
    world.revoke(RevocationKind.CREDENTIAL, link, now=NOW + 1)
    revoked = point.decide(member, ToolCall("store", {"n": 1}), now=NOW + 1)
    assert (revoked.allowed, revoked.outcome) == (False, Outcome.CREDENTIAL)


def test_two_thousand_distinct_calls_are_each_decided_and_the_cache_stays_bounded(
    member: Any,
) -> None:
    engine = _engine()
    for i in range(2000):
        n = i % 21 - 5  # -5 .. 15: over 10 capped
        decision = engine.decide(member, ToolCall("store", {"n": n, "name": f"u{i}"}), now=NOW)
        assert decision.allowed is (n <= 10), (i, decision)
    assert len(cedar_call._KNOWN) <= cedar_call._KNOWN_KEPT
