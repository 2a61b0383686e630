"""The node's access decision point as a unit (no network): every rule of RulesPolicy, caveated
credentials failing closed, local callers, unknown methods refused, the channel admission
adapter (pinned identities included), and the standing re-computed against the feeds held at
each decision (a revocation or a stale feed takes effect on the next decision)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.support.parties import Party, make_party, verified_feed
from troth.channel import VerifiedPeer
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    VerifiedFeed,
    issue_credential,
)
from troth.credentials.issue import delegate
from troth.errors import ChannelError, ChannelFailure, CredentialError, Denied
from troth.identity import Identifier
from troth.node.access import (
    CHANNELS,
    AccessRequest,
    AnyAuthenticated,
    AttributeCoversArgument,
    ChannelAdmission,
    LocalCaller,
    MembersOnly,
    PeerCaller,
    RequireAttributes,
    Rule,
    RulesPolicy,
    Standing,
    require,
)
from troth.vault import SoftwareVault

T = 1_780_000_000
CAVEAT = 'context.ticket == "9"'
RULES: dict[tuple[str, str], Rule] = {
    ("echo", "echo"): MembersOnly(),
    ("authority", "enroll"): AnyAuthenticated(),
    ("relay", "create"): AttributeCoversArgument("troth.relay"),
    ("orders", "write"): RequireAttributes(Attributes({"orders.access": "write"})),
    CHANNELS: MembersOnly(),
}


@dataclass
class Scene:
    """An authority, alice (a member with troth.relay=*), carol (only a caveated delegation
    from alice), dave (a plain delegation from alice), a stranger, and a standing function
    over the feed held now (`feed` may be replaced)."""

    authority: Party
    alice: VerifiedPeer
    carol: VerifiedPeer
    dave: VerifiedPeer
    stranger: VerifiedPeer
    dave_link: bytes
    feed: VerifiedFeed

    def standing(self, peer: VerifiedPeer, now: int) -> Standing:
        verifier = ChainVerifier(TrustPolicy(frozenset({self.authority.identifier})))
        feeds = {self.authority.identifier: self.feed}
        credentials, dropped = [], []
        for held in peer.credentials:
            try:
                credentials.append(
                    verifier.verify(held.chain, presenter=peer.identity, feeds=feeds, now=now)
                )
            except CredentialError as exc:
                dropped.append(str(exc))
        anchor = peer.identifier == self.authority.identifier
        return Standing(tuple(credentials), anchor, None, tuple(dropped))

    def policy(self) -> RulesPolicy:
        return RulesPolicy("hub", RULES, self.standing)


def _peer(party: Party, chains: list[bytes], authority: Party, feed: VerifiedFeed) -> VerifiedPeer:
    verifier = ChainVerifier(TrustPolicy(frozenset({authority.identifier})))
    feeds = {authority.identifier: feed}
    return VerifiedPeer(
        party.identity,
        tuple(verifier.verify(c, presenter=party.identity, feeds=feeds, now=T) for c in chains),
    )


@pytest.fixture(scope="module")
def scene() -> Scene:
    vault = SoftwareVault()
    authority, alice, carol, dave, stranger = (make_party(vault, now=T) for _ in range(5))
    feed = verified_feed(authority, now=T)
    held = Attributes({"agents.team": "support", "troth.relay": "*"})
    root = issue_credential(
        authority.signer, subject=alice.identifier, attributes=held, now=T, ttl=3600, depth=2
    )
    alice_chain = CredentialChain((root,), (authority.identity.history,))

    def to(who: Party, caveats: tuple[str, ...]) -> CredentialChain:
        return delegate(
            alice.signer,
            alice_chain,
            subject=who.identifier,
            attributes=held,
            now=T,
            ttl=600,
            purpose="help with tickets",
            caveats=caveats,
        )

    dave_chain = to(dave, ())
    return Scene(
        authority,
        _peer(alice, [alice_chain.encode()], authority, feed),
        _peer(carol, [to(carol, (CAVEAT,)).encode()], authority, feed),
        _peer(dave, [dave_chain.encode()], authority, feed),
        _peer(stranger, [], authority, feed),
        dave_chain.credentials[-1].hash,
        feed,
    )


def ask(peer: VerifiedPeer, what: tuple[str, str], arguments: object = None) -> AccessRequest:
    return AccessRequest(PeerCaller(peer, "chan-1"), *what, arguments, T + 1)


def test_members_only_admits_members_and_refuses_strangers(scene: Scene) -> None:
    policy = scene.policy()
    allowed = policy.decide(ask(scene.alice, ("echo", "echo")))
    assert allowed.allowed
    assert allowed.policies == ("members only",)
    assert allowed.credential is not None
    assert allowed.credential.actor == scene.alice.identifier
    (why,) = allowed.reasons  # built when first read, the same every time
    authority = scene.authority.identifier
    assert why == f"hub allowed {scene.alice.identifier} echo.echo: credential from {authority}"
    assert allowed.reasons == (why,)
    refused = policy.decide(ask(scene.stranger, ("echo", "echo")))
    assert not refused.allowed
    (reason,) = refused.reasons
    assert reason.startswith("hub refused T")
    assert reason.endswith(": it holds no credential from an authority hub trusts")


def test_trust_anchors_count_as_members(scene: Scene) -> None:
    anchor = VerifiedPeer(scene.authority.identity, ())
    decision = scene.policy().decide(ask(anchor, ("echo", "echo")))
    assert decision.allowed
    assert decision.reasons[0].endswith("anchor")


def test_any_authenticated_identity_reaches_the_authority(scene: Scene) -> None:
    decision = scene.policy().decide(ask(scene.stranger, ("authority", "enroll")))
    assert decision.allowed
    assert decision.policies == ("any authenticated identity",)


def test_attribute_rules_including_argument_dependent_ones(scene: Scene) -> None:
    policy = scene.policy()
    assert policy.decide(ask(scene.alice, ("relay", "create"), "anything")).allowed
    assert not policy.decide(ask(scene.alice, ("relay", "create"), 7)).allowed  # not text
    refused = policy.decide(ask(scene.alice, ("orders", "write")))
    assert not refused.allowed
    assert "orders.access" in refused.reasons[0]
    assert not policy.decide(ask(scene.stranger, ("relay", "create"), "x")).allowed


def test_a_caveated_credential_never_satisfies_a_rule(scene: Scene) -> None:
    """The reproduced hole: carol, whose only credential carries context.ticket == "9", got an
    echo answer from the hub. Every rule that needs a credential refuses her, here, once."""
    policy = scene.policy()
    assert scene.carol.credentials[0].caveats == (CAVEAT,)
    for what, arguments in (
        (("echo", "echo"), None),
        (("relay", "create"), "carol"),
        (CHANNELS, None),
    ):
        decision = policy.decide(ask(scene.carol, what, arguments))
        assert not decision.allowed, what
        assert (
            "carry caveats, which only a Cedar policy bundle can satisfy (fail closed)"
            in decision.reasons[0]
        )
    # a delegation without caveats passes the same rules
    assert policy.decide(ask(scene.dave, ("echo", "echo"))).allowed
    # the authority's own checks still apply to her: enrolling is open to her identity
    assert policy.decide(ask(scene.carol, ("authority", "enroll"))).allowed


def test_every_decision_uses_the_feed_held_now(scene: Scene) -> None:
    """Revoke dave's link in the feed: the next decision refuses him, with the reason."""
    policy = scene.policy()
    assert policy.decide(ask(scene.dave, ("echo", "echo"))).allowed
    before = scene.feed
    try:
        scene.feed = verified_feed(
            scene.authority, [(RevocationKind.CREDENTIAL.value, scene.dave_link)], now=T + 1
        )
        refused = policy.decide(ask(scene.dave, ("echo", "echo")))
        assert not refused.allowed
        assert "revoked" in refused.reasons[0]
        assert policy.decide(ask(scene.alice, ("echo", "echo"))).allowed
    finally:
        scene.feed = before


