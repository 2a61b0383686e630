"""Review 49k, caveats: `troth.Verifier.verify` handed back a chain's `attributes` without
evaluating its `caveats` (Cedar conditions a delegator put on the chain), leaving the caller
to enforce them: a caller that read `attributes` and ignored `caveats` granted more than was
delegated (fail open)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import troth

READ = {"orders.customer": "4471", "orders.access": "read"}


@dataclass
class Scene:
    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    support: troth.Identity
    sub: troth.Identity
    to_support: troth.Credential
    to_sub: troth.Credential


@pytest.fixture
def scene() -> Iterator[Scene]:
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        customer = agents.identities.create("customer")
        support = agents.identities.create("support")
        sub = agents.identities.create("sub")
        agents.enroll(acme.ticket({**READ, "orders.access": ["read", "write"]}), identity=customer)
        to_support = agents.delegate(
            customer,
            to=support,
            attributes=READ,
            ttl=600,
            purpose="resolve complaint 123",
            caveats=['context.complaint == "123"'],
        )
        agents.hold(support, to_support)
        to_sub = agents.delegate(support, to=sub, attributes=READ, ttl=60, purpose="history")
        yield Scene(hub, agents, acme, support, sub, to_support, to_sub)


def _verifier(scene: Scene) -> troth.Verifier:
    return troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme)


def test_a_caveated_chain_does_not_verify_with_its_caveats_unevaluated(scene: Scene) -> None:
    """The sub-agent's chain carries link 1's caveat `context.complaint == "123"`: verified
    with no context, nobody has evaluated it, so no attributes come back (fail closed)."""
    with pytest.raises(troth.CredentialError) as caught:
        _verifier(scene).verify(scene.to_sub, presenter=scene.sub)
    assert caught.value.reason is troth.CredentialFailure.CAVEAT_UNEVALUATED
    assert caught.value.link == 1
    assert caught.value.detail.startswith("caveat:1:0: no context given")


def test_a_caveat_true_for_the_context_verifies(scene: Scene) -> None:
    verified = _verifier(scene).verify(
        scene.to_sub, presenter=scene.sub, context={"complaint": "123"}
    )
    assert verified.attributes.values_of("orders.access") == {"read"}
    assert verified.caveats == ('context.complaint == "123"',)  # kept on the result


@pytest.mark.parametrize(
    ("context", "reason", "detail"),
    [
        ({"complaint": "124"}, "CAVEAT_UNSATISFIED", "caveat:1:0: false for this context"),
        ({"complaint": 123}, "CAVEAT_UNSATISFIED", "caveat:1:0: false for this context"),
        ({}, "CAVEAT_UNEVALUATED", "caveat:1:0: an error for this context"),
        ({"other": "123"}, "CAVEAT_UNEVALUATED", "caveat:1:0: an error for this context"),
        ({"complaint": 1.5}, "CAVEAT_UNEVALUATED", "caveat:1:0: the context is not a Cedar"),
        ({"complaint": 2**70}, "CAVEAT_UNEVALUATED", "caveat:1:0: the context is not a Cedar"),
    ],
)
def test_a_caveat_false_or_unevaluable_for_the_context_refuses(
    scene: Scene, context: dict[str, object], reason: str, detail: str
) -> None:
    with pytest.raises(troth.CredentialError) as caught:
        _verifier(scene).verify(scene.to_sub, presenter=scene.sub, context=context)
    assert caught.value.reason is troth.CredentialFailure[reason]
    assert caught.value.link == 1
    assert caught.value.detail.startswith(detail)


def test_the_caller_may_opt_in_to_unevaluated_caveats(scene: Scene) -> None:
    verified = _verifier(scene).verify(scene.to_sub, presenter=scene.sub, unevaluated_caveats=True)
    assert verified.caveats == ('context.complaint == "123"',)
    with pytest.raises(troth.ArgumentError, match="context"):  # one or the other
        _verifier(scene).verify(
            scene.to_sub, presenter=scene.sub, context={}, unevaluated_caveats=True
        )
    with pytest.raises(troth.ArgumentError, match="unevaluated_caveats"):
        _verifier(scene).verify(
            scene.to_sub,
            presenter=scene.sub,
            unevaluated_caveats=1,  # type: ignore[arg-type]
        )


def test_a_chain_without_caveats_verifies_without_a_context(scene: Scene) -> None:
    customer = scene.agents.identities.get("customer")
    plain = scene.agents.delegate(customer, to=scene.sub, attributes=READ, ttl=60, purpose="p")
    verifier = _verifier(scene)
    assert verifier.verify(plain, presenter=scene.sub).caveats == ()
    assert verifier.verify(plain, presenter=scene.sub, context={"x": 1}).caveats == ()


@pytest.mark.parametrize(
    "context",
    [
        ["complaint"],
        {1: "123"},
        {"now": 5},
        {"complaint": object()},
        {"complaint": float("nan")},
    ],
)
def test_a_context_that_is_no_cedar_record_is_an_argument_error(
    scene: Scene, context: object
) -> None:
    with pytest.raises(troth.ArgumentError, match="context"):
        _verifier(scene).verify(
            scene.to_sub,
            presenter=scene.sub,
            context=context,  # type: ignore[arg-type]
        )


def test_now_and_the_chains_entities_are_in_the_request(scene: Scene) -> None:
    """A caveat sees `context.now` (the verification time) and the principal's tags and
    attributes, as at a decision point."""
    customer = scene.agents.identities.get("customer")
    caveats = [
        "context.now > 0",
        'principal.getTag("orders.access").contains("read")',
        "principal.depth == 1",
        'action == Action::"verify"',
    ]
    chain = scene.agents.delegate(
        customer, to=scene.sub, attributes=READ, ttl=60, purpose="p", caveats=caveats
    )
    verifier = _verifier(scene)
    verified = verifier.verify(chain, presenter=scene.sub, context={})
    assert verified.caveats == tuple(caveats)
    late = scene.agents.delegate(
        customer, to=scene.sub, attributes=READ, ttl=60, purpose="p", caveats=["context.now < 5"]
    )
    with pytest.raises(troth.CredentialError) as caught:
        verifier.verify(late, presenter=scene.sub, context={})
    assert caught.value.reason is troth.CredentialFailure.CAVEAT_UNSATISFIED


def test_a_refusal_names_every_false_caveat_in_chain_order(scene: Scene) -> None:
    chain = scene.agents.delegate(
        scene.support,
        to=scene.sub,
        attributes=READ,
        ttl=60,
        purpose="p",
        caveats=["context.a == 1", "context.b == 2"],
    )
    with pytest.raises(troth.CredentialError) as caught:
        _verifier(scene).verify(
            chain, presenter=scene.sub, context={"complaint": "1", "a": 1, "b": 3}
        )
    assert caught.value.detail == "caveat:1:0, caveat:2:1: false for this context"
    assert caught.value.link == 1
    ok = _verifier(scene).verify(
        chain, presenter=scene.sub, context={"complaint": "123", "a": 1, "b": 2}
    )
    assert len(ok.caveats) == 3


def test_checks_before_the_caveats_still_refuse_first(scene: Scene) -> None:
    """A revoked chain is refused as revoked, whatever its caveats and context."""
    customer = scene.agents.identities.get("customer")
    scene.agents.revoke(scene.to_sub, by=customer, reason="done")
    with pytest.raises(troth.CredentialError) as caught:
        _verifier(scene).verify(scene.to_sub, presenter=scene.sub, context={"complaint": "123"})
    assert caught.value.reason is troth.CredentialFailure.REVOKED
