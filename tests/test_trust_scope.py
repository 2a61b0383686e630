"""Whose word counts on a peer, with two trust anchors (docs/formats.md, "Whose word counts on
an identity"; review 19, findings 5 and 6): a feed revokes or supersedes only identities its
authority has standing over (the roots of the peer's verified chains, an anchor itself; a
stranger is judged by every held feed), and a chain whose root is not a trust anchor is
dropped (it grants nothing) where a broken chain of a trusted root still refuses the channel.

The channel-level cases call `verify_peer` directly (sans-IO); the node-level ones run acme's
hub, a desk node and globex (tests/test_attacks_review19.py's setting) on the memory network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.channels import MEMBER, T
from tests.support.feeds import entries, pages
from tests.support.nodes import HUB, MemNet, globex_over_tcp, route, run_memnet
from tests.support.parties import (
    SIGNING_TTL,
    ChannelParty,
    Party,
    make_channel_party,
    make_party,
)
from tests.test_attacks_review19 import local_authority
from troth.channel import (
    AnyAuthenticatedIdentity,
    ChannelTrust,
    PeerPolicy,
    RequireAttributes,
    VerifiedPeer,
    verify_peer,
)
from troth.credentials import (
    ChainVerifier,
    CredentialChain,
    RevocationEntry,
    RevocationKind,
    SignedCredential,
    Supersession,
    TrustPolicy,
    VerifiedFeed,
    issue_credential,
    verify_page,
)
from troth.crypto import KeyType
from troth.errors import ChannelError, ChannelFailure, Denied
from troth.identity import (
    Identifier,
    Signer,
    VerifiedIdentity,
    attest_purpose_key,
    rotate_identity,
)
from troth.node import open_node
from troth.node.services import call, service_address
from troth.vault import KeyPurpose, SoftwareVault

_F = ChannelFailure
NOW = T + 1
REVOKE, SUPERSEDE = RevocationKind.IDENTITY, RevocationKind.SUPERSEDED
ECHO = service_address("echo")


def feed_of(authority: Party, targets: Sequence[tuple[int, bytes]] = ()) -> VerifiedFeed:
    """`authority`'s feed revoking / superseding (kind, identifier digest) pairs, verified."""
    made = entries(authority, targets, at=T)
    (page,) = pages(authority, made, now=T, per_page=max(1, len(made)))
    return verify_page(page, authority=authority.identifier, now=T)


@dataclass
class Two:
    """Acme and globex (both trusted here), and alice, a member of acme."""

    vault: SoftwareVault
    acme: Party
    globex: Party
    alice: ChannelParty
    feeds: dict[Identifier, VerifiedFeed] = field(default_factory=dict)

    def chain(self, authority: Party) -> bytes:
        """A credential of `authority` to alice (a one-link chain)."""
        signed = issue_credential(
            authority.signer,
            subject=self.alice.identifier,
            attributes=MEMBER,
            now=T,
            ttl=3600,
            depth=1,
        )
        return CredentialChain((signed,), (authority.identity.history,)).encode()

    def trust(self, policy: PeerPolicy, *anchors: Party) -> ChannelTrust:
        trusted = frozenset(a.identifier for a in anchors or (self.acme, self.globex))
        verifier = ChainVerifier(TrustPolicy(trusted, max_feed_staleness=10**6))
        return ChannelTrust(policy=policy, verifier=verifier, feeds=lambda: self.feeds)

    def verify(
        self,
        chains: tuple[bytes, ...],
        policy: PeerPolicy | None = None,
        *anchors: Party,
        who: VerifiedIdentity | None = None,
    ) -> VerifiedPeer:
        trust = self.trust(policy or RequireAttributes(MEMBER), *anchors)
        return verify_peer(trust, who or self.alice.party.identity, chains, NOW)


def make_two() -> Two:
    """Acme and globex with empty feeds, and alice (no credential yet)."""
    vault = SoftwareVault()
    acme, globex = make_party(vault, now=T), make_party(vault, now=T)
    world = Two(vault, acme, globex, make_channel_party(vault, now=T))
    world.feeds = {acme.identifier: feed_of(acme), globex.identifier: feed_of(globex)}
    return world


@pytest.fixture
def two() -> Two:
    return make_two()


def refused(two: Two, chains: tuple[bytes, ...], policy: PeerPolicy | None = None) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        two.verify(chains, policy)
    return caught.value


# -- whose word counts ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", [REVOKE, SUPERSEDE], ids=["revoked", "superseded"])
def test_a_co_trusted_authoritys_word_on_anothers_member_does_not_count(
    two: Two, kind: RevocationKind
) -> None:
    alice = two.alice.identifier.digest
    two.feeds[two.globex.identifier] = feed_of(two.globex, [(kind, alice)])
    peer = two.verify((two.chain(two.acme),))
    assert [c.authority for c in peer.credentials] == [two.acme.identifier]