def test_a_stale_feed_refuses_members(scene: Scene) -> None:
    late = AccessRequest(PeerCaller(scene.alice, "chan-1"), "echo", "echo", None, T + 1000)
    refused = scene.policy().decide(late)
    assert not refused.allowed
    assert "stale" in refused.reasons[0]


def test_unknown_methods_are_refused_and_local_callers_allowed(scene: Scene) -> None:
    policy = scene.policy()
    refused = policy.decide(ask(scene.alice, ("echo", "unknown")))
    assert not refused.allowed
    assert refused.reasons[0].endswith("echo.unknown has no access rule")
    local = policy.decide(
        AccessRequest(LocalCaller("control socket"), "control", "status", None, T)
    )
    assert local.allowed
    assert local.policies == ("local",)
    with pytest.raises(Denied) as denied:
        require(refused)
    assert denied.value.reasons == refused.reasons


def test_a_peer_whose_identity_has_a_problem_is_refused_everything(scene: Scene) -> None:
    def revoked(peer: VerifiedPeer, now: int) -> Standing:
        return Standing(peer.credentials, False, "it is revoked by Tauthority")

    policy = RulesPolicy("hub", RULES, revoked)
    for what in (("echo", "echo"), ("authority", "enroll")):
        decision = policy.decide(ask(scene.alice, what))
        assert not decision.allowed
        assert decision.reasons[0].endswith("it is revoked by Tauthority")


def _admission(scene: Scene, expect: Identifier | None = None) -> ChannelAdmission:
    clock: Callable[[], int] = lambda: T + 1  # noqa: E731
    return ChannelAdmission(scene.policy(), clock, expect=expect)


def test_channel_admission_is_the_same_decision(scene: Scene) -> None:
    assert _admission(scene).admit(scene.alice)
    for refused in (scene.stranger, scene.carol):
        with pytest.raises(ChannelError) as caught:
            _admission(scene).admit(refused)
        assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        assert "hub refused" in caught.value.detail


def test_a_pinned_identity_refuses_anyone_else(scene: Scene) -> None:
    pinned = _admission(scene, expect=scene.alice.identifier)
    assert pinned.admit(scene.alice)
    with pytest.raises(ChannelError) as caught:
        pinned.admit(scene.dave)
    assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED
    assert str(scene.alice.identifier) in caught.value.detail
    assert str(scene.dave.identifier) in caught.value.detail
