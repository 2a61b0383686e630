"""Review 32a, secrets 2: the work of `revoke_for_feed` for an agent the feed revokes does not
grow with the chains stored for that agent (docs/secrets.md, "What this costs")."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import ATTRS, CHAIN_TTL, LeaseWorld, make_world, open_broker
from tests.support.parties import Party, make_party, verified_feed
from tests.test_review31b_secrets import TOKEN
from troth.credentials import (
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    VerifiedCredential,
    issue_credential,
)
from troth.secrets import AllowListPolicy


def globex_chain(world: LeaseWorld, globex: Party, member: Party, at: int) -> VerifiedCredential:
    """A fresh globex credential of `member`, issued at `at` (another chain each time)."""
    signed = issue_credential(
        globex.signer, subject=member.identifier, attributes=ATTRS, now=at, ttl=CHAIN_TTL, depth=0
    )
    chain = CredentialChain((signed,), (globex.identity.history,)).encode()
    verifier = ChainVerifier(
        TrustPolicy(frozenset({world.authority.identifier, globex.identifier}))
    )
    feeds = {**world.feeds(), globex.identifier: verified_feed(globex, now=NOW)}
    return verifier.verify(chain, presenter=member.identifier, feeds=feeds, now=at)


def feed_steps(tmp_path: Path, chains: int) -> int:
    """The SQLite VM steps of acme's feed revoking B, who holds one live globex lease and
    stored `chains` globex chains before (each lease ended), none of acme's."""
    world = make_world(NOW)
    globex = make_party(world.vault, now=NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    db, broker = open_broker(tmp_path / f"node{chains}.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    for i in range(chains):
        credential = globex_chain(world, globex, world.agent_b, NOW + i)
        granted = broker.issue(credential, "payments", now=NOW + i)
        broker.revoke(credential, granted.lease_id, now=NOW + i)
    # the live lease's chain: another one again, valid from before NOW (review 50c: a lease
    # is refused before its chain's not_before)
    broker.issue(globex_chain(world, globex, world.agent_b, NOW - 1), "payments", now=NOW)
    feed = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.agent_b.identifier.digest)], now=NOW + 5
    )
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    db.connection().set_progress_handler(count, 1)
    try:
        assert broker.revoke_for_feed(feed, now=NOW + 5) == []
    finally:
        db.connection().set_progress_handler(None, 1)
    return steps[0]


def test_a_feeds_work_does_not_grow_with_an_agents_chains(tmp_path: Path) -> None:
    """Review 32a, secrets 2 (was a strict xfail until the standing of the feed's authority over an
    agent was one row, `ROOT_MEMBER` ‖ authority ‖ actor, looked up by the members' primary key:
    `SqliteSecretStore.has_member`). B (a globex member) leased 40 times under globex, each time
    with a new chain (an agent's delegates or credentials are minted for free), and holds one live
    lease; acme's feed revokes B (it never justified a chain of B's here, so nothing ends).
    `SqliteSecretStore.in_a_chain_with` walked every chain ever stored with B, ended ones too,
    looking each up with acme as root, and `revoke_for_feed` runs it again at every change of acme's
    feed (its revoked set is the whole feed): the work of one feed grew without bound with what a
    member stores, on the broker's thread (review 30b, store 3's rule: never every chain ever
    stored)."""
    few, many = feed_steps(tmp_path, 5), feed_steps(tmp_path, 40)
    assert many <= few + 50, (few, many)
