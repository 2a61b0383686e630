"""Review 27h, gap: a stored copy from a co-trusted authority's checkpoint binds a member's
full history only when that authority has standing over it (review 23a, checkpoints 3, the
gap), without letting a thief with a stale backup shed the word of a real authority of hers.

Globex (trusted by desk, as acme is) names a made-up change 5 of acme's alice whose `previous`
names no change of hers and connects to desk as her with its own chain: desk stores the copy at
first sight, and globex vouched for her under that made-up change only. Her full history (change
0) does not hold it, so globex has no standing over it: the copy does not bind it, she is
admitted with her acme chain, and only then is the copy replaced and its changes recorded
refuted, so globex's word on her is forgotten (gap 1, 2, 3). A copy binds whenever an authority
attesting it has standing over the history shown: a voucher of it recorded under a change that
history holds (gap 4: a thief with a stale backup is refused), or a copy that extended a full
history the member showed (gap 5). A peer refused after the check changes no copy and forgets
no voucher (gap 2, 6), and rows stored before this was recorded bind every history (gap 7).
An authority's revocation judges every full history holding the change it vouched under (gap
8, 9): its word is shed only by a history that holds none of what it vouched for.

gap 1, 2 and 3 were strict xfails until the rule above (troth.identity.known `Binds`,
`ChannelTrust.known_by`, vouchers recorded with the oldest change of the history they were
verified with: docs/formats.md, "A stored copy from a checkpoint"), shown failing first (alice
refused as older than the stored copy); gap 4 to 9 guard it (4, 5, 6, 8 and 9 pass on the code
before it too; 5 and 7 fail without `identities.linked`, 6 when a failed chain is not bound).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.support.channels import MEMBER, T
from tests.support.feeds import pages, superseded
from tests.test_review23a_lockout import Desk, gap_desk  # noqa: F401  (the fixture)
from tests.test_trust_scope import NOW, Two, make_two
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, VerifiedPeer, verify_peer
from troth.channel.verification import HandshakeClaim
from troth.credentials import (
    CredentialChain,
    RevocationEntry,
    RevocationKind,
    issue_credential,
)
from troth.errors import ChannelError, ChannelFailure
from troth.identity import Checkpoint, VerifiedIdentity, attest_purpose_key, rotate_identity
from troth.node import Node, init_node, open_node
from troth.node.trust import NodeTrust
from troth.vault import KeyHandle, KeyPurpose


def refused(trust: ChannelTrust, claim: HandshakeClaim, chains: tuple[bytes, ...]) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        verify_peer(trust, claim, chains, NOW)
    return caught.value


def restart(node: Node) -> NodeTrust:
    """Desk restarted: a new NodeTrust over the same store (the old hooks dropped)."""
    node.identities.refuted_hooks.clear()
    trust = NodeTrust(node, None)
    trust.reload(NOW)
    return trust


def stored(node: Node, identity: VerifiedIdentity) -> bytes | None:
    row = node.identities.store.get_history(identity.identifier.digest)
    return None if row is None else row[0]


class Deny:
    """A peer policy that admits no one (the peer is refused after every other check)."""

    def admit(self, peer: VerifiedPeer) -> bool:
        return False


def test_her_history_replaces_globexs_gap_copy(gap_desk: Desk) -> None:  # noqa: F811
    """Gap 1: alice is admitted with her acme chain over globex's copy; then globex as alice is
    refused (a gap after her stored change 0) and its word on her is forgotten."""
    desk = gap_desk
    two = desk.two
    alice = two.alice.identifier
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    assert set(desk.trust.vouched(alice)) == {two.globex.identifier}
    peer = verify_peer(desk.trust, desk.alice(), (two.chain(two.acme),), NOW)
    assert [c.authority for c in peer.credentials] == [two.acme.identifier]
    assert stored(desk.node, peer.identity) == peer.identity.history
    assert set(desk.trust.vouched(alice)) == {two.acme.identifier}
    error = refused(desk.trust, desk.as_alice, (desk.globex_chain,))
    assert error.reason is ChannelFailure.PEER_INVALID
    assert "it starts at change 5, the stored copy ends at change 0" in str(error)


def test_a_refused_peer_changes_no_copy_and_forgets_no_voucher(gap_desk: Desk) -> None:  # noqa: F811
    """Gap 2: alice with her acme chain, refused by the peer policy (after the copy stopped
    binding her): globex's copy and its voucher stay, after a restart too; a stranger showing
    her change 0 (no chain) is bound by the copy."""
    desk = gap_desk
    two = desk.two
    alice = two.alice.identifier
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    deny = replace(desk.trust, policy=Deny())
    error = refused(deny, desk.alice(), (two.chain(two.acme),))
    assert error.reason is ChannelFailure.PEER_NOT_ALLOWED
    stranger = refused(desk.trust, desk.alice(), ())
    assert stranger.reason is ChannelFailure.PEER_INVALID
    assert "older than the stored copy" in str(stranger)
    assert stored(desk.node, desk.forged) == desk.forged.history
    assert two.globex.identifier in desk.trust.vouched(alice)
    assert two.globex.identifier in restart(desk.node).vouchers.of(alice)
    assert stored(desk.node, desk.forged) == desk.forged.history


def test_after_a_restart_the_outcome_is_the_same(gap_desk: Desk) -> None:  # noqa: F811
    """Gap 3: desk restarts between globex's visit and alice's (the voucher's change read from
    the store), and again after: she is admitted, globex as her refused, its word forgotten."""
    desk = gap_desk
    two = desk.two
    alice = two.alice.identifier
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    trust = restart(desk.node).channel_trust(AnyAuthenticatedIdentity())
    assert verify_peer(trust, desk.alice(), (two.chain(two.acme),), NOW).identifier == alice
    again = restart(desk.node)
    assert set(again.vouchers.of(alice)) == {two.acme.identifier}
    trust = again.channel_trust(AnyAuthenticatedIdentity())
    assert "starts at change 5" in str(refused(trust, desk.as_alice, (desk.globex_chain,)))
    assert verify_peer(trust, desk.alice(), (two.chain(two.acme),), NOW).identifier == alice


@pytest.mark.parametrize("legacy", ["voucher", "copy"])
def test_rows_from_before_the_migration_bind_every_history(
    gap_desk: Desk,  # noqa: F811
    legacy: str,
) -> None:
    """Gap 7: a voucher row that does not say under which change it was recorded (written
    before review 27h's migration) counts on every history, and a stored copy not known to be
    only a checkpoint's word binds every history: globex's copy refuses her (the safe default,
    as before), and stays."""
    desk = gap_desk
    two = desk.two
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    with sqlite3.connect(desk.node.path / "node.db") as conn:
        if legacy == "voucher":
            conn.execute("UPDATE vouchers SET since_idx = NULL, since_hash = NULL")
        else:
            conn.execute("UPDATE identities SET linked = 1")
    trust = restart(desk.node).channel_trust(AnyAuthenticatedIdentity())
    error = refused(trust, desk.alice(), (two.chain(two.acme),))
    assert error.reason is ChannelFailure.PEER_INVALID
    assert "older than the stored copy" in str(error)
    assert stored(desk.node, desk.forged) == desk.forged.history


@dataclass
class Rotated:
    """Alice rotated twice (changes 1 and 2); globex, a real authority of hers too, names her
    change 2 in its feed (acme's names nothing). `backup` is her change 0 (a stolen backup's
    history, its key still valid); `full`, `one` and `checkpointed` her histories 0..2, 0..1
    and 2..2 (from globex's checkpoint)."""

    two: Two
    node: Node
    trust: ChannelTrust
    backup: HandshakeClaim
    full: HandshakeClaim
    one: HandshakeClaim
    checkpointed: HandshakeClaim
    change_2: VerifiedIdentity
    revoking: bytes  # globex's next feed page: it revokes alice's identity

    def revoke(self) -> NodeTrust:
        """Desk syncs globex's page revoking alice (her keys were stolen, say), and reloads."""
        self.node.wallet.update_feed(self.revoking, authority=self.two.globex.identifier, now=NOW)
        return restart(self.node)


@pytest.fixture
def rotated(troth_home: Path) -> Iterator[Rotated]:
    two = make_two()
    alice = two.alice
    vault = two.vault
    key = vault.public_key(alice.channel_key)
    first = rotate_identity(
        vault,
        alice.party.identity,
        alice.party.primary,
        alice.party.next_primary,
        now=T,
        valid_for=10**8,
    )
    second = rotate_identity(
        vault, first.identity, first.primary, first.next_key, now=T, valid_for=10**8
    )

    def claim(primary: KeyHandle, identity: VerifiedIdentity) -> HandshakeClaim:
        attestation = attest_purpose_key(
            vault, primary, identity, KeyPurpose.SECURE_CHANNEL, key, now=T, expires_at=T + 3600
        )
        return HandshakeClaim(identity.history, attestation, key)

    full = second.identity
    entry = superseded(
        0, alice.identifier, two.globex.identifier, 3, full.current_change_hash, at=T
    )
    revocation = RevocationEntry(
        1, RevocationKind.IDENTITY, alice.identifier.digest, two.globex.identifier, T, ""
    )
    (globex_page,) = pages(two.globex, [entry], now=T, per_page=1)
    (revoking,) = pages(two.globex, [entry, revocation], now=T, per_page=1, start=1)
    (acme_page,) = pages(two.acme, [], now=T, per_page=1)
    change_2 = full.from_checkpoint(
        Checkpoint(alice.identifier.digest, two.globex.identifier.digest, 2)
    )
    init_node("desk")
    with open_node("desk") as node:
        for authority, page in ((two.acme, acme_page), (two.globex, globex_page)):
            node.wallet.trust(authority.identifier, f"node:{authority.identifier}", now=T)
            node.wallet.update_feed(page, authority=authority.identifier, now=NOW)
        node_trust = NodeTrust(node, None)
        node_trust.reload(NOW)
        yield Rotated(
            two,
            node,
            node_trust.channel_trust(AnyAuthenticatedIdentity()),
            HandshakeClaim(alice.party.identity.history, alice.attestation, key),
            claim(second.primary, full),
            claim(first.primary, first.identity),
            claim(second.primary, change_2),
            change_2,
            revoking,
        )


def test_a_stale_backup_is_refused_when_globex_vouched_under_a_change_it_holds(
    rotated: Rotated,
) -> None:
    """Gap 4: desk first saw alice from globex's checkpoint (2..2, her globex chain), then her
    full history (0..2) with her globex chain: globex vouched for her under change 0. A thief
    with her change 0 and an acme chain is refused by her stored history (globex has standing
    over the backup's history too), and nothing is forgotten or replaced."""
    two = rotated.two
    alice = two.alice.identifier
    globex = (two.chain(two.globex),)
    assert verify_peer(rotated.trust, rotated.checkpointed, globex, NOW).identity.first_index == 2
    assert verify_peer(rotated.trust, rotated.full, globex, NOW).identity.first_index == 0
    error = refused(rotated.trust, rotated.backup, (two.chain(two.acme),))
    assert error.reason is ChannelFailure.PEER_INVALID
    assert "older than the stored copy" in str(error)
    # her full history ending at the copy's change was stored over it (review 29a, refuted 2)
    assert stored(rotated.node, rotated.change_2) == rotated.full.history
    assert two.globex.identifier in restart(rotated.node).vouchers.of(alice)
    trust = restart(rotated.node).channel_trust(AnyAuthenticatedIdentity())
    assert "older than the stored copy" in str(
        refused(trust, rotated.backup, (two.chain(two.acme),))
    )


def test_a_copy_that_extended_her_full_history_binds_a_stale_backup(rotated: Rotated) -> None:
    """Gap 5: desk stored her full history 0..1 (her acme chain), then her change 2 from
    globex's checkpoint (her globex chain: globex vouched under change 2 only), which extends
    it. The copy's link to her identifier was checked here, so it binds every history: a thief
    with her change 0 and an acme chain is refused, and globex's word on her stays."""
    two = rotated.two
    alice = two.alice.identifier
    assert verify_peer(rotated.trust, rotated.one, (two.chain(two.acme),), NOW)
    peer = verify_peer(rotated.trust, rotated.checkpointed, (two.chain(two.globex),), NOW)
    assert peer.identity.first_index == 2
    assert stored(rotated.node, rotated.change_2) == rotated.change_2.history
    error = refused(rotated.trust, rotated.backup, (two.chain(two.acme),))
    assert error.reason is ChannelFailure.PEER_INVALID
    assert "older than the stored copy" in str(error)
    assert stored(rotated.node, rotated.change_2) == rotated.change_2.history
    assert two.globex.identifier in restart(rotated.node).vouchers.of(alice)


def test_a_stale_backup_without_a_chain_is_bound(rotated: Rotated) -> None:
    """Gap 6: desk saw alice only from globex's checkpoint (globex vouched under change 2); her
    change 0 shown with no chain (a stranger), with an acme chain that fails (issued to
    another identity) beside a valid one, or with her globex chain (globex attests the copy)
    is refused by the copy, which stays, and globex's word on her stays."""
    two = rotated.two
    alice = two.alice.identifier
    verify_peer(rotated.trust, rotated.checkpointed, (two.chain(two.globex),), NOW)
    not_hers = issue_credential(
        two.acme.signer, subject=two.globex.identifier, attributes=MEMBER, now=T, ttl=3600, depth=1
    )
    failing = CredentialChain((not_hers,), (two.acme.identity.history,)).encode()
    for chains in ((), (two.chain(two.acme), failing), (two.chain(two.globex),)):
        error = refused(rotated.trust, rotated.backup, chains)
        assert error.reason is ChannelFailure.PEER_INVALID
        assert "older than the stored copy" in str(error)
    assert stored(rotated.node, rotated.change_2) == rotated.change_2.history
    assert set(restart(rotated.node).vouchers.of(alice)) == {two.globex.identifier}


def test_globexs_revocation_judges_a_full_history_holding_its_vouchers_change(
    rotated: Rotated,
) -> None:
    """Gap 8: desk verified her globex chain with her change 2 (from globex's checkpoint:
    globex vouched under change 2), then globex revoked her identity. Her full history 0..2
    (her current keys, stolen say) shown with an acme chain only holds change 2: globex's word
    judges it, and it is refused as revoked (as is her checkpointed history, by every
    voucher); nothing is replaced nor forgotten."""
    two = rotated.two
    alice = two.alice.identifier
    verify_peer(rotated.trust, rotated.checkpointed, (two.chain(two.globex),), NOW)
    trust = rotated.revoke().channel_trust(AnyAuthenticatedIdentity())
    for claim in (rotated.full, rotated.checkpointed):
        error = refused(trust, claim, (two.chain(two.acme),))
        assert error.reason is ChannelFailure.REVOKED
        assert f"revoked by {two.globex.identifier}" in str(error)
    assert stored(rotated.node, rotated.change_2) == rotated.change_2.history
    assert two.globex.identifier in restart(rotated.node).vouchers.of(alice)


def test_a_stale_backup_sheds_no_revocation_of_an_authority_that_vouched_under_change_0(
    rotated: Rotated,
) -> None:
    """Gap 9: as gap 4 (globex vouched for her with her full history), and globex revoked her:
    the stale backup with an acme chain is refused (by the copy, or the revocation), and after
    the copy, her full history too."""
    two = rotated.two
    globex = (two.chain(two.globex),)
    verify_peer(rotated.trust, rotated.checkpointed, globex, NOW)
    verify_peer(rotated.trust, rotated.full, globex, NOW)
    trust = rotated.revoke().channel_trust(AnyAuthenticatedIdentity())
    backup = refused(trust, rotated.backup, (two.chain(two.acme),))
    assert backup.reason is ChannelFailure.PEER_INVALID
    assert "older than the stored copy" in str(backup)
    full = refused(trust, rotated.full, (two.chain(two.acme),))
    assert full.reason is ChannelFailure.REVOKED
