"""Review 69i (delegation caveats and scoped tokens): attacks that did not work, each a real
attempt that would succeed if the defence it names broke."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import ATTRS, CHAIN_TTL, LeaseWorld, make_world, open_broker
from tests.support.parties import Party, hand_link, make_party, verified_feed
from troth.credentials import Attributes, CredentialChain, VerifiedCredential, issue_credential
from troth.credentials.format import CredentialBody, Delegation, SignedCredential
from troth.encoding import cbor
from troth.errors import CredentialError, CredentialFailure, PolicyError, SecretError, SecretFailure
from troth.gates.caveats import check_caveat, evaluate_caveats
from troth.secrets import AllowListPolicy, Broker, validate_token

F = CredentialFailure
S = SecretFailure
TOKEN = {"scopes": ["read"], "ttl": 60, "max_ttl": 600, "audience": "svc"}
CAP = "context.args.amount <= 100"


@pytest.fixture(scope="module")
def world() -> LeaseWorld:
    return make_world(NOW)


def _root(
    world: LeaseWorld,
    subject: Party,
    *,
    depth: int = 4,
    ttl: int = CHAIN_TTL,
    attributes: Attributes = ATTRS,
) -> CredentialChain:
    member = issue_credential(
        world.authority.signer,
        subject=subject.identifier,
        attributes=attributes,
        now=NOW,
        ttl=ttl,
        depth=depth,
    )
    return CredentialChain((member,), (world.authority.identity.history,))


def _verify(
    world: LeaseWorld, chain: CredentialChain, presenter: Party, now: int = NOW
) -> VerifiedCredential:
    return world.verifier.verify(
        chain.encode(), presenter=presenter.identifier, feeds=world.feeds(), now=now
    )


def _refused(world: LeaseWorld, chain: CredentialChain, presenter: Party) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        _verify(world, chain, presenter)
    return caught.value


# -- chains ------------------------------------------------------------------------------------


def test_a_hand_built_loop_a_b_a_is_refused(world: LeaseWorld) -> None:
    """A delegates to B, B signs a link back to A (delegate() refuses it; B signs by hand),
    hoping to reset A's depth or caveats: every verifier refuses the identity twice."""
    a, b = world.agent_a, world.agent_b
    to_b = hand_link(a, _root(world, a), b.identifier, ATTRS, now=NOW, expires_at=NOW + 100)
    back = hand_link(b, to_b, a.identifier, ATTRS, now=NOW, expires_at=NOW + 100)
    assert _refused(world, back, a).reason is F.CYCLE


def test_a_chain_one_link_past_the_global_limit_is_refused(world: LeaseWorld) -> None:
    """The authority's root allows the global maximum depth (8); nine hand-signed delegations
    under it (depth floored at 0, so the per-link rule alone would not stop the ninth) make a
    chain a reader refuses before checking a signature; eight verify."""
    parties = [make_party(world.vault, now=NOW) for _ in range(10)]
    chain = _root(world, parties[0], depth=8)
    for n in range(1, 9):
        chain = hand_link(
            parties[n - 1],
            chain,
            parties[n].identifier,
            ATTRS,
            now=NOW,
            expires_at=NOW + 100,
            depth=8 - n,
        )
    assert len(_verify(world, chain, parties[8]).links) == 9
    past = hand_link(
        parties[8], chain, parties[9].identifier, ATTRS, now=NOW, expires_at=NOW + 100, depth=0
    )
    assert _refused(world, past, parties[9]).reason is F.OVER_LIMIT


def test_a_child_outliving_its_parent_is_refused(world: LeaseWorld) -> None:
    """A link signed by hand to end after its parent (to keep working once the member's
    credential lapses) is an amplification."""
    a, b = world.agent_a, world.agent_b
    child = hand_link(
        a, _root(world, a, ttl=100), b.identifier, ATTRS, now=NOW, expires_at=NOW + 1000
    )
    error = _refused(world, child, b)
    assert error.reason is F.AMPLIFIED
    assert error.link == 1


