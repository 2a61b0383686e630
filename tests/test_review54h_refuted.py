"""Review 54h, bundles: attacks on policy bundles that the code refused (docs/policy.md,
"Bundles on a node"). Each test is an attack and passes because it fails."""

from __future__ import annotations

import pytest

from tests.support.gates import POLICIES, TOOLS, GatesWorld, T, make_world
from tests.support.parties import make_party, verified_feed
from tests.test_gates_bundles import body_of, decode_chain_hash, forged
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    delegate,
)
from troth.errors import PolicyError, PolicyFailure
from troth.gates import BundleStore, MemoryBundleTable, ToolCall, create_bundle

_P = PolicyFailure
REFUND = ToolCall("refund", {"order_id": "o1", "amount": 50})


@pytest.fixture
def world() -> GatesWorld:
    return make_world()


def _delegates_bundle(world: GatesWorld) -> tuple[bytes, bytes]:
    """A bundle signed by a sub-agent the policy-admin delegated its role to (no caveats),
    and the delegated chain."""
    chain = delegate(
        world.admin.signer,
        CredentialChain.decode(world.admin_chain),
        subject=world.sub.identifier,
        attributes=Attributes({"troth.role": "policy-admin"}),
        now=T,
        ttl=7 * 86_400,
        purpose="sign bundles",
    ).encode()
    data = create_bundle(
        world.sub.signer,
        authority=world.authority.identifier,
        policies=POLICIES,
        schema="",
        tools=TOOLS,
        revision=2,
        now=T,
        ttl=3600,
        chain=chain,
    )
    return data, chain


@pytest.mark.parametrize("revoked", ["delegate-link", "admin-identity", "admin-link"])
def test_a_revoked_delegate_or_its_delegators_bundle_stops_deciding(
    world: GatesWorld, revoked: str
) -> None:
    """A policy-admin's delegate signs a bundle, accepted; revoking the delegate's link, the
    admin's identity or the admin's own credential puts it out of force at the next decision
    (SIGNER_REVOKED), and a replay of it is refused."""
    data, chain = _delegates_bundle(world)
    store = world.store(data)
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    assert point.decide(member, REFUND, now=T + 10).allowed
    if revoked == "delegate-link":
        world.revoke(RevocationKind.CREDENTIAL, decode_chain_hash(chain), now=T + 20)
    elif revoked == "admin-identity":
        world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 20)
    else:
        world.revoke(RevocationKind.CREDENTIAL, decode_chain_hash(world.admin_chain), now=T + 20)
    with pytest.raises(PolicyError) as out:
        store.engine(world.authority.identifier, feed=world.feed, now=T + 21)
    assert out.value.reason is _P.SIGNER_REVOKED
    assert not point.decide(member, REFUND, now=T + 21).allowed
    with pytest.raises(PolicyError) as replayed:
        BundleStore(world.verifier).accept(data, feeds=world.feeds(), now=T + 22)
    assert replayed.value.reason is _P.SIGNER_REVOKED


def test_another_authoritys_bundle_signed_by_this_ones_admin_is_refused(
    world: GatesWorld,
) -> None:
    """A node trusting two authorities: a bundle naming the other one, signed by this one's
    policy-admin under its chain (which is not from the other), is refused; so is one the
    other authority's anchor signs naming this one (a signer that is not the authority needs
    a chain from it)."""
    other = make_party(world.vault, now=T)
    anchors = frozenset({world.authority.identifier, other.identifier})
    verifier = ChainVerifier(TrustPolicy(anchors))
    feeds = {**world.feeds(), other.identifier: verified_feed(other, now=T)}
    theirs = forged(
        world,
        body_of(world, world.admin.identifier, authority=other.identifier),
        chain=world.admin_chain,
    )
    with pytest.raises(PolicyError) as refused:
        BundleStore(verifier).accept(theirs, feeds=feeds, now=T + 5)
    assert refused.value.reason is _P.SIGNER_INVALID
    world.other = other  # type: ignore[attr-defined]
    mine = forged(world, body_of(world, other.identifier), signer="other", chain=None)
    with pytest.raises(PolicyError) as refused_too:
        BundleStore(verifier).accept(mine, feeds=feeds, now=T + 5)
    assert refused_too.value.reason is _P.NOT_POLICY_ADMIN


@pytest.mark.parametrize(
    "policies",
    [
        POLICIES + '@id("broken") permit(principal, action, resource) when { ',
        POLICIES + '@id("unknown") permit(principal, action == Action::"invoke:nope", resource);',
        POLICIES + '@id("lookup") permit(principal, action, resource);',
    ],
    ids=["unparsable", "not-in-schema", "repeated-id"],
)
def test_a_signed_bundle_with_a_bad_policy_is_refused_whole(
    world: GatesWorld, policies: str
) -> None:
    """The authority signs (bypassing create_bundle) revision 2: the revision-1 policies and
    one that does not parse, one the schema refuses, or one repeating an id. Refused whole
    (none of its policies decides): the held revision 1 keeps deciding, and its forbid too."""
    store = world.store(world.bundle(revision=1))
    bad = forged(
        world,
        body_of(world, world.authority.identifier, revision=2, policies=policies),
        signer="authority",
        chain=None,
    )
    with pytest.raises(PolicyError) as refused:
        store.accept(bad, feeds=world.feeds(), now=T + 5)
    assert refused.value.reason is _P.POLICIES_INVALID
    engine = store.engine(world.authority.identifier, feed=world.feed, now=T + 6)
    assert engine.revision == 1
    member = world.credential(world.support_chain, world.support)
    over = ToolCall("refund", {"order_id": "o1", "amount": 5000})
    assert not world.point(store).decide(member, over, now=T + 7).allowed


def test_a_restored_backup_of_the_table_denies_on_its_stale_feed(world: GatesWorld) -> None:
    """A node directory restored from a backup holds an older bundle (revision 1; the fleet
    is at 2) and the feed it had then: the older bundle loads, but decides nothing once that
    feed is older than the staleness allowed (STALE_FEED), and the newer revision is taken
    when it comes (the node's first pull, after its feed sync); the older one, pushed again,
    is then a rollback."""
    backup = MemoryBundleTable()
    old = world.bundle(revision=1)
    BundleStore(world.verifier, backup).accept(old, feeds=world.feeds(), now=T + 5)
    late = T + world.verifier.policy.max_feed_staleness + 100
    restored = BundleStore(world.verifier, backup)
    assert [b.body.revision for b in restored.reload(now=late)] == [1]
    with pytest.raises(PolicyError) as stale:
        restored.engine(world.authority.identifier, feed=world.feed, now=late)
    assert stale.value.reason is _P.STALE_FEED
    world.refresh_feed(late)
    newer = world.bundle(revision=2, now=late - 10)
    restored.accept(newer, feeds=world.feeds(), now=late + 1)
    with pytest.raises(PolicyError) as rollback:
        restored.accept(old, feeds=world.feeds(), now=late + 2)
    assert rollback.value.reason is _P.ROLLBACK
