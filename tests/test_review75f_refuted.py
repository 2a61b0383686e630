"""Review 75f, delegation, refuted: attacks by the holder of a delegation who wants more, each
refused by the chain verifier (sans-IO), the built-in access rules and the Cedar decision point
holding a verified credential. Each test names what was tried."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.feeds import entries, pages
from tests.support.gates import T, make_world, rotate, superseding
from tests.support.parties import Party, hand_link, make_party, verified_feed
from troth._api.verifier import caveat_context, check_caveats
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
    delegate,
    issue_credential,
    verify_page,
)
from troth.errors import CredentialError, CredentialFailure
from troth.gates import ToolCall
from troth.node.access import RequireAttributes, _satisfies
from troth.vault import SoftwareVault

F = CredentialFailure
SKEW = 60
READ = Attributes({"orders.access": "read"})
BOTH = Attributes({"orders.access": frozenset({"read", "write"})})


@dataclass(frozen=True)
class World:
    authority: Party
    other: Party  # another authority, trusted by the same verifier
    alice: Party  # holds the authority's credential (READ, depth 2)
    bob: Party
    carol: Party
    root: CredentialChain
    verifier: ChainVerifier

    def feeds(self, *entries: tuple[int, bytes], at: int = T) -> dict[object, VerifiedFeed]:
        return {
            self.authority.identifier: verified_feed(self.authority, list(entries), now=at),
            self.other.identifier: verified_feed(self.other, now=at),
        }

    def verify(
        self, chain: CredentialChain, who: Party, *, now: int = T + 10, **kw: object
    ) -> VerifiedCredential:
        feeds = kw.get("feeds") or self.feeds(at=now)
        return self.verifier.verify(
            chain.encode(),
            presenter=who.identifier,
            feeds=feeds,  # type: ignore[arg-type]
            now=now,
        )

    def to_bob(self, **kw: object) -> CredentialChain:
        args: dict[str, object] = {"attributes": READ, "now": T, "ttl": 600, "purpose": "p"}
        args.update(kw)
        return delegate(self.alice.signer, self.root, subject=self.bob.identifier, **args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def world() -> World:
    vault = SoftwareVault()
    authority, other, alice, bob, carol = (make_party(vault, now=T) for _ in range(5))
    issued = issue_credential(
        authority.signer, subject=alice.identifier, attributes=READ, now=T, ttl=3600, depth=2
    )
    root = CredentialChain((issued,), (authority.identity.history,))
    policy = TrustPolicy(frozenset({authority.identifier, other.identifier}), max_clock_skew=SKEW)
    return World(authority, other, alice, bob, carol, root, ChainVerifier(policy))


def refused(world: World, chain: CredentialChain, who: Party, reason: F, **kw: object) -> None:
    with pytest.raises(CredentialError) as caught:
        world.verify(chain, who, **kw)  # type: ignore[arg-type]
    assert caught.value.reason is reason, caught.value


def test_a_later_link_cannot_widen_expiry_or_arguments(world: World) -> None:
    """Tried: bob's link to carol expires after alice's link to bob, and grants an argument
    value (`write`) bob's link does not hold. Both AMPLIFIED."""
    chain = world.to_bob()
    end = T + 600
    later = hand_link(world.bob, chain, world.carol.identifier, READ, now=T, expires_at=end + 1)
    refused(world, later, world.carol, F.AMPLIFIED)
    wider = hand_link(world.bob, chain, world.carol.identifier, BOTH, now=T, expires_at=end)
    refused(world, wider, world.carol, F.AMPLIFIED)


def test_links_reordered_or_taken_from_another_chain_are_refused(world: World) -> None:
    """Tried: the links of alice -> bob -> carol in another order, and alice's link to bob
    made under another credential of alice's spliced after this one."""
    chain = world.to_bob()
    full = hand_link(world.bob, chain, world.carol.identifier, READ, now=T, expires_at=T + 600)
    root, first, second = full.credentials
    swapped = CredentialChain((root, second, first), full.histories)
    refused(world, swapped, world.bob, F.MISALIGNED)
    again = issue_credential(
        world.authority.signer,
        subject=world.alice.identifier,
        attributes=READ,
        now=T,
        ttl=3600,
        depth=2,
    )
    other = CredentialChain((again,), world.root.histories)
    elsewhere = delegate(
        world.alice.signer,
        other,
        subject=world.bob.identifier,
        attributes=READ,
        now=T,
        ttl=600,
        purpose="p",
    )
    spliced = CredentialChain((world.root.credentials[0], elsewhere.credentials[1]), full.histories)
    refused(world, spliced, world.bob, F.BROKEN_LINK)


def test_a_chain_past_its_depth_or_with_a_cycle_is_refused(world: World) -> None:
    """Tried: bob delegates on at the depth alice's link left him (0), and back to alice (a
    cycle), each link signed by hand so `delegate` refuses nothing."""
    chain = world.to_bob(depth=0)
    deeper = hand_link(
        world.bob, chain, world.carol.identifier, READ, now=T, expires_at=T + 600, depth=0
    )
    refused(world, deeper, world.carol, F.DEPTH_EXCEEDED)
    back = hand_link(
        world.bob, world.to_bob(), world.alice.identifier, READ, now=T, expires_at=T + 600
    )
    refused(world, back, world.alice, F.CYCLE)