def test_the_root_authoritys_own_word_on_its_member_still_refuses(two: Two) -> None:
    alice = two.alice.identifier.digest
    two.feeds[two.acme.identifier] = feed_of(two.acme, [(REVOKE, alice)])
    assert refused(two, (two.chain(two.acme),)).reason is _F.REVOKED
    two.feeds[two.acme.identifier] = feed_of(two.acme, [(SUPERSEDE, alice)])
    assert refused(two, (two.chain(two.acme),)).reason is _F.PEER_INVALID


def test_a_revoked_chain_the_peer_presents_refuses_it_whatever_else_it_holds(two: Two) -> None:
    """Alice holds chains of both: globex revoking her is globex's word on its own member,
    and her globex chain refuses the channel (deny when in doubt), her acme chain aside."""
    alice = two.alice.identifier.digest
    two.feeds[two.globex.identifier] = feed_of(two.globex, [(REVOKE, alice)])
    both = (two.chain(two.acme), two.chain(two.globex))
    assert refused(two, both).reason is _F.REVOKED


@pytest.mark.parametrize("kind", [REVOKE, SUPERSEDE], ids=["revoked", "superseded"])
def test_a_co_trusted_authority_cannot_cut_the_node_off_from_another(
    two: Two, kind: RevocationKind
) -> None:
    acme = two.acme.identifier
    two.feeds[two.globex.identifier] = feed_of(two.globex, [(kind, acme.digest)])
    peer = two.verify((), AnyAuthenticatedIdentity(), who=two.acme.identity)
    assert peer.identifier == acme


def test_an_anchor_is_judged_by_its_own_feed(two: Two) -> None:
    """Acme rotated: its own feed (signed under the new history) supersedes the older one,
    which is refused (a thief holding a stolen backup of acme's key)."""
    old = two.acme
    primary, identity, next_primary = rotate_identity(
        two.vault, old.identity, old.primary, old.next_primary, now=T, valid_for=10**8
    )
    signing = two.vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    attestation = attest_purpose_key(
        two.vault,
        primary,
        identity,
        KeyPurpose.SIGNING,
        two.vault.public_key(signing),
        now=T,
        expires_at=T + SIGNING_TTL,
    )
    new = Party(
        identity,
        primary,
        Signer(identity, two.vault, signing, attestation, T + SIGNING_TTL),
        next_primary,
    )
    superseded = RevocationEntry(
        0,
        SUPERSEDE,
        old.identifier.digest,
        old.identifier,
        T,
        "",
        Supersession(2, identity.current_change_hash),
    )
    (page,) = pages(new, [superseded], now=T, per_page=1)
    two.feeds[old.identifier] = verify_page(page, authority=old.identifier, now=T)
    with pytest.raises(ChannelError) as caught:
        two.verify((), AnyAuthenticatedIdentity(), who=old.identity)
    assert caught.value.reason is _F.PEER_INVALID
    assert "superseded history" in caught.value.detail
    assert two.verify((), AnyAuthenticatedIdentity(), who=identity).identifier == old.identifier


@pytest.mark.parametrize("kind", [REVOKE, SUPERSEDE], ids=["revoked", "superseded"])
def test_a_stranger_is_judged_by_every_held_feed(two: Two, kind: RevocationKind) -> None:
    """No verified chain and not an anchor: nobody vouches for it, any trusted authority's word
    refuses it (a stolen backup of a member's identity that shows no chain stays refused)."""
    alice = two.alice.identifier.digest
    two.feeds[two.globex.identifier] = feed_of(two.globex, [(kind, alice)])
    expected = _F.REVOKED if kind is REVOKE else _F.PEER_INVALID
    assert refused(two, (), AnyAuthenticatedIdentity()).reason is expected


# -- chains of untrusted roots: dropped; broken chains of trusted roots: refused ------------


def test_a_dropped_untrusted_chain_grants_nothing(two: Two) -> None:
    globex_only = (two.chain(two.globex),)
    with pytest.raises(ChannelError) as caught:  # acme trusted only: alice holds no credential
        two.verify(globex_only, None, two.acme)
    assert caught.value.reason is _F.PEER_NOT_ALLOWED
    peer = two.verify(globex_only, AnyAuthenticatedIdentity(), two.acme)
    assert peer.credentials == ()
    assert peer.dropped == (
        f"a credential from {two.globex.identifier}: issuer is not a trust anchor (ignored)",
    )
    both = two.verify((two.chain(two.globex), two.chain(two.acme)), None, two.acme)
    assert [c.authority for c in both.credentials] == [two.acme.identifier]
    assert len(both.dropped) == 1


