"""Review 54q (delegation and attenuation): attacks by which a delegate ends with more than
its delegator, each failing on main before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.feeds import pages
from tests.support.leases import ATTRS, CHAIN_TTL, LeaseWorld, make_world, open_broker
from tests.support.parties import Party
from troth.credentials import (
    CredentialChain,
    RevocationEntry,
    RevocationKind,
    Supersession,
    VerifiedCredential,
    VerifiedFeed,
    delegate,
    issue_credential,
    verify_page,
)
from troth.errors import (
    ArgumentError,
    CredentialError,
    CredentialFailure,
    SecretError,
    SecretFailure,
)
from troth.identity import rotate_identity
from troth.secrets import AllowListPolicy
from troth.secrets.policy import LeaseQuestion

SHORT_LEASES = "context.ttl <= 60"


def _caveated(world_now: int = NOW) -> tuple[VerifiedCredential, VerifiedCredential, LeaseWorld]:
    """Agent B's member credential, and agent A's chain from B with caveat `SHORT_LEASES`
    (B allows A leases of at most 60 seconds), both verified."""
    world = make_world(world_now)
    chain_b = CredentialChain.decode(world.chain_b)
    # agent B's own credential has depth 0: re-issue one B may delegate from
    member = issue_credential(
        world.authority.signer,
        subject=world.agent_b.identifier,
        attributes=ATTRS,
        now=world_now,
        ttl=CHAIN_TTL,
        depth=1,
    )
    chain_b = CredentialChain((member,), chain_b.histories)
    to_a = delegate(
        world.agent_b.signer,
        chain_b,
        subject=world.agent_a.identifier,
        attributes=ATTRS,
        now=world_now,
        ttl=CHAIN_TTL,
        purpose="refunds, briefly",
        caveats=(SHORT_LEASES,),
    )
    feeds = world.feeds()
    b = world.verifier.verify(
        chain_b.encode(), presenter=world.agent_b.identifier, feeds=feeds, now=world_now
    )
    a = world.verifier.verify(
        to_a.encode(), presenter=world.agent_a.identifier, feeds=feeds, now=world_now
    )
    return b, a, world


def test_the_allow_list_does_not_ignore_a_delegators_caveats() -> None:
    """Review 54q, delegation 1: `AllowListPolicy` granted a lease on the actor's identity
    alone, ignoring the caveats of the chain it presented: agent B delegated to agent A with
    the caveat `context.ttl <= 60`, and A (on the allow list) leased for 600 seconds. A caveat
    "is a condition on every request of the chain, leases included" (docs/secrets.md), and the
    node's non-Cedar access rules drop caveated chains (fail closed): so does the list now."""
    _b, a, _world = _caveated()
    policy = AllowListPolicy({a.actor: {"payments": None}})
    question = LeaseQuestion(a, "payments", "token", ("read",), 600, False, NOW)
    decision = policy.decide(question)
    assert not decision.allowed, decision
    assert "caveat" in decision.reason


def test_the_allow_list_still_grants_an_uncaveated_chain() -> None:
    """The fix refuses caveated chains only: B's own (uncaveated) credential still passes."""
    b, _a, _world = _caveated()
    policy = AllowListPolicy({b.actor: {"payments": None}})
    question = LeaseQuestion(b, "payments", "token", ("read",), 600, False, NOW)
    assert policy.decide(question).allowed


def test_a_broker_on_the_allow_list_refuses_the_caveated_chain(tmp_path: Path) -> None:
    """Review 54q, delegation 1, through the broker: the lease is refused DENIED."""
    _b, a, _world = _caveated()
    policy = AllowListPolicy({a.actor: {"payments": None}})
    _db, broker = open_broker(tmp_path / "b.db", now=NOW, policy=policy)
    config = {"scopes": ["read"], "ttl": 120, "max_ttl": 600, "audience": "payments-api"}
    broker.put_secret("payments", "token", config, b"", now=NOW)
    with pytest.raises(SecretError) as caught:
        broker.issue(a, "payments", ttl=600, now=NOW)
    assert caught.value.reason is SecretFailure.DENIED, caught.value