def test_a_caveat_is_never_dropped_and_an_unknown_one_is_a_denial(world: World) -> None:
    """Tried: carol, below bob's link that carries alice's caveat, holds a link without it; and
    a caveat that is no Cedar condition (a kind of caveat nothing knows). The chain's caveats
    are every link's; an unknown caveat is CAVEAT_UNEVALUATED, and no built-in rule takes a
    caveated chain (RulesPolicy's `usable`)."""
    chain = world.to_bob(caveats=('context.complaint == "123"',))
    below = hand_link(world.bob, chain, world.carol.identifier, READ, now=T, expires_at=T + 600)
    verified = world.verify(below, world.carol)
    assert verified.caveats == ('context.complaint == "123"',)
    check = check_caveats(verified, caveat_context({"complaint": "999"}, T + 10))
    assert check.refusal() is not None
    odd = world.verify(world.to_bob(caveats=("scope: orders/123 only",)), world.bob)
    refusal = check_caveats(odd, caveat_context({}, T + 10)).refusal()
    assert refusal is not None
    assert refusal.reason is F.CAVEAT_UNEVALUATED


def test_time_edges_use_the_skew_once(world: World) -> None:
    """Tried: a link not valid before the skew ahead, and expiry: at `expires_at` the chain is
    valid only within the skew (`within_skew`), at `expires_at + skew` expired: the allowance
    is not added twice (link window, then the chain's)."""
    chain = world.to_bob()
    end = T + 600
    assert world.verify(chain, world.bob, now=end).within_skew(end)
    refused(world, chain, world.bob, F.EXPIRED, now=end + SKEW)
    ahead = hand_link(world.bob, chain, world.carol.identifier, READ, now=T, expires_at=end)
    future = T + 10 + SKEW + 1
    body = CredentialChain(ahead.credentials[:2], ahead.histories)
    late = hand_link(world.bob, body, world.carol.identifier, READ, now=future, expires_at=end)
    refused(world, late, world.carol, F.NOT_YET_VALID)


def test_a_revocation_the_node_has_not_synced_refuses_once_its_feed_is_stale(world: World) -> None:
    """Tried: bob's link revoked in a page the verifier's copy lacks. Within the staleness
        (docs/credentials.md, "Revocation is real": at most 5 minutes) the held copy decides; past
        it the chain is refused (STALE_FEED), as it is with a sync that stopped before the page
    holding the entry (the feed's signed length says entries are missing), and a copy holding the
    entry refuses at once."""
    chain = world.to_bob()
    link = chain.credentials[1].hash
    assert world.verify(chain, world.bob, now=T + 10).actor == world.bob.identifier
    refused(world, chain, world.bob, F.STALE_FEED, now=T + 301, feeds=world.feeds())
    revoked = world.feeds((int(RevocationKind.CREDENTIAL), link))
    refused(world, chain, world.bob, F.REVOKED, feeds=revoked)
    # a sync that took the first page only (the revocation on the second) is incomplete
    made = entries(world.authority, [(1, b"\x01" * 32), (1, link)], at=T)
    first = pages(world.authority, made, now=T, per_page=1)[0]
    part = verify_page(first, authority=world.authority.identifier, now=T)
    refused(world, chain, world.bob, F.STALE_FEED, feeds={world.authority.identifier: part})


def test_another_authoritys_credential_does_not_meet_a_pinned_rule(world: World) -> None:
    """Tried: a co-trusted authority issues bob the same attributes; a rule naming the
    authority whose attributes they are does not take them."""
    issued = issue_credential(
        world.other.signer,
        subject=world.bob.identifier,
        attributes=READ,
        now=T,
        ttl=600,
        depth=1,
    )
    theirs = world.verify(CredentialChain((issued,), (world.other.identity.history,)), world.bob)
    ours = world.verify(world.to_bob(), world.bob)
    rule = RequireAttributes(READ, authority=world.authority.identifier)
    assert _satisfies(rule, ours, None)
    assert not _satisfies(rule, theirs, None)


def test_a_pre_rotation_key_signs_nothing_the_decision_point_takes() -> None:
    """Tried: the support agent rotated (its key stolen before); the thief signs, with the
    old key, a delegation carrying the new history (backdated), and one carrying the old
    history. The first is refused at verification (the attestation is not of the current
    change), the second once the feed names the rotation, and a decision point holding the
    credential verified before denies it then."""
    world = make_world()
    held = world.credential(world.sub_chain, world.sub)
    rotated, _ = rotate(world, world.support, T + 100)
    chain = CredentialChain.decode(world.sub_chain)
    newer = CredentialChain(chain.credentials, (chain.histories[0], rotated.history))
    with pytest.raises(CredentialError) as caught:
        world.credential(newer.encode(), world.sub, now=T + 200)
    assert caught.value.reason is F.ATTESTATION_INVALID, caught.value
    world.feed = superseding(world.authority, rotated, world.authority, T + 200)
    with pytest.raises(CredentialError) as old:
        world.credential(world.sub_chain, world.sub, now=T + 200)
    assert old.value.reason is F.SUPERSEDED, old.value
    point = world.point(world.store(world.bundle(now=T + 150), now=T + 200))
    decision = point.decide(held, ToolCall("lookup_order", {"order_id": "o1"}), now=T + 200)
    assert not decision.allowed, decision
