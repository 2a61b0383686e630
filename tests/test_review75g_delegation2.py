"""Review 75g, delegation2: the issuer keys' validity (`VerifiedCredential.keys_valid_until`,
review 75f) where a held credential is used again (the secrets broker) and where a chain is
made (`issue_credential`, `delegate`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.enroll import acme_and_agent
from tests.support.leases import broker_at, make_world
from tests.support.parties import make_party
from troth.authority.client import enroll_request
from troth.credentials import (
    Attributes,
    CredentialBody,
    CredentialChain,
    delegate,
    issue_credential,
)
from troth.credentials.vc import parse_xsd_datetime
from troth.errors import CredentialError, CredentialFailure, SecretError, SecretFailure
from troth.secrets import AllowListPolicy
from troth.vault import SoftwareVault

KEY_LIFE = 3600  # the orchestrator's primary key: valid an hour, its link to agent a a day
CONFIG = {"scopes": ["read"], "ttl": 300, "max_ttl": 3600, "audience": "x"}


def test_the_broker_refuses_a_held_credential_once_an_issuer_key_expired(tmp_path: Path) -> None:
    """75g delegation2 1: `LeaseBook._check_standing` re-checks a held credential's window
    and feed, not its issuers' keys: with a policy that is not the gates' (an allow list), a
    credential verified while the orchestrator's primary key was valid was leased a secret
    after that key expired, when `ChainVerifier.verify` refuses the chain (ISSUER_INVALID)."""
    world = make_world(NOW, orchestrator_valid_for=KEY_LIFE)
    held = world.credential_a()
    later = held.keys_valid_until + 1  # the first second the verifier refuses it
    with pytest.raises(CredentialError) as refused:
        world.credential_a(now=later)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    with broker_at(tmp_path / "node.db", now=NOW, policy=policy) as broker:
        broker.put_secret("api", "token", CONFIG, b"", now=NOW)
        with pytest.raises(SecretError) as caught:
            broker.issue(held, "api", now=later, scope=["read"])
    assert caught.value.reason is SecretFailure.EXPIRED, caught.value
    assert "issuer's current key" in str(caught.value)


def test_a_lease_ends_when_its_chains_issuer_keys_do(tmp_path: Path) -> None:
    """75g delegation2 2: a lease (and its renewal) was capped at the chain's expiry, not at
    its issuers' keys: a lease issued a minute before the orchestrator's primary key expired
    lasted its whole ttl (its token valid, its upstream credential live) past the moment
    every verifier refuses the chain."""
    world = make_world(NOW, orchestrator_valid_for=KEY_LIFE)
    held = world.credential_a()
    assert held.keys_valid_until == NOW + KEY_LIFE
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    issue_at = NOW + KEY_LIFE - 60
    with broker_at(tmp_path / "node.db", now=NOW, policy=policy) as broker:
        broker.put_secret("api", "token", CONFIG, b"", now=NOW)
        issued = broker.issue(held, "api", now=issue_at, scope=["read"], ttl=3600)
        assert issued.lease.expires_at == held.keys_valid_until + 1, issued.lease
        assert issued.lease.cap_at == held.keys_valid_until + 1, issued.lease
        renewed, _ = broker.renew(held, issued.lease_id, ttl=3600, now=issue_at + 30)
        assert renewed.expires_at == held.keys_valid_until + 1, renewed


def test_a_link_made_ends_when_its_signers_primary_key_does() -> None:
    """75g delegation2 3: `issue_credential` and `delegate` capped a link's expiry at the
    signing key's attestation, not at the signer's primary key's `valid_until`: an honest
    chain outlived its verifiability (every verifier refuses it once an issuer's key expired,
    ISSUER_INVALID, while its window said valid), and a holder that re-checks only the window
    (the broker, before delegation2 1) still took it."""
    vault = SoftwareVault()
    authority = make_party(vault, now=NOW, valid_for=10 * KEY_LIFE)
    member = make_party(vault, now=NOW, valid_for=KEY_LIFE)
    agent = make_party(vault, now=NOW)
    attributes = Attributes({"orders.access": "read"})
    issued = issue_credential(
        authority.signer,
        subject=member.identifier,
        attributes=attributes,
        now=NOW,
        ttl=86_400,
        depth=2,
    )
    assert CredentialBody.decode(issued.body).expires_at == NOW + 10 * KEY_LIFE + 1
    chain = CredentialChain((issued,), (authority.identity.history,))
    # a delegation's ttl is the delegator's word: refused past its primary key, not shortened
    # (review 75l, issuance 1, tests/test_review75l_issuance.py)
    with pytest.raises(CredentialError) as refused:
        delegate(
            member.signer,
            chain,
            subject=agent.identifier,
            attributes=attributes,
            now=NOW,
            ttl=2 * KEY_LIFE,
            purpose="p",
        )
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID


def test_an_authoritys_vc_ends_when_its_primary_key_does(troth_home: Path) -> None:
    """75g delegation2 4: `Authority.issue_member_vc` capped a VC's `validUntil` at the signing
    key's attestation (review 47a, defaults 2), not at the authority's primary key: issued
    half an hour before that key's end (its signing key renewed for 30 days), the VC of an
    hour said it was valid half an hour after every verifier refuses it (`verify_vc` checks
    the issuer's key at its `now`), unlike the CBOR credential issued with it."""
    with acme_and_agent(None, NOW) as (authority, agent, member, ticket):
        authority.enroll(enroll_request(agent.identities, "agent", ticket, now=NOW), now=NOW)
        key_end = authority.signer(NOW).identity.current.body.valid_until
        now = key_end - 1800
        document = authority.issue_member_vc(member, now=now)
        chain = authority.issue_member_credential(member, now=now)
    assert parse_xsd_datetime(document["validUntil"], "validUntil") == key_end + 1
    assert CredentialBody.decode(chain.credentials[-1].body).expires_at == key_end + 1
