"""Review 29a, issuers: a co-trusted authority's copy of another authority's member, made up
after a gap (review 23a, checkpoints 3; review 27h), locked out the member's delegates.

Globex names a made-up change 5 of acme's alice (its `previous` names no change of hers) and
connects to desk as her with its own chain: desk stores the copy at first sight. Bob, alice's
delegate (acme -> alice -> bob, alice's full history in the chain), then connects: the
handshake verifier judged the chain's issuer histories with `check_known` and no `Binds`
(chain issuers were bound by every copy), so her full history was refused as older than
globex's copy and bob's channel was refused (CREDENTIAL_INVALID) — for as long as alice herself
did not connect to desk with her acme chain. A member who only ever reaches desk through her
delegates (agents) was cut off there by globex (issuers 1).

Issuers 1 was a strict xfail until an issuer's full history was judged as a peer's
(`ChainVerifier`'s `known_in`, given the chain's root: `NodeTrust._issuer_known`; the copy
replaced in `NodeTrust._remember` once the peer is admitted, with the root's standing:
docs/formats.md, "A stored copy from a checkpoint"). Issuers 2 to 7 guard it: a delegate
refused changes no copy, a chain rooted at globex is still refused, and a thief holding alice's
stale backup is refused as the issuer of a chain when globex vouched for her under a change the
backup holds or acme's own feed names her rotation; the trace collector's verifier judges
issuers the same way and replaces no copy (6, 7; 6 fails on the code before the fix too).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.channels import MEMBER, T
from tests.support.feeds import pages, superseded
from tests.support.parties import ChannelParty, Party, make_channel_party, signer_as
from tests.test_review23a_lockout import Desk, gap_desk  # noqa: F401  (the fixture)
from tests.test_review27h_gap import Deny, Rotated, restart, rotated, stored  # noqa: F401
from tests.test_trust_scope import NOW, Two
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, verify_peer
from troth.channel.verification import HandshakeClaim
from troth.credentials import CredentialChain, delegate, issue_credential
from troth.errors import ChannelError, ChannelFailure, CredentialError, CredentialFailure
from troth.identity import VerifiedIdentity


def through_alice(two: Two, root: Party, alice: VerifiedIdentity) -> tuple[ChannelParty, bytes]:
    """A new party (bob, or a thief's mallory) and its chain root -> alice -> it, signed by
    alice's change 0 key under `alice` (her full history, or a stale backup of it)."""
    credential = issue_credential(
        root.signer, subject=two.alice.identifier, attributes=MEMBER, now=T, ttl=3600, depth=2
    )
    delegate_party = make_channel_party(two.vault, now=T)
    chain = delegate(
        signer_as(two.vault, two.alice.party.primary, alice, now=T),
        CredentialChain((credential,), (root.identity.history,)),
        subject=delegate_party.party.identifier,
        attributes=MEMBER,
        now=T,
        ttl=600,
        purpose="helper",
    )
    return delegate_party, chain.encode()


def refused(trust: ChannelTrust, claim: HandshakeClaim, chain: bytes) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        verify_peer(trust, claim, (chain,), NOW)
    return caught.value


def test_a_gap_copy_does_not_lock_out_her_delegates(gap_desk: Desk) -> None:  # noqa: F811
    """Issuers 1: bob, alice's delegate in an acme chain, is admitted over globex's copy of
    her (acme, the chain's root, has standing over her full history; globex's copy, which
    only globex attests, does not bind it); the copy is then replaced by her full history and
    globex's word on her forgotten, as when she connects herself (review 27h, gap 1)."""
    desk = gap_desk
    two = desk.two
    alice = two.alice
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    assert two.globex.identifier in desk.trust.vouched(alice.identifier)
    bob, chain = through_alice(two, two.acme, alice.party.identity)
    peer = verify_peer(desk.trust, bob.claim(), (chain,), NOW)
    assert peer.identifier == bob.party.identifier
    assert [c.authority for c in peer.credentials] == [two.acme.identifier]
    assert stored(desk.node, alice.party.identity) == alice.party.identity.history
    assert two.globex.identifier not in restart(desk.node).vouchers.of(alice.identifier)
    error = refused(desk.trust, desk.as_alice, desk.globex_chain)
    assert error.reason is ChannelFailure.PEER_INVALID
    assert "it starts at change 5, the stored copy ends at change 0" in str(error)


def test_a_refused_delegate_changes_no_copy(gap_desk: Desk) -> None:  # noqa: F811
    """Issuers 2: bob refused by the peer policy (after his chain verified): globex's copy of
    alice and its word on her stay, after a restart too."""
    desk = gap_desk
    two = desk.two
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    bob, chain = through_alice(two, two.acme, two.alice.party.identity)
    error = refused(replace(desk.trust, policy=Deny()), bob.claim(), chain)
    assert error.reason is ChannelFailure.PEER_NOT_ALLOWED
    assert stored(desk.node, desk.forged) == desk.forged.history
    assert two.globex.identifier in restart(desk.node).vouchers.of(two.alice.identifier)


def test_a_chain_rooted_at_globex_is_bound_by_its_copy(gap_desk: Desk) -> None:  # noqa: F811
    """Issuers 3: globex -> alice (her full history) -> bob: globex, the chain's root, names
    the copy's change 5 (its feed supersedes her history; its copy binds it too, the root
    having standing over it): bob is refused, and the copy stays."""
    desk = gap_desk
    two = desk.two
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    bob, chain = through_alice(two, two.globex, two.alice.party.identity)
    error = refused(desk.trust, bob.claim(), chain)
    assert error.reason is ChannelFailure.CREDENTIAL_INVALID
    assert "superseded history" in str(error)
    assert "the authority knows change 5" in str(error)
    assert stored(desk.node, desk.forged) == desk.forged.history


@pytest.mark.parametrize("admitted", [True, False])
def test_a_stale_backup_as_issuer_is_refused_when_globex_vouched_under_its_change(
    rotated: Rotated,  # noqa: F811
    admitted: bool,
) -> None:
    """Issuers 4: desk saw alice from globex's checkpoint (2..2), then her full history (0..2)
    with her globex chain (globex vouched for her under change 0): admitted (her history
    stored over the copy, linked) or refused by the peer policy (the copy from the checkpoint
    stays, the voucher too). A thief with her change 0 (a stale backup) and an acme credential
    of hers delegating to mallory (acme -> alice(stale) -> mallory) is refused: globex has
    standing over the backup's history, and nothing is replaced or forgotten."""
    two = rotated.two
    alice = two.alice.identifier
    globex = (two.chain(two.globex),)
    verify_peer(rotated.trust, rotated.checkpointed, globex, NOW)
    if admitted:
        verify_peer(rotated.trust, rotated.full, globex, NOW)
    else:
        error = refused(replace(rotated.trust, policy=Deny()), rotated.full, globex[0])
        assert error.reason is ChannelFailure.PEER_NOT_ALLOWED
    copy = stored(rotated.node, rotated.change_2)
    mallory, chain = through_alice(two, two.acme, two.alice.party.identity)
    error = refused(rotated.trust, mallory.claim(), chain)
    assert error.reason is ChannelFailure.CREDENTIAL_INVALID
    assert "issuer identity invalid" in str(error)
    assert "older than the stored copy" in str(error)
    assert stored(rotated.node, rotated.change_2) == copy
    assert two.globex.identifier in restart(rotated.node).vouchers.of(alice)


def test_a_stale_backup_as_issuer_is_refused_when_acme_names_her_rotation(
    rotated: Rotated,  # noqa: F811
) -> None:
    """Issuers 5: acme's feed names her change 2 too (she announced her rotation to it), and
    desk stored her change 2 from globex's checkpoint: a thief's chain acme -> alice(stale) ->
    mallory is refused (acme, its root, supersedes the backup and attests the copy, which
    binds it too), and the copy stays."""
    two = rotated.two
    verify_peer(rotated.trust, rotated.checkpointed, (two.chain(two.globex),), NOW)
    entry = superseded(
        0, two.alice.identifier, two.acme.identifier, 3, rotated.change_2.current_change_hash, at=T
    )
    (acme_page,) = pages(two.acme, [entry], now=T, per_page=1)
    rotated.node.wallet.update_feed(acme_page, authority=two.acme.identifier, now=NOW)
    trust = restart(rotated.node).channel_trust(AnyAuthenticatedIdentity())
    mallory, chain = through_alice(two, two.acme, two.alice.party.identity)
    error = refused(trust, mallory.claim(), chain)
    assert error.reason is ChannelFailure.CREDENTIAL_INVALID
    assert "superseded history" in str(error)
    assert "the authority knows change 2" in str(error)
    assert stored(rotated.node, rotated.change_2) == rotated.change_2.history


def test_the_trace_collectors_verifier_judges_issuers_as_the_handshake(
    gap_desk: Desk,  # noqa: F811
) -> None:
    """Issuers 6: the trace collector's verifier (`NodeTrust.verifier`) verifies bob's acme
    chain over globex's copy of alice, which it leaves as it is (replaced only when a peer
    showing her history is admitted), and still refuses a chain rooted at globex."""
    desk = gap_desk
    two = desk.two
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    node_trust = restart(desk.node)
    verifier = node_trust.verifier
    assert verifier is not None
    bob, chain = through_alice(two, two.acme, two.alice.party.identity)
    verified = verifier.verify(chain, presenter=bob.party.identity, feeds=node_trust.feeds, now=NOW)
    assert verified.authority == two.acme.identifier
    assert stored(desk.node, desk.forged) == desk.forged.history
    bob, chain = through_alice(two, two.globex, two.alice.party.identity)
    with pytest.raises(CredentialError) as caught:
        verifier.verify(chain, presenter=bob.party.identity, feeds=node_trust.feeds, now=NOW)
    assert caught.value.reason is CredentialFailure.SUPERSEDED
    assert stored(desk.node, desk.forged) == desk.forged.history


def test_the_trace_collectors_verifier_refuses_a_stale_backup_as_issuer(
    rotated: Rotated,  # noqa: F811
) -> None:
    """Issuers 7: as issuers 4 (globex vouched for alice under change 0; the copy from its
    checkpoint stays), at the trace collector's verifier: the thief's chain acme ->
    alice(stale) -> mallory is refused, and the copy stays."""
    two = rotated.two
    globex = (two.chain(two.globex),)
    verify_peer(rotated.trust, rotated.checkpointed, globex, NOW)
    refused(replace(rotated.trust, policy=Deny()), rotated.full, globex[0])
    node_trust = restart(rotated.node)
    verifier = node_trust.verifier
    assert verifier is not None
    mallory, chain = through_alice(two, two.acme, two.alice.party.identity)
    with pytest.raises(CredentialError) as caught:
        verifier.verify(chain, presenter=mallory.party.identity, feeds=node_trust.feeds, now=NOW)
    assert caught.value.reason is CredentialFailure.ISSUER_INVALID
    assert "older than the stored copy" in str(caught.value)
    assert stored(rotated.node, rotated.change_2) == rotated.change_2.history
