"""Review 31b, secrets: a revocation feed ends the leases of the chains its authority judges
(its own) and of the agents it has standing over, and no other."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import ATTRS, CHAIN_TTL, LeaseWorld, make_world, open_broker
from tests.support.parties import Party, make_party, verified_feed
from troth.credentials import (
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    VerifiedCredential,
    issue_credential,
)
from troth.secrets import AllowListPolicy, Broker, LeaseState

TOKEN = {"scopes": ["refunds"], "ttl": 60, "max_ttl": 600, "audience": "payments"}


def globex_member(world: LeaseWorld, globex: Party, member: Party) -> VerifiedCredential:
    """`member`'s credential straight from globex, a second authority the broker trusts."""
    signed = issue_credential(
        globex.signer,
        subject=member.identifier,
        attributes=ATTRS,
        now=NOW,
        ttl=CHAIN_TTL,
        depth=0,
    )
    chain = CredentialChain((signed,), (globex.identity.history,)).encode()
    verifier = ChainVerifier(
        TrustPolicy(frozenset({world.authority.identifier, globex.identifier}))
    )
    feeds = {**world.feeds(), globex.identifier: verified_feed(globex, now=NOW)}
    return verifier.verify(chain, presenter=member.identifier, feeds=feeds, now=NOW)


def broker_for(tmp_path: Path, *who: Party) -> Broker:
    policy = AllowListPolicy({party.identifier: {"payments": None} for party in who})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    return broker


def test_a_feed_leaves_another_authoritys_chain_through_its_revoked_member(
    tmp_path: Path,
) -> None:
    """Review 31b, secrets 1 (was a strict xfail until `revoke_for_feed` read the leases a
    revoked member is in the chain of under the feed's authority only:
    `leases_with_member(..., authority)`). The orchestrator, a delegator in agent A's acme
    chain (acme -> user -> orchestrator -> A), is also a member of globex, which revokes it
    (it left globex). `revoke_for_feed` found it among the members of globex's open leases,
    then revoked every live lease with it anywhere in its chain, any authority: A's acme lease
    too, though a chain's issuers are judged by its root's feed alone (docs/formats.md, "Whose
    word counts on an identity"), so A, judged by acme, could lease again at once: one
    authority ended the leases of another's chains."""
    world = make_world(NOW)
    globex = make_party(world.vault, now=NOW)
    broker = broker_for(tmp_path, world.agent_a, world.orchestrator)
    at_acme = broker.issue(world.credential_a(), "payments", now=NOW)
    at_globex = broker.issue(globex_member(world, globex, world.orchestrator), "payments", now=NOW)

    feed = verified_feed(
        globex, [(int(RevocationKind.IDENTITY), world.orchestrator.identifier.digest)], now=NOW + 5
    )
    revoked = broker.revoke_for_feed(feed, now=NOW + 5)

    assert [lease.handle for lease in revoked] == [at_globex.lease.handle]
    (lease,) = broker.leases(world.agent_a.identifier)
    assert (lease.handle, lease.state) == (at_acme.lease.handle, LeaseState.ACTIVE)
    broker.renew(world.credential_a(), at_acme.lease_id, now=NOW + 6)


def test_a_feed_revokes_every_lease_of_an_agent_it_revokes(tmp_path: Path) -> None:
    """Review 31b, secrets 2 (was a strict xfail until `revoke_for_feed` also revoked every
    live lease of an identity it revokes, under any authority). Agent B is a member of acme and
    of globex and holds a lease under each; globex revokes B. A peer is refused as revoked by
    the feed of every authority with standing over it, whatever chains it presents
    (docs/formats.md, "Whose word counts on an identity"): the served broker's node refuses B
    from then on, so B's acme lease must end with it (a database role, a token
    `validate_token` accepts). The fix of secrets 1 (the feed's authority only) left it ACTIVE
    until its expiry."""
    world = make_world(NOW)
    globex = make_party(world.vault, now=NOW)
    broker = broker_for(tmp_path, world.agent_b)
    at_acme = broker.issue(world.credential_b(), "payments", now=NOW)
    at_globex = broker.issue(globex_member(world, globex, world.agent_b), "payments", now=NOW)

    feed = verified_feed(
        globex, [(int(RevocationKind.IDENTITY), world.agent_b.identifier.digest)], now=NOW + 5
    )
    revoked = broker.revoke_for_feed(feed, now=NOW + 5)

    assert {lease.handle for lease in revoked} == {at_acme.lease.handle, at_globex.lease.handle}
    ended = broker.leases(world.agent_b.identifier, include_ended=True)
    assert {lease.state for lease in ended} == {LeaseState.REVOKED}


def test_a_feed_revokes_an_agent_with_no_open_lease_of_its_authority(tmp_path: Path) -> None:
    """Review 31b, secrets 3 (was a strict xfail until `revoke_for_feed` also looked among the
    agents with live leases for those the feed revokes whose chains its authority justified
    here before, ended leases included: `SqliteSecretStore.live_agents`, `in_a_chain_with`).
    Agent B, a member of acme and of globex, leased under acme
    (then revoked that lease itself) and holds a lease under globex; acme revokes B. Its node
    refuses B as a peer from then on (acme, a voucher of B, has standing over it: docs/formats.md,
    "Whose word counts on an identity"), but `revoke_for_feed` looked for revoked identities
    only among the members of acme's *open* leases: B had none, so its globex lease (a database
    role, a token) stayed ACTIVE until it expired (at most its max_ttl; renewals refused)."""
    world = make_world(NOW)
    globex = make_party(world.vault, now=NOW)
    broker = broker_for(tmp_path, world.agent_b)
    earlier = broker.issue(world.credential_b(), "payments", now=NOW)
    broker.revoke(world.credential_b(), earlier.lease_id, now=NOW + 1)
    at_globex = broker.issue(globex_member(world, globex, world.agent_b), "payments", now=NOW + 2)

    feed = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.agent_b.identifier.digest)], now=NOW + 5
    )
    revoked = broker.revoke_for_feed(feed, now=NOW + 5)

    assert [lease.handle for lease in revoked] == [at_globex.lease.handle]


def test_a_feed_of_an_authority_that_never_justified_an_agent_leaves_its_leases(
    tmp_path: Path,
) -> None:
    """The guard of secrets 3: acme's feed revoking B, for whom acme justified no chain here
    (B leased under globex only), ends nothing: the broker cannot tell whether acme vouches for
    B, and any authority's feed may name any identity (docs/secrets.md; B's node refuses B as a
    peer when acme vouches for it)."""
    world = make_world(NOW)
    globex = make_party(world.vault, now=NOW)
    broker = broker_for(tmp_path, world.agent_b)
    at_globex = broker.issue(globex_member(world, globex, world.agent_b), "payments", now=NOW + 2)
    feed = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.agent_b.identifier.digest)], now=NOW + 5
    )
    assert broker.revoke_for_feed(feed, now=NOW + 5) == []
    (kept,) = broker.leases(world.agent_b.identifier)
    assert (kept.handle, kept.state) == (at_globex.lease.handle, LeaseState.ACTIVE)
