"""Review 53e, refuted: attacks on layer 2 (delegation, attributes, the feed, tickets) that the
code already refused. Each hand-builds what a hostile delegator, member or feed source could
send and pins the refusal (or, for a restatement that changes nothing, that nothing changed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent
from tests.support.feeds import entries, pages
from tests.support.parties import Party, make_party, verified_feed
from troth.authority.client import enroll_request
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    Delegation,
    RevocationKind,
    SignedCredential,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
    delegate,
    issue_credential,
    verify_page,
)
from troth.errors import (
    ArgumentError,
    AuthorityError,
    AuthorityFailure,
    CredentialError,
    CredentialFailure,
    DecodeError,
)
from troth.gates.entities import credential_entities
from troth.identity import Identifier
from troth.vault import SoftwareVault

F = CredentialFailure
T = 1_780_000_000
ROOT = Attributes({"app.role": "ops", "app.env": frozenset({"dev", "prod"})})


class World:
    def __init__(self) -> None:
        self.vault = SoftwareVault()
        self.authority = make_party(self.vault, now=T)
        self.alice = make_party(self.vault, now=T)
        self.bob = make_party(self.vault, now=T)
        self.carol = make_party(self.vault, now=T)
        root = issue_credential(
            self.authority.signer,
            subject=self.alice.identifier,
            attributes=ROOT,
            now=T,
            ttl=3600,
            depth=4,
        )
        self.root = CredentialChain((root,), (self.authority.identity.history,))
        self.verifier = ChainVerifier(TrustPolicy(frozenset({self.authority.identifier})))

    def feeds(
        self, feed: VerifiedFeed | None = None, now: int = T
    ) -> dict[Identifier, VerifiedFeed]:
        return {self.authority.identifier: feed or verified_feed(self.authority, now=now)}

    def verify(
        self, chain: CredentialChain, presenter: Party, now: int = T + 10
    ) -> VerifiedCredential:
        return self.verifier.verify(
            chain.encode(), presenter=presenter.identifier, feeds=self.feeds(now=now), now=now
        )

    def hand_link(
        self,
        parent: CredentialChain,
        signer: Party,
        subject: Party,
        *,
        attributes: Attributes,
        not_before: int = T,
        expires_at: int = T + 600,
        depth: int = 3,
        caveats: tuple[str, ...] = (),
    ) -> CredentialChain:
        """A link `signer` signs by hand, none of `delegate`'s checks made."""
        body = CredentialBody(
            os.urandom(16),
            subject.identifier,
            signer.identifier,
            attributes,
            T,
            not_before,
            expires_at,
            depth,
            Delegation(parent.credentials[-1].hash, "p", caveats),
        )
        encoded = body.encode()
        link = SignedCredential(encoded, signer.signer.sign(encoded), signer.signer.attestation)
        return parent.extended(link, signer.identity.history)


@pytest.fixture
def world() -> World:
    return World()


def _refused(world: World, chain: CredentialChain, presenter: Party, now: int = T + 10) -> F:
    with pytest.raises(CredentialError) as caught:
        world.verify(chain, presenter, now)
    return caught.value.reason


def test_a_string_restated_as_a_set_of_one_changes_nothing_cedar_sees(world: World) -> None:
    """`app.role = "ops"` delegated as `{"ops"}` (and a set of one as a string) passes the
    narrowing rule (a string counts as the set holding it) and reaches Cedar as the same
    `Set<String>` tag: no `==` against a string tag a forbid could be dodged by."""
    as_set = Attributes({"app.role": frozenset({"ops"}), "app.env": "dev"})
    chain = world.hand_link(world.root, world.alice, world.bob, attributes=as_set)
    verified = world.verify(chain, world.bob)
    tags = [entity["tags"] for entity in json.loads(credential_entities(verified))]
    assert tags[0]["app.role"] == tags[1]["app.role"] == ["ops"]
    assert tags[1]["app.env"] == ["dev"]


def test_lookalike_and_cased_attribute_names_are_refused() -> None:
    """A name that looks like `app.role` (capitals, a Cyrillic o (U+043E), a fullwidth dot, a
    trailing newline or space) is no attribute name: refused when made and when decoded."""
    for name in ("App.role", "app.r\u043ele", "app\uff0erole", "app.role\n", "app.role ", "app"):
        with pytest.raises(ArgumentError):
            Attributes({name: "ops"})
        with pytest.raises(DecodeError):
            Attributes.from_cbor({name: "ops"})


def test_an_empty_set_is_no_value_and_a_dropped_attribute_grants_nothing(world: World) -> None:
    with pytest.raises(ArgumentError):
        Attributes({"app.env": frozenset()})
    with pytest.raises(DecodeError):
        Attributes.from_cbor({"app.env": []})
    nothing = world.hand_link(world.root, world.alice, world.bob, attributes=Attributes())
    assert len(world.verify(nothing, world.bob).attributes) == 0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"attributes": Attributes({"app.role": "admin"})}, F.AMPLIFIED),
        ({"attributes": Attributes({"app.env": frozenset({"dev", "qa"})})}, F.AMPLIFIED),
        ({"attributes": Attributes({"troth.role": "admin"})}, F.AMPLIFIED),
        ({"expires_at": T + 3601}, F.AMPLIFIED),
        ({"depth": 4}, F.DEPTH_EXCEEDED),
        ({"depth": 5}, F.DEPTH_EXCEEDED),
    ],
)
def test_a_hand_signed_link_that_widens_is_refused(
    world: World, changes: dict[str, object], reason: F
) -> None:
    """Whatever a delegator signs by hand: a value or a name it does not hold, a reserved
    attribute, a later expiry, a depth not below its own."""
    kwargs: dict[str, object] = {"attributes": Attributes({"app.role": "ops"}), **changes}
    chain = world.hand_link(world.root, world.alice, world.bob, **kwargs)  # type: ignore[arg-type]
    assert _refused(world, chain, world.bob) is reason


