"""Review 31b, secrets: a revocation feed ends the leases its authority justified, and no
other authority's."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import ATTRS, CHAIN_TTL, make_world, open_broker
from tests.support.parties import make_party, verified_feed
from troth.credentials import (
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    issue_credential,
)
from troth.secrets import AllowListPolicy, LeaseState

TOKEN = {"scopes": ["refunds"], "ttl": 60, "max_ttl": 600, "audience": "payments"}


def test_a_feed_revokes_only_its_authoritys_leases(tmp_path: Path) -> None:
    """Review 31b, secrets 1 (was a strict xfail until `revoke_for_feed` read the leases with a
    revoked member under the feed's authority only: `leases_with_member(..., authority)`).
    Agent B is a member of acme and of globex (two authorities the
    broker's node trusts) and holds a lease under each. globex revokes B in its feed (B left
    globex): `revoke_for_feed` found B among the members of globex's open leases, then revoked
    every live lease with B in its chain (`leases_with_member`, any authority), acme's too,
    though acme's feed revokes nothing and the gates judge acme's chain by acme's feed alone.
    One authority ended another authority's members' leases, which the served
    `revoke-identity` refuses an operator of one authority (docs/secrets.md)."""
    world = make_world(NOW)
    globex = make_party(world.vault, now=NOW)
    member = issue_credential(
        globex.signer,
        subject=world.agent_b.identifier,
        attributes=ATTRS,
        now=NOW,
        ttl=CHAIN_TTL,
        depth=0,
    )
    globex_chain = CredentialChain((member,), (globex.identity.history,)).encode()
    verifier = ChainVerifier(
        TrustPolicy(frozenset({world.authority.identifier, globex.identifier}))
    )
    feeds = {**world.feeds(), globex.identifier: verified_feed(globex, now=NOW)}
    at_globex = verifier.verify(
        globex_chain, presenter=world.agent_b.identifier, feeds=feeds, now=NOW
    )
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    at_acme = broker.issue(world.credential_b(), "payments", now=NOW)
    at_globex_lease = broker.issue(at_globex, "payments", now=NOW)

    feed = verified_feed(
        globex, [(int(RevocationKind.IDENTITY), world.agent_b.identifier.digest)], now=NOW + 5
    )
    revoked = broker.revoke_for_feed(feed, now=NOW + 5)

    assert [lease.handle for lease in revoked] == [at_globex_lease.lease.handle]
    states = {lease.handle: lease.state for lease in broker.leases(world.agent_b.identifier)}
    assert states[at_acme.lease.handle] is LeaseState.ACTIVE
    broker.renew(world.credential_b(), at_acme.lease_id, now=NOW + 6)  # acme's still renews