def test_an_untrusted_chain_does_not_hide_a_broken_trusted_one(two: Two) -> None:
    """A forged chain naming a trusted root, or a revoked one, refuses the channel as before,
    whatever untrusted chain comes with it."""
    good = CredentialChain.decode(two.chain(two.acme))
    signed = good.credentials[0]
    forged = CredentialChain(
        (SignedCredential(signed.body, bytes(len(signed.signature)), signed.attestation),),
        good.histories,
    ).encode()
    untrusted = two.chain(two.globex)
    with pytest.raises(ChannelError) as caught:
        two.verify((untrusted, forged), AnyAuthenticatedIdentity(), two.acme)
    assert caught.value.reason is _F.CREDENTIAL_INVALID
    assert "bad signature" in caught.value.detail

    acme = two.chain(two.acme)
    revoked = [(RevocationKind.CREDENTIAL, CredentialChain.decode(acme).credentials[0].hash)]
    two.feeds[two.acme.identifier] = feed_of(two.acme, revoked)
    with pytest.raises(ChannelError) as caught:
        two.verify((untrusted, acme), AnyAuthenticatedIdentity(), two.acme)
    assert caught.value.reason is _F.REVOKED


# -- on nodes: acme's hub, desk (trusting acme and globex), globex ---------------------------


def test_at_a_node_trusting_two_each_authority_speaks_for_its_own(tmp_path: Path) -> None:
    """Globex revoking acme itself cuts desk off from nothing: desk's channels to acme's hub
    stay (and new ones open), acme's feed still syncs, acme's member is still served. Acme
    revoking its own member refuses it at desk."""

    async def test(net: MemNet) -> None:
        globex, ticket = local_authority(net.home, "globex", net.clock.now())
        desk = await net.node("desk", listen=("desk", 4000))
        await desk.enroll(net.ticket(), "desk")
        await desk.worker.run(lambda: desk.node.identities.create(now=net.clock.now(), name="g"))
        await desk.enroll(ticket, "g")
        agent = await net.member("agent")
        acme = net.authority.identifier
        assert await agent.send_message("/tcp/desk:4000/service/echo", "hi") == "hi"

        with open_node("globex", home=net.home) as node:
            node.authority().revoke_identity(acme, now=net.clock.now())
        await desk.refresh_feeds()
        assert acme.digest in desk.feeds[globex].revoked_identities
        await desk.channels.check_peers()  # the re-check keeps desk's channel to acme
        end = await desk.channel_as("desk", route(HUB), expect=acme)  # and a new one opens
        assert end.peer is not None
        assert end.peer.identifier == acme
        before = desk.feeds[acme].count
        net.authority.revoke_identity(net.identifier(agent), now=net.clock.now())
        await desk.refresh_feeds()
        assert desk.feeds[acme].count == before + 1  # acme's feed still syncs
        with pytest.raises(Denied, match=f"it is revoked by {acme}"):
            await agent.send_message("/tcp/desk:4000/service/echo", "gone")

    run_memnet(test, tmp_path / "home")


def test_a_node_holding_two_authorities_chains_reaches_both(tmp_path: Path) -> None:
    """Desk's own identity holds acme's chain and, enrolled with globex's node over the
    network, globex's too: each authority's node drops the other's chain and serves desk
    (its feed syncs from both). Desk's identity `o`, holding acme's chain only, gets nothing
    from globex's node: the dropped chain is named in the refusal."""

    async def test(net: MemNet) -> None:
        _globex, authority, ticket = await globex_over_tcp(net)
        desk = await net.node("desk")
        await desk.enroll(net.ticket(), "desk")
        await desk.worker.run(lambda: desk.node.identities.create(now=net.clock.now(), name="o"))
        await desk.enroll(net.ticket(), "o")
        await desk.enroll(ticket, "desk")  # desk's own identity, now in both
        acme, g = net.authority.identifier, authority.identifier
        assert {acme, g} <= desk.trust.anchors

        await desk.refresh_feeds()
        assert desk.feeds[g].complete
        assert desk.feeds[acme].complete
        assert await desk.send_message("/tcp/globex:4000/service/echo", "g") == "g"
        assert await desk.send_message(f"{HUB}/service/echo", "a") == "a"

        end = await desk.channel_as("o", route("/tcp/globex:4000"), expect=g)
        with pytest.raises(Denied, match="issuer is not a trust anchor \\(ignored\\)"):
            await call(desk.router, (end.enc, ECHO), "echo", "nothing")

    run_memnet(test, tmp_path / "home")