def test_an_earlier_start_than_the_parent_grants_no_earlier_time(world: World) -> None:
    """A link starting before its parent: each link's own window is checked, so before the
    parent starts the chain is not yet valid (link 0), whatever the child says."""
    later = issue_credential(  # issued now, valid from T + 2000 (a root dated ahead)
        world.authority.signer,
        subject=world.alice.identifier,
        attributes=ROOT,
        now=T + 2000,
        ttl=3600,
        depth=4,
    )
    late_root = CredentialChain((later,), (world.authority.identity.history,))
    assert CredentialBody.decode(later.body).not_before == T + 2000
    chain = world.hand_link(late_root, world.alice, world.bob, attributes=Attributes())
    with pytest.raises(CredentialError) as caught:
        world.verify(chain, world.bob, now=T + 1000)
    assert caught.value.reason is F.NOT_YET_VALID
    assert caught.value.link == 0


def test_a_parent_revoked_or_a_middle_identity_revoked_cuts_every_child(world: World) -> None:
    bob = delegate(
        world.alice.signer,
        world.root,
        subject=world.bob.identifier,
        attributes=Attributes({"app.role": "ops"}),
        now=T,
        ttl=600,
        purpose="p",
    )
    carol = delegate(
        world.bob.signer,
        bob,
        subject=world.carol.identifier,
        attributes=Attributes({"app.role": "ops"}),
        now=T,
        ttl=600,
        purpose="p",
    )
    for kind, target, link in (
        (RevocationKind.CREDENTIAL, world.root.credentials[0].hash, 0),
        (RevocationKind.CREDENTIAL, bob.credentials[1].hash, 1),
        (RevocationKind.IDENTITY, world.bob.identifier.digest, 1),
    ):
        feed = verified_feed(world.authority, [(int(kind), target)], now=T + 5)
        with pytest.raises(CredentialError) as caught:
            world.verifier.verify(
                carol.encode(),
                presenter=world.carol.identifier,
                feeds=world.feeds(feed),
                now=T + 10,
            )
        assert (caught.value.reason, caught.value.link) == (F.REVOKED, link)


def test_a_feed_page_replayed_reordered_or_forked_is_refused(world: World) -> None:
    """An older page after a newer one (a rollback), the same entries in another order, and
    a page that does not start where the held feed ends."""
    made = entries(
        world.authority,
        [(int(RevocationKind.CREDENTIAL), bytes([n]) * 32) for n in range(1, 4)],
        at=T,
    )
    authority = world.authority.identifier
    old = pages(world.authority, made[:2], now=T, per_page=2)[0]
    new = pages(world.authority, made[:2], now=T + 60, per_page=2)[0]
    held = verify_page(new, authority=authority, now=T + 60)
    again = pages(world.authority, made, now=T + 30, per_page=1, start=2)[0]
    with pytest.raises(CredentialError) as caught:
        verify_page(again, authority=authority, now=T + 61, previous=held)
    assert caught.value.reason is F.FEED_ROLLBACK
    with pytest.raises(CredentialError) as caught:
        verify_page(old, authority=authority, now=T + 61, previous=held)
    assert caught.value.reason is F.FEED_INVALID  # it starts at 0, 2 are held
    swapped = [made[1], made[0]]
    reordered = pages(world.authority, swapped, now=T, per_page=2)[0]
    with pytest.raises(CredentialError) as caught:
        verify_page(reordered, authority=authority, now=T)
    assert caught.value.reason is F.FEED_INVALID  # entry 0 has seq 1


def test_a_ticket_replayed_by_another_identity_or_after_removal_gives_nothing(
    tmp_path: Path,
) -> None:
    """A one-use ticket redeemed: another identity's redemption of it is `ticket unknown`,
    and the redeemer, once removed, gets `not a member` from a repeat within the window
    (the stored answer is not handed out again) and after it."""
    now = 1_800_000_000
    with acme_and_agent(tmp_path / "home", now) as (authority, agent, member, ticket):
        authority.enroll(enroll_request(agent.identities, "agent", ticket, now=now), now=now)
        agent.identities.create(now=now, name="other")
        with pytest.raises(AuthorityError) as caught:
            authority.enroll(enroll_request(agent.identities, "other", ticket, now=now), now=now)
        assert caught.value.reason is AuthorityFailure.TICKET_UNKNOWN
        authority.remove_member(member, now=now + 1)
        for when in (now + 2, now + 10_000):
            request = enroll_request(agent.identities, "agent", ticket, now=when)
            with pytest.raises(AuthorityError) as caught:
                authority.enroll(request, now=when)
            assert caught.value.reason is AuthorityFailure.NOT_A_MEMBER