def test_a_value_equal_only_after_unicode_normalisation_is_not_held(world: LeaseWorld) -> None:
    """The parent holds `team.name = café` (NFC); the delegate's link claims the NFD spelling,
    which a normalising consumer would read as the same: it is another string, not held."""
    a, b = world.agent_a, world.agent_b
    held = Attributes({"team.name": unicodedata.normalize("NFC", "café")})
    claimed = Attributes({"team.name": unicodedata.normalize("NFD", "café")})
    child = hand_link(
        a, _root(world, a, attributes=held), b.identifier, claimed, now=NOW, expires_at=NOW + 100
    )
    assert _refused(world, child, b).reason is F.AMPLIFIED


def test_an_attribute_key_in_another_case_is_refused_by_every_reader(world: LeaseWorld) -> None:
    """A link whose body names `Payments.access` (a consumer folding case would read it as the
    parent's key) cannot be built through Attributes; signed by hand as raw CBOR, the reader
    refuses it before any narrowing is judged."""
    a, b = world.agent_a, world.agent_b
    parent = _root(world, a)
    body = cbor.encode(
        [
            "troth.credential",
            1,
            os.urandom(16),
            b.identifier.digest,
            a.identifier.digest,
            {"Payments.access": ["read"]},
            NOW,
            NOW,
            NOW + 100,
            0,
            [parent.credentials[0].hash, "p", []],
        ]
    )
    signed = SignedCredential(body, a.signer.sign(body), a.signer.attestation)
    chain = parent.extended(signed, a.identity.history)
    assert _refused(world, chain, b).reason is F.MALFORMED


def test_a_delegator_revoked_mid_chain_ends_her_delegates_chain(world: LeaseWorld) -> None:
    """The orchestrator (link 1's subject, link 2's issuer) is revoked; agent A's chain through
    her still carries unexpired links, but is refused at link 1."""
    feed = verified_feed(world.authority, [(2, world.orchestrator.identifier.digest)], now=NOW)
    with pytest.raises(CredentialError) as caught:
        world.verifier.verify(
            world.chain_a,
            presenter=world.agent_a.identifier,
            feeds={world.authority.identifier: feed},
            now=NOW,
        )
    assert caught.value.reason is F.REVOKED
    assert caught.value.link == 1


def test_a_link_not_yet_valid_is_refused_past_the_skew(world: LeaseWorld) -> None:
    """A link whose own not_before lies beyond the allowed skew is refused now, whatever its
    parent's window (the chain's window is the latest start)."""
    a, b = world.agent_a, world.agent_b
    parent = _root(world, a)
    skew = world.verifier.policy.max_clock_skew
    start = NOW + skew + 10
    body = CredentialBody(
        os.urandom(16),
        b.identifier,
        a.identifier,
        ATTRS,
        NOW,
        start,
        start + 100,
        0,
        Delegation(parent.credentials[0].hash, "later", ()),
    )
    data = body.encode()
    chain = parent.extended(
        SignedCredential(data, a.signer.sign(data), a.signer.attestation), a.identity.history
    )
    error = _refused(world, chain, b)
    assert error.reason is F.NOT_YET_VALID
    assert error.link == 1


# -- caveats -----------------------------------------------------------------------------------


def test_a_caveat_calling_a_function_cedar_lacks_is_refused_not_ignored() -> None:
    """A caveat no Cedar evaluator knows (an unknown function or method) is no condition: it is
    refused, never skipped as a condition that holds."""
    for caveat in ("unknownfn(1)", "context.amount.within(100)"):
        with pytest.raises(PolicyError):
            check_caveat(caveat)


@pytest.mark.parametrize(
    "args",
    [
        '{"amount":"1000"}',  # a string, not a Long
        '{"amount":[1000]}',  # a set of one
        '{"amount":{"__extn":{"fn":"decimal","arg":"1000.0"}}}',  # an extension value
        '{"amount":{"value":1000}}',  # a nested record
        '{"Amount":1000}',  # another case: no `amount` at all
    ],
)
def test_a_cap_on_an_argument_is_not_escaped_by_its_encoding(world: LeaseWorld, args: str) -> None:
    """`context.args.amount <= 100` on a delegation: the delegate sends the amount as another
    type or shape, hoping the comparison is skipped. Each is an error or false: a refusal."""
    a, b = world.agent_a, world.agent_b
    chain = hand_link(
        a, _root(world, a), b.identifier, ATTRS, now=NOW, expires_at=NOW + 100, caveats=(CAP,)
    )
    verified = _verify(world, chain, b)
    assert evaluate_caveats(verified, f'{{"args":{args},"now":{NOW}}}') is not None
    assert evaluate_caveats(verified, f'{{"args":{{"amount":100}},"now":{NOW}}}') is None


