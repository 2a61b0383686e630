"""Review 55k, caveats 1: a delegation signed caveats that together are past the chain's bounds
(review 55f), a credential every gate then denies.

Review 55f bounds a chain's caveats together (`MAX_CAVEAT_LIKE_WEIGHT` of `like` work,
`MAX_CHAIN_CAVEAT_TEXT` characters): a chain past either is denied at every request
(`caveat-invalid`) and refused by `Verifier.verify`. But a delegation checked each caveat alone
(`check_caveat`): `Node.delegate` (and `troth credential delegate`) signed two caveats of 21
like work each, or a caveat of 21 beneath a parent chain's 21, and handed out a credential that
no gate would ever allow, saying nothing; its holder learnt it at its first call, the
delegator never. Now a delegation checks the chain it makes as the gates do, and refuses
(PolicyError, caveat-invalid) before it signs.

Was a strict xfail until `CredentialWallet.delegate` checked the chain's caveats together
(`check_chain_caveats`, at a node the gates' `caveat_fragment`)."""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from troth import limits
from troth.errors import PolicyError, PolicyFailure

READ = {"orders.customer": "4471", "orders.access": "read"}
LIGHT = 'context.args.order_id like "*' + "a" * 20 + '"'
"""21 of like work: within the bound alone, two past it together."""
_NOT = 'context.args.order_id != "'
LONG = tuple(_NOT + chr(ord("a") + n) * (1000 - len(_NOT) - 1) + '"' for n in range(5))
"""Five caveats of 1,000 characters: past MAX_CHAIN_CAVEAT_TEXT together."""


def test_a_delegation_whose_chain_would_be_past_the_caveat_bounds_is_refused(
    troth_home: Path,
) -> None:
    """Two light caveats in one delegation, one beneath a parent's, five long ones: each
    refused before anything is signed; within the bounds, delegated as before."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        customer = agents.identities.create("customer")
        support = agents.identities.create("support")
        sub = agents.identities.create("sub")
        agents.enroll(acme.ticket(READ), identity=customer)
        for caveats, bound in (
            ([LIGHT, LIGHT], "MAX_CAVEAT_LIKE_WEIGHT"),
            (list(LONG), "MAX_CHAIN_CAVEAT_TEXT"),
        ):
            with pytest.raises(PolicyError) as caught:
                agents.delegate(
                    customer, to=support, attributes=READ, ttl=60, purpose="p", caveats=caveats
                )
            assert caught.value.reason is PolicyFailure.CAVEAT_INVALID
            assert bound in caught.value.detail
        to_support = agents.delegate(
            customer, to=support, attributes=READ, ttl=600, purpose="p", caveats=[LIGHT]
        )
        agents.hold(support, to_support)
        with pytest.raises(PolicyError) as caught:
            agents.delegate(support, to=sub, attributes=READ, ttl=60, purpose="q", caveats=[LIGHT])
        assert "MAX_CAVEAT_LIKE_WEIGHT" in caught.value.detail
        assert limits.MAX_CAVEAT_LIKE_WEIGHT < 42
        agents.delegate(support, to=sub, attributes=READ, ttl=60, purpose="q", caveats=[LONG[0]])
