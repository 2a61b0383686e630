"""Review 48j, delegation: attacks tried as a member that the code refused (each test passes
because the attack fails)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gates import make_world
from tests.test_credentials_verify import (  # noqa: F401  (the fixture)
    READ,
    SKEW,
    T,
    World,
    forge,
    hand_on,
    link_body,
    rejects,
    to_bob,
    world,
)
from tests.test_gates_engine import NOW, engine
from troth import limits
from troth.credentials import Attributes, CredentialChain, issue_credential
from troth.credentials.format import CHAIN_TYPE
from troth.encoding import cbor
from troth.errors import CredentialError, CredentialFailure
from troth.gates import LeaseRequest, Outcome, ServiceCall, ToolCall

F = CredentialFailure
RELAY_A = Attributes({"troth.relay": "a"})


def _relay_root(at: World, attributes: Attributes = RELAY_A) -> CredentialChain:
    root = issue_credential(
        at.authority.signer,
        subject=at.alice.identifier,
        attributes=attributes,
        now=T,
        ttl=3600,
        depth=2,
    )
    return CredentialChain((root,), (at.authority.identity.history,))


@pytest.mark.parametrize(
    "wider",
    [
        Attributes({"troth.relay": "*"}),
        Attributes({"troth.relay": "a*"}),
        Attributes({"troth.relay": frozenset({"a", "b"})}),
        Attributes({"troth.relay": "a", "troth.admin": "yes"}),
        Attributes({"troth.relay": "A"}),
    ],
)
def test_a_wider_value_or_an_attribute_not_held_is_refused_at_issue_and_verify(
    world: World,  # noqa: F811
    wider: Attributes,
) -> None:
    """From `troth.relay=a`: a wildcard, a prefix pattern, a second value, another attribute,
    another case: refused when delegated, and as a hand-signed link."""
    root = _relay_root(world)
    with pytest.raises(CredentialError) as caught:
        hand_on(world.alice, root, world.bob, attributes=wider)
    assert caught.value.reason is F.AMPLIFIED
    forged = forge(world.alice, root, link_body(world, root, world.alice, attributes=wider))
    rejects(lambda: world.verify(forged, world.bob), F.AMPLIFIED, 1)


def test_a_cycle_back_to_the_authority_is_refused(world: World) -> None:  # noqa: F811
    chain = to_bob(world)
    body = link_body(world, chain, world.bob, subject=world.authority.identifier, depth=0)
    rejects(lambda: world.verify(forge(world.bob, chain, body), world.authority), F.CYCLE, 2)


def test_a_chain_one_link_over_the_global_limit_is_refused_before_anything_is_verified(
    world: World,  # noqa: F811
) -> None:
    """MAX_DELEGATION_LINKS + 2 credentials (the root and one link too many): refused as over
    a limit when decoded, whatever they hold (the copies of the root are not even read)."""
    root = world.root.credentials[0]
    entries = [root.to_cbor()] * (limits.MAX_DELEGATION_LINKS + 2)
    data = cbor.encode([CHAIN_TYPE, 1, entries, list(world.root.histories)])
    rejects(lambda: world.verify(data, world.alice), F.OVER_LIMIT)
    just = cbor.encode([CHAIN_TYPE, 1, entries[:-1], list(world.root.histories)])
    rejects(lambda: world.verify(just, world.alice), F.NOT_A_DELEGATION, 1)


def test_a_link_not_valid_yet_by_more_than_the_skew_is_refused(world: World) -> None:  # noqa: F811
    """A link that starts later than its parent: valid from its own start less the skew,
    refused a second before, naming the link."""
    chain = to_bob(world, now=T + 600, ttl=600)
    world.feed_at(T + 600 - SKEW - 1)
    assert world.verify(chain, world.bob, now=T + 600 - SKEW).within_skew(T + 600 - SKEW)
    rejects(lambda: world.verify(chain, world.bob, now=T + 600 - SKEW - 1), F.NOT_YET_VALID, 1)


def test_the_same_chain_twice_or_another_subjects_chain_grants_nothing_more(
    world: World,  # noqa: F811
) -> None:
    """A chain verifies for its last subject only (at a handshake, the channel's verified
    peer): presented by its delegator, or by the delegate's own delegate, it is refused."""
    chain = to_bob(world)
    world.verify(chain, world.bob)
    rejects(lambda: world.verify(chain, world.alice), F.WRONG_SUBJECT)
    rejects(lambda: world.verify(chain, world.carol), F.WRONG_SUBJECT)


# -- caveats ------------------------------------------------------------------------------------

_POLICIES = (
    '@id("status") permit(principal, action == Action::"status", resource == Service::"orders");\n'
    '@id("db") permit(principal, action == Action::"lease", resource == Secret::"orders-db");\n'
    '@id("lookup") permit(principal, action == Action::"invoke:lookup_order", resource);'
)
_REQUESTS: tuple[Any, ...] = (
    ServiceCall("orders", "status"),
    LeaseRequest("orders-db"),
    ToolCall("lookup_order", {"order_id": "o1"}),
)


@pytest.mark.parametrize(
    ("caveat", "allowed"),
    [
        # context keys a request does not carry: an error, a denial
        ('context.args.order_id == "o1"', (False, False, True)),
        ('context.scope.contains("x")', (False, False, False)),
        ("context.ttl < 10", (False, True, False)),
        ("context.nope == 1", (False, False, False)),
        # a comment cannot reach the next caveat: each is wrapped on its own
        ("true // }; permit(principal, action, resource); //", (True, True, True)),
    ],
)
def test_a_caveat_on_context_a_request_does_not_carry_denies_it(
    caveat: str, allowed: tuple[bool, ...]
) -> None:
    gates = make_world(sub_caveats=(caveat,))
    sub = gates.credential(gates.sub_chain, gates.sub)
    gate = engine(_POLICIES, {"orders": ["status"]})
    decisions = [gate.decide(sub, request, now=NOW) for request in _REQUESTS]
    assert tuple(d.allowed for d in decisions) == allowed
    for decision in decisions:
        assert decision.allowed or decision.outcome in (
            Outcome.EVALUATION_ERROR,
            Outcome.FORBIDDEN,
        )


def test_a_commented_caveat_leaves_the_next_one_enforced() -> None:
    gates = make_world(sub_caveats=("true // }; permit(principal, action, resource); //", "false"))
    sub = gates.credential(gates.sub_chain, gates.sub)
    gate = engine(_POLICIES, {"orders": ["status"]})
    for request in _REQUESTS:
        decision = gate.decide(sub, request, now=NOW)
        assert (decision.allowed, decision.policies) == (False, ("caveat:1:1",))