# -- tokens ------------------------------------------------------------------------------------


def _broker(tmp_path: Path, world: LeaseWorld, quota: int = 100) -> Broker:
    policy = AllowListPolicy({world.agent_a.identifier: {"svc": None, "other": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=quota)
    broker.put_secret("svc", "token", TOKEN, b"", now=NOW)
    broker.put_secret("other", "token", {**TOKEN, "audience": "other"}, b"", now=NOW)
    return broker


def test_a_token_for_one_service_is_refused_by_another(tmp_path: Path, world: LeaseWorld) -> None:
    """A token leased for audience `svc` presented to the service of `other` (same broker,
    same keys, same agent): refused by the standalone check and by the broker."""
    broker = _broker(tmp_path, world)
    token = str(broker.issue(world.credential_a(), "svc", now=NOW).credential.reveal()["token"])
    with pytest.raises(SecretError) as alone:
        validate_token(token, broker.jwks(NOW), audience="other", now=NOW + 1)
    assert alone.value.reason is S.JWT_WRONG_AUDIENCE
    with pytest.raises(SecretError) as asked:
        broker.validate_token(token, audience="other", now=NOW + 1)
    assert asked.value.reason is S.JWT_WRONG_AUDIENCE


def test_a_token_replayed_after_its_lease_is_revoked_is_refused(
    tmp_path: Path, world: LeaseWorld
) -> None:
    """The token still runs for a minute by its `exp`; its lease is revoked: the broker's
    published states and the broker itself refuse it at once, with a generous leeway too."""
    broker = _broker(tmp_path, world)
    issued = broker.issue(world.credential_a(), "svc", now=NOW)
    token = str(issued.credential.reveal()["token"])
    broker.revoke(world.credential_a(), issued.lease_id, now=NOW + 1)
    with pytest.raises(SecretError) as alone:
        validate_token(
            token,
            broker.jwks(NOW + 2),
            audience="svc",
            now=NOW + 2,
            revoked=broker.revoked_leases(),
            leeway=300,
        )
    assert alone.value.reason is S.REVOKED
    with pytest.raises(SecretError) as asked:
        broker.validate_token(token, audience="svc", now=NOW + 2)
    assert asked.value.reason is S.REVOKED


def test_a_token_at_its_exp_is_expired_and_a_clock_behind_revives_nothing(
    tmp_path: Path, world: LeaseWorld
) -> None:
    """At exactly `exp` a token is expired; a relying party whose clock is behind the broker's
    (it asks at `exp - 30` after the broker judged at `exp`) still judges at the broker's time."""
    broker = _broker(tmp_path, world)
    issued = broker.issue(world.credential_a(), "svc", now=NOW)
    token = str(issued.credential.reveal()["token"])
    ends = issued.lease.expires_at
    keys = broker.jwks(NOW)
    with pytest.raises(SecretError) as at_exp:
        validate_token(token, keys, audience="svc", now=ends)
    assert at_exp.value.reason is S.EXPIRED
    broker.sweep(now=ends)  # the broker's clock reaches the end
    with pytest.raises(SecretError) as behind:
        validate_token(token, keys, audience="svc", now=ends - 30, revoked=broker.revoked_leases())
    assert behind.value.reason in {S.EXPIRED, S.REVOKED}


def test_an_agent_cannot_hold_tokens_past_its_quota(tmp_path: Path, world: LeaseWorld) -> None:
    """Leasing over and over (the 10,000-token attack) stops at the account's quota: the
    broker's rows stay bounded per agent."""
    broker = _broker(tmp_path, world, quota=3)
    for _ in range(3):
        broker.issue(world.credential_a(), "svc", now=NOW)
    with pytest.raises(SecretError) as caught:
        broker.issue(world.credential_a(), "svc", now=NOW)
    assert caught.value.reason is S.QUOTA_EXCEEDED