def test_the_allow_list_takes_a_caveated_chain_when_told_the_caller_enforces_them() -> None:
    """`unevaluated_caveats=True`: the caller enforces the caveats itself (the demo's gate
    evaluated them for the call a lease is taken for)."""
    _b, a, _world = _caveated()
    policy = AllowListPolicy({a.actor: {"payments": None}}, unevaluated_caveats=True)
    question = LeaseQuestion(a, "payments", "token", ("read",), 600, False, NOW)
    assert policy.decide(question).allowed


def test_the_allow_list_takes_only_a_bool_for_unevaluated_caveats() -> None:
    with pytest.raises(ArgumentError):
        AllowListPolicy({}, unevaluated_caveats="yes")  # type: ignore[arg-type]


def _superseding(world: LeaseWorld, party: Party, now: int) -> VerifiedFeed:
    """`party` rotates, and the authority's feed says so (its older history superseded)."""
    _, rotated, _ = rotate_identity(
        world.vault, party.identity, party.primary, party.next_primary, now=now, valid_for=10**8
    )
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        party.identifier.digest,
        world.authority.identifier,
        now,
        "",
        Supersession(2, rotated.current_change_hash),
    )
    (page,) = pages(world.authority, [entry], now=now, per_page=1)
    return verify_page(page, authority=world.authority.identifier, now=now)


def test_a_lease_under_a_superseded_delegators_link_is_not_renewed(tmp_path: Path) -> None:
    """Review 54q, delegation 3: agent A leased under its chain (user -> orchestrator -> A);
    the orchestrator then rotated (its old key stolen, say) and the authority's feed superseded
    its older history, the one A's link was signed under. The broker, given that feed, still
    renewed the lease and served it under the same verified credential: its held feeds were
    read for revocations only, never for supersessions, where the gates' decision point reads
    both (docs/secrets.md, "A rotation is not a revocation": a renewal under such a chain is
    refused)."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "b.db", now=NOW, policy=policy)
    config = {"scopes": ["read"], "ttl": 120, "max_ttl": 600, "audience": "payments-api"}
    broker.put_secret("payments", "token", config, b"", now=NOW)
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", now=NOW)
    broker.revoke_for_feed(_superseding(world, world.orchestrator, NOW + 5), now=NOW + 5)
    with pytest.raises(SecretError) as caught:
        broker.renew(credential, issued.lease_id, now=NOW + 10)
    assert caught.value.reason is SecretFailure.REVOKED, caught.value
    with pytest.raises(SecretError) as caught:
        broker.issue(credential, "payments", now=NOW + 10)
    assert caught.value.reason is SecretFailure.REVOKED, caught.value
    other = world.credential_b()  # a chain the rotation does not touch
    policy_b = AllowListPolicy({other.actor: {"payments": None}})
    _db2, broker_b = open_broker(tmp_path / "c.db", now=NOW, policy=policy_b)
    broker_b.put_secret("payments", "token", config, b"", now=NOW)
    broker_b.revoke_for_feed(_superseding(world, world.user, NOW + 5), now=NOW + 5)
    broker_b.issue(other, "payments", now=NOW + 10)


@pytest.mark.parametrize("back_to", ["authority", "user"])
def test_a_delegation_back_up_the_chain_is_refused_when_made(back_to: str) -> None:
    """Review 54q, delegation 4: `delegate` refused only a delegation to its own signer; one
    back to an identity already in the chain (the orchestrator's back to the user who
    delegated to it, or to the authority) was signed, and every verifier then refused the
    chain (CYCLE): refused when made, as amplification is."""
    world = make_world(NOW)
    chain_a = CredentialChain.decode(world.chain_a)
    to_orchestrator = CredentialChain(chain_a.credentials[:2], chain_a.histories[:2])
    subject = world.authority if back_to == "authority" else world.user
    with pytest.raises(CredentialError) as caught:
        delegate(
            world.orchestrator.signer,
            to_orchestrator,
            subject=subject.identifier,
            attributes=ATTRS,
            now=NOW,
            ttl=60,
            purpose="back",
        )
    assert (caught.value.reason, caught.value.link) == (CredentialFailure.CYCLE, 2)
