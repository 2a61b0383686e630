"""Review 49k, refuted: attacks on `troth.Verifier.verify`'s evaluation of a chain's caveats
that the code withstood."""

from __future__ import annotations

import pytest

import troth

READ = {"orders.access": "read"}
INJECTION = (
    "true }; permit(principal, action, resource); forbid(principal, action, resource) unless { true"
)


@pytest.mark.parametrize(
    "caveat",
    [
        INJECTION,  # the naive wrap would add a permit (and a forbid that never applies)
        "context.complaint == ",  # no Cedar condition
        "false } ; //",
    ],
)
def test_a_caveat_no_wallet_checked_is_refused_not_skipped(caveat: str) -> None:
    """A delegator whose software signs a caveat that is no single Cedar condition (here the
    node's wallet check turned off) cannot make `verify` evaluate something else: the chain
    is refused, the caveat named."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        customer = agents.identities.create("customer")
        sub = agents.identities.create("sub")
        agents.enroll(acme.ticket(READ), identity=customer)
        agents._stored.wallet.check_caveat = None  # a delegator with no such check, nor the
        agents._stored.wallet.check_chain_caveats = None  # whole chain's (review 55k, caveats 1)
        chain = agents.delegate(
            customer, to=sub, attributes=READ, ttl=60, purpose="p", caveats=["true", caveat]
        )
        verifier = troth.Verifier(trust=[acme.identifier], feeds=acme)
        with pytest.raises(troth.CredentialError) as caught:
            verifier.verify(chain, presenter=sub, context={"complaint": "1"})
        assert caught.value.reason is troth.CredentialFailure.CAVEAT_UNEVALUATED
        assert caught.value.detail.startswith("caveat:1:1: not a Cedar condition")
        assert caught.value.link == 1


def test_a_context_cannot_forge_the_principal_or_its_tags() -> None:
    """The caller's context is a record under `context`: a key named like an entity field
    (`principal`, `__entity`) changes nothing the caveat reads about the principal."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        customer = agents.identities.create("customer")
        sub = agents.identities.create("sub")
        agents.enroll(acme.ticket({"orders.access": ["read", "write"]}), identity=customer)
        caveat = 'principal.getTag("orders.access").contains("write")'
        chain = agents.delegate(
            customer, to=sub, attributes=READ, ttl=60, purpose="p", caveats=[caveat]
        )
        verifier = troth.Verifier(trust=[acme.identifier], feeds=acme)
        forged = {
            "principal": {"orders.access": ["write"]},
            "who": {"__entity": {"type": "Agent", "id": str(customer.identifier)}},
        }
        with pytest.raises(troth.CredentialError) as caught:
            verifier.verify(chain, presenter=sub, context=forged)
        assert caught.value.reason is troth.CredentialFailure.CAVEAT_UNSATISFIED
