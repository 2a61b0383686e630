"""Differential tests: troth's engine against cedarpy called directly on the same policy text,
composed schema, entities and request, over a generated corpus. Same decision (troth's rule:
Allow with zero errors) and same deciding policies (the @ids, sorted)."""

from __future__ import annotations

import json
from typing import Any

import cedarpy
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.support.parties import Party, make_party, verified_feed
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    VerifiedCredential,
    delegate,
    issue_credential,
)
from troth.gates import PolicyEngine, ToolCall, check_caveat, compile_policies
from troth.gates.entities import credential_entities
from troth.vault import SoftwareVault

T = 1_780_000_000
TOOLS = {
    "refund": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "amount": {"type": "integer"}},
        "required": ["order_id", "amount"],
    },
    "lookup_order": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "note": {"type": "string"}},
        "required": ["order_id"],
    },
}
CAVEATS = (
    (),
    ("!(context.args has amount) || context.args.amount <= 100",),
    ("context.args.amount <= 100",),  # errors for lookup_order: denies it
)


def _pool() -> list[VerifiedCredential]:
    vault = SoftwareVault()
    authority, *members = (make_party(vault, now=T) for _ in range(6))
    verifier = ChainVerifier(TrustPolicy(frozenset({authority.identifier})))
    feeds = {authority.identifier: verified_feed(authority, now=T)}

    def chain(party: Party, attributes: dict[str, Any]) -> CredentialChain:
        credential = issue_credential(
            authority.signer,
            subject=party.identifier,
            attributes=Attributes(attributes),
            now=T,
            ttl=86_400,
            depth=2,
        )
        return CredentialChain((credential,), (authority.identity.history,))

    writer = chain(members[0], {"orders.access": frozenset({"read", "write"})})
    chains = [
        (writer, members[0]),
        (chain(members[1], {"orders.access": "read"}), members[1]),
        (chain(members[2], {"orders.access": "admin", "x.flag": "on"}), members[2]),
    ]
    for caveats, party in zip(CAVEATS[1:], members[3:5], strict=True):
        sub = delegate(
            members[0].signer,
            writer,
            subject=party.identifier,
            attributes=Attributes({"orders.access": "read"}),
            now=T,
            ttl=3600,
            purpose="p",
            caveats=caveats,
        )
        chains.append((sub, party))
    return [
        verifier.verify(c.encode(), presenter=p.identifier, feeds=feeds, now=T + 1)
        for c, p in chains
    ]


POOL = _pool()
TAG_VALUES = st.sampled_from(["read", "write", "admin"])
TAG_KEYS = st.sampled_from(["orders.access", "x.flag"])
SCOPES = st.sampled_from(
    [
        'action == Action::"invoke:refund"',
        'action == Action::"invoke:lookup_order"',
        'action in Action::"invoke"',
    ]
)


@st.composite
def conditions(draw: st.DrawFn, scope: str) -> str:
    key, value = draw(TAG_KEYS), draw(TAG_VALUES)
    options = [
        f'principal.hasTag("{key}") && principal.getTag("{key}").contains("{value}")',
        f"principal.depth == {draw(st.integers(0, 1))}",
        "true",
        "principal has delegator",
    ]
    if "refund" in scope:
        bound = draw(st.integers(-5, 2000))
        options += [
            f"context.args.amount <= {bound}",
            f"context.args.amount > {bound}",
            "context.args.amount * 1000000000000000000 > 0",  # overflows for |amount| >= 10
        ]
    if "lookup" in scope:
        options.append('context.args has note && context.args.note == "vip"')
    return draw(st.sampled_from(options))


@st.composite
def policy_sets(draw: st.DrawFn) -> str:
    texts = []
    for index in range(draw(st.integers(0, 6))):
        effect = draw(st.sampled_from(["permit", "permit", "forbid"]))
        scope = draw(SCOPES)
        keyword = draw(st.sampled_from(["when", "unless"]))
        condition = draw(conditions(scope))
        texts.append(
            f'@id("p{index}") {effect}(principal, {scope}, resource) {keyword} {{ {condition} }};'
        )
    return "\n".join(texts)


REQUESTS = st.one_of(
    st.builds(
        lambda amount, extra: ToolCall("refund", {"order_id": "o", "amount": amount, **extra}),
        st.one_of(st.integers(-50, 3000), st.integers(-50, 3000), st.sampled_from(["20", 2**63])),
        st.sampled_from([{}, {}, {}, {"x": 1}]),
    ),
    st.builds(
        lambda note: ToolCall("lookup_order", {"order_id": "o", **note}),
        st.sampled_from([{}, {"note": "vip"}, {"note": "x"}, {"note": 3}]),
    ),
)


def direct(
    policies: str, schema: str, credential: VerifiedCredential, request: ToolCall, now: int
) -> tuple[bool, tuple[str, ...]]:
    """cedarpy, called the plain way: texts, entities JSON, the caveats as forbids."""
    caveats = "\n".join(
        f'@id("caveat:{link.index}:{n}")\n{check_caveat(c)}'
        for link in credential.links
        for n, c in enumerate(link.caveats)
    )
    result = cedarpy.is_authorized(
        {
            "principal": f'Agent::"{credential.actor}"',
            "action": f'Action::"invoke:{request.tool}"',
            "resource": f'Tool::"{request.tool}"',
            "context": {"args": dict(request.arguments), "now": now},
        },
        policies + "\n" + caveats,
        credential_entities(credential),
        schema,
    )
    names = result.diagnostics.id_annotations_by_reason
    allowed = result.allowed and not result.diagnostics.errors
    return allowed, tuple(sorted(names.get(r, r) for r in result.diagnostics.reasons))


@settings(max_examples=200, deadline=None)
@given(
    policies=policy_sets(),
    who=st.sampled_from(range(len(POOL))),
    request=REQUESTS,
)
def test_troth_decides_as_cedar_does(policies: str, who: int, request: ToolCall) -> None:
    compiled = compile_policies(policies, "", TOOLS)
    credential = POOL[who]
    decision = PolicyEngine(compiled).decide(credential, request, now=T + 5)
    expected = direct(policies, compiled.schema_text, credential, request, T + 5)
    assert (decision.allowed, decision.policies) == expected, decision
    event(decision.outcome.value)
    assert json.dumps(decision.to_json())  # always serialisable
