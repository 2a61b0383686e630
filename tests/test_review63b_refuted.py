"""Review 63b (adversarial review of the gates and Cedar policy bundles): attacks that did NOT
work, each kept as a test that fails if the defence it names breaks.

1. Preview vs decision: a permit whose condition errors on some argument paths only (Cedar's
   short-circuit `||` past an overflowing product, an `&&` into one) is shown by gate 1 and
   decided per call: the path that errs is denied, the one that does not is allowed — partial
   evaluation keeps the residual instead of hiding a callable tool.
2. Surrogate aliasing: `"\\ud83d\\ude00"` (two lone surrogates) and `"😀"` (one code point) are
   two Python strings that JSON writes alike (ASCII escapes), and Cedar reads both as the one
   character. An array repeating the "same" item in the two spellings is denied as a repeat
   (`_cedar_key` compares the encoded texts), so the tool never acts on an item Cedar judged once.
3. The tool gate hands the tool what Cedar judged: a surrogate pair is run as the character the
   policy compared (the arguments are decoded once), not as the two code points given.
4. A lease ttl past Cedar's i64 (context built by the engine itself) is denied, never a crash
   nor an allowed request with a clamped value.
5. Cedar entity paths (`A::A::...::B::"x"`) and a namespace of 20,000 segments, which the
   nesting scan does not count (no bracket, no operator), parse without overflowing the
   native stack: refused typed (a policy) or compiled (a schema), the process alive.
6. A signed bundle whose services map is keyed by a byte string (a service "name" that is no
   text, which `check_policy_inputs` would raise ArgumentError for) is refused at decoding
   (troth's CBOR takes text map keys only): PolicyError MALFORMED, before anything compiles.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gates import POLICIES, TOOLS, T, make_world
from troth.credentials import RevocationKind
from troth.encoding import cbor
from troth.errors import PolicyError, PolicyFailure
from troth.gates import (
    LeaseRequest,
    Outcome,
    PolicyEngine,
    Tool,
    ToolCall,
    ToolGate,
    compile_policies,
    verify_bundle,
)

NOW = T + 10
_OVERFLOW = "principal.not_before * 1000000000000 > 0"  # not_before ~1.78e9: past i64


_ALLOWED, _ERROR, _NONE = Outcome.ALLOWED, Outcome.EVALUATION_ERROR, Outcome.NO_PERMIT


@pytest.mark.parametrize(
    ("condition", "small", "large"),
    [
        (f"context.args.amount < 5 || {_OVERFLOW}", _ALLOWED, _ERROR),
        (f"if context.args.amount < 5 then true else {_OVERFLOW}", _ALLOWED, _ERROR),
        (f"context.args.amount < 5 && ({_OVERFLOW} || true)", _ERROR, _NONE),
    ],
)
def test_a_permit_erring_on_some_paths_is_shown_and_decided_per_call(
    condition: str, small: Outcome, large: Outcome
) -> None:
    policy = (
        '@id("p") permit(principal, action == Action::"invoke:refund", resource) '
        f"when {{ {condition} }};\n"
    )
    engine = PolicyEngine(compile_policies(policy, "", TOOLS), revision=1)
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    assert engine.visible_tools(member) == frozenset({"refund"})
    for amount, outcome in ((3, small), (7, large)):
        call = ToolCall("refund", {"order_id": "o", "amount": amount})
        decision = engine.decide(member, call, now=NOW)
        assert decision.outcome is outcome
        assert decision.allowed is (outcome is _ALLOWED)
        if outcome is _ERROR:
            assert decision.errors == ("policy p could not be evaluated",)


_ITEMS: dict[str, Any] = {
    "take": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "string"}}},
        "required": ["items"],
    }
}
_TAKE = '@id("take") permit(principal, action == Action::"invoke:take", resource);\n'
_PAIR = "\ud83d\ude00"  # two lone surrogates: JSON writes them as it writes U+1F600
_GRIN = "\U0001f600"


def test_a_surrogate_pair_and_its_character_are_one_set_item() -> None:
    assert _PAIR != _GRIN
    engine = PolicyEngine(compile_policies(_TAKE, "", _ITEMS), revision=1)
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    repeated = engine.decide(member, ToolCall("take", {"items": [_GRIN, _PAIR]}), now=NOW)
    assert not repeated.allowed
    assert repeated.outcome is Outcome.ARGUMENTS
    once = engine.decide(member, ToolCall("take", {"items": [_GRIN, "b"]}), now=NOW)
    assert once.allowed


def test_the_tool_gate_runs_a_surrogate_pair_as_the_character_cedar_judged() -> None:
    world = make_world()
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"item": {"type": "string"}},
        "required": ["item"],
    }
    policy = (
        '@id("grin") permit(principal, action == Action::"invoke:pick", resource) '
        f'when {{ context.args.item == "{_GRIN}" }};\n'
    )
    store = world.store(world.bundle(policies=policy, tools={"pick": schema}))
    ran: list[str] = []

    def pick(item: str) -> str:
        ran.append(item)
        return item

    gate = ToolGate(world.point(store), [Tool("pick", schema, pick)], clock=_Fixed(NOW))
    member = world.credential(world.support_chain, world.support)
    result = gate.invoke(member, "pick", {"item": _PAIR})
    assert result.allowed
    assert ran == [_GRIN]  # what the policy compared, not the two code points given


class _Fixed:
    def __init__(self, now: int) -> None:
        self._now = now

    def now(self) -> int:
        return self._now


@pytest.mark.parametrize("ttl", [2**63, -(2**63) - 1, 2**80])
def test_a_lease_ttl_past_i64_is_denied(ttl: int) -> None:
    policy = (
        '@id("l") permit(principal, action == Action::"lease", resource) '
        "when { context.ttl > 0 };\n"
    )
    engine = PolicyEngine(compile_policies(POLICIES + policy, "", TOOLS), revision=1)
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    assert engine.decide(member, LeaseRequest("db", ("read",), 60), now=NOW).allowed
    denied = engine.decide(member, LeaseRequest("db", ("read",), ttl), now=NOW)
    assert not denied.allowed


def test_long_entity_paths_and_namespaces_do_not_overflow_the_parser() -> None:
    deep = '@id("a") permit(principal in ' + "A::" * 50_000 + 'B::"x", action, resource);'
    with pytest.raises(PolicyError) as refused:
        compile_policies(deep, "", TOOLS)
    assert refused.value.reason is PolicyFailure.POLICIES_INVALID
    namespace = "namespace " + "::".join(["A"] * 20_000) + " { entity E; }"
    compiled = compile_policies(POLICIES, namespace, TOOLS)
    assert compiled.policy_ids == ("lookup", "refund", "refund-cap", "export")


def test_a_bundle_keying_its_services_by_bytes_is_refused_at_decoding() -> None:
    world = make_world()
    good = world.bundle(services={"orders": ["status"]})
    envelope = cbor.decode(good)
    body = envelope[2]
    keyed = b"\xa1\x66orders\x81\x66status"
    assert keyed in body
    forged = body.replace(keyed, b"\xa1\x46orders\x81\x66status")  # a byte-string key
    envelope[2] = forged
    envelope[3] = world.authority.signer.sign(forged)  # signed by the authority itself
    data = cbor.encode(envelope)
    with pytest.raises(PolicyError) as refused:
        verify_bundle(data, verifier=world.verifier, feeds=world.feeds(), now=T + 5)
    assert refused.value.reason is PolicyFailure.MALFORMED


# -- caches: a decision never outlives the feed or the bundle it was made under ---------------


def test_a_cached_decision_does_not_outlive_a_revocation_of_the_same_credential() -> None:
    world = make_world()
    store = world.store(world.bundle())
    point = world.point(store)
    sub = world.credential(world.sub_chain, world.sub)  # one object, decided again and again
    call = ToolCall("lookup_order", {"order_id": "o"})
    assert point.decide(sub, call, now=NOW).allowed
    assert point.decide(sub, call, now=NOW + 1).allowed  # the feed check cached for this pair
    world.revoke(RevocationKind.IDENTITY, world.sub.identifier.digest, now=NOW + 2)
    denied = point.decide(sub, call, now=NOW + 3)
    assert not denied.allowed
    assert denied.outcome is Outcome.CREDENTIAL
    assert "revoked" in denied.reason


def test_a_new_revision_decides_and_previews_a_chain_the_old_engine_cached() -> None:
    world = make_world()
    store = world.store(world.bundle(revision=1))
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    call = ToolCall("lookup_order", {"order_id": "o"})
    assert point.decide(member, call, now=NOW).allowed
    assert "lookup_order" in point.visible_tools(member, now=NOW)
    tighter = POLICIES.replace('@id("lookup") permit', '@id("lookup") forbid')
    store.accept(world.bundle(revision=2, policies=tighter), feeds=world.feeds(), now=NOW + 1)
    denied = point.decide(member, call, now=NOW + 2)
    assert (denied.allowed, denied.policies, denied.revision) == (False, ("lookup",), 2)
    assert "lookup_order" not in point.visible_tools(member, now=NOW + 2)
