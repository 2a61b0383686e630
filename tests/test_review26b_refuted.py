"""Review 26b, refuted 1: the authority that made up a change can keep its word on the member.

Review 23a, checkpoints 3 made a stored copy shown made up refuse nothing, and made the node
forget the vouchers of the authorities whose held feed names a change of it
(`Vouchers.refuted`). `VerifiedFeed.attests` reads only the NEWEST supersession naming that
change's index, so globex, once desk stored its made-up change 1 of acme's alice and vouched for
her with it, publishes a second supersession of her naming another hash at that index. When the
real alice shows her history, the made-up copy is replaced, but globex's feed no longer 'names'
the made-up change: its voucher stays, and its later supersession (naming a change 1 no history
of hers holds) refuses her real history at desk: one authority still cuts desk off from
another's member, what review 23a, checkpoints 3 fixed. Fixed: `Vouchers.refuted` asks
`VerifiedFeed.ever_named`, any supersession the feed holds.

Refuted 2: that forgetting was an event told only to the `refuted` hooks of the process that
replaced the copy, after its commit: a replacement by another process (`troth identity import`
by an operator) or a crash before the hook left globex's voucher for good. Fixed: the made-up
changes are recorded in the replacing transaction (`refuted_changes`), and every reload and
maintenance round forgets the rows of the authorities whose held feed names one
(`Vouchers.forget_refuted`), and `Vouchers.vouch` adds none.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.support.channels import T
from tests.support.feeds import pages
from tests.test_review23a_lockout import Desk, desk  # noqa: F401  (the fixture)
from tests.test_trust_scope import NOW
from troth.channel import AnyAuthenticatedIdentity, verify_peer
from troth.channel.verification import HandshakeClaim
from troth.credentials import RevocationEntry, RevocationKind, Supersession
from troth.errors import ChannelError, ChannelFailure
from troth.identity import attest_purpose_key, rotate_identity
from troth.node import open_node
from troth.node.runtime import NodeRuntime
from troth.node.trust import NodeTrust
from troth.vault import KeyPurpose


def test_a_second_supersession_does_not_keep_the_liars_word(desk: Desk) -> None:  # noqa: F811
    two = desk.two
    alice = two.alice.identifier
    globex = two.globex.identifier
    assert verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW).identifier == alice
    # globex's feed: entry 0 named its made-up change 1 (the checkpoint desk stored); entry 1
    # names another change 1 of hers, so the newest naming index 1 is not the made-up one
    entries = [
        RevocationEntry(
            seq,
            RevocationKind.SUPERSEDED,
            alice.digest,
            globex,
            T,
            "",
            Supersession(2, named),
        )
        for seq, named in enumerate((desk.forged.current_change_hash, os.urandom(32)))
    ]
    (page,) = pages(two.globex, entries, now=T, per_page=1, start=1)
    desk.node.wallet.update_feed(page, authority=globex, now=NOW)
    desk.node.identities.refuted_hooks.clear()  # desk restarted: one NodeTrust, the feed new
    node_trust = NodeTrust(desk.node, None)
    node_trust.reload(NOW)
    trust = node_trust.channel_trust(AnyAuthenticatedIdentity())
    assert set(node_trust.vouchers.of(alice)) == {globex}
    peer = verify_peer(trust, desk.alice(), (two.chain(two.acme),), NOW)
    assert peer.identifier == alice
    assert set(node_trust.vouchers.of(alice)) == {two.acme.identifier}


def test_a_refutation_in_another_process_forgets_the_liars_word(desk: Desk) -> None:  # noqa: F811
    """Refuted 2: the vouchers are forgotten only by the `refuted` hook of the process that
    replaces the made-up copy, after its commit. `troth identity import` of alice's history
    (another process opening desk, no NodeTrust: the operator mending her lockout) replaces it,
    and no later observation can show it made up again (the copy is hers now): globex's row
    stays for good, its supersession naming the made-up change refusing her real history. (A
    crash between the commit and the hook leaves the same.)

    Was a strict xfail until the made-up changes were recorded with the replacement, in its
    transaction (`refuted_changes`, troth.identity.known), and every reload forgets the rows of
    the authorities whose held feed names one (`Vouchers.forget_refuted`)."""
    two = desk.two
    alice = two.alice.identifier
    assert verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW).identifier == alice
    with open_node("desk") as other:  # `troth identity import alice.history --node desk`
        other.identities.import_history(two.alice.party.identity.history, now=NOW)
    desk.node.identities.refuted_hooks.clear()  # desk restarted
    node_trust = NodeTrust(desk.node, None)
    node_trust.reload(NOW)
    trust = node_trust.channel_trust(AnyAuthenticatedIdentity())
    peer = verify_peer(trust, desk.alice(), (two.chain(two.acme),), NOW)
    assert peer.identifier == alice
    assert set(node_trust.vouchers.of(alice)) == {two.acme.identifier}


def test_a_crash_before_the_refuted_hook_forgets_the_liars_word(desk: Desk) -> None:  # noqa: F811
    """Refuted 2, a crash: desk replaces globex's made-up copy itself (alice connects), but its
    `refuted` hooks never run (as if it crashed right after the commit): once restarted, desk
    holds no word of globex on her, and her real history is admitted (globex's supersession
    naming its made-up change 1 would refuse it as having fewer changes)."""
    two = desk.two
    alice = two.alice.identifier
    assert verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW).identifier == alice
    desk.node.identities.refuted_hooks.clear()  # the crash: nothing runs after the commit
    desk.node.identities.import_history(two.alice.party.identity.history, now=NOW)
    node_trust = NodeTrust(desk.node, None)  # desk restarted
    node_trust.reload(NOW)
    assert set(node_trust.vouchers.of(alice)) == set()
    trust = node_trust.channel_trust(AnyAuthenticatedIdentity())
    peer = verify_peer(trust, desk.alice(), (two.chain(two.acme),), NOW)
    assert peer.identifier == alice
    assert set(node_trust.vouchers.of(alice)) == {two.acme.identifier}
    with pytest.raises(ChannelError) as refused:  # the made-up copy: a fork of hers now
        verify_peer(trust, desk.as_alice, (desk.globex_chain,), NOW)
    assert refused.value.reason is ChannelFailure.PEER_INVALID
    assert "pre-rotation" in str(refused.value)


def test_a_running_node_forgets_the_liars_word_at_its_next_reload(desk: Desk) -> None:  # noqa: F811
    """Refuted 2, a running node: another process replaces the made-up copy; desk's running
    trust (its hook never told) forgets globex's word on alice at its next reload, without a
    restart."""
    two = desk.two
    alice = two.alice.identifier
    node_trust = NodeTrust(desk.node, None)
    node_trust.reload(NOW)
    trust = node_trust.channel_trust(AnyAuthenticatedIdentity())
    assert verify_peer(trust, desk.as_alice, (desk.globex_chain,), NOW).identifier == alice
    assert two.globex.identifier in node_trust.vouchers.of(alice)
    with open_node("desk") as other:  # `troth identity import alice.history --node desk`
        other.identities.import_history(two.alice.party.identity.history, now=NOW)
    node_trust.reload(NOW)
    assert two.globex.identifier not in node_trust.vouchers.of(alice)
    peer = verify_peer(trust, desk.alice(), (two.chain(two.acme),), NOW)
    assert peer.identifier == alice


def test_the_liars_chain_shown_later_leaves_no_word_behind(desk: Desk) -> None:  # noqa: F811
    """Refuted 2, later: once globex's made-up copy of alice is replaced, alice rotates, globex
    publishes a supersession naming her real change 1 (so its chain verifies for her) and a
    globex chain is shown with her real history. Globex judges her at that handshake (the
    chain shown), but leaves no voucher (`Vouchers.vouch` adds no row of an authority that
    ever named a made-up change of her): a later entry does not take its made-up word back
    (refuted 1), and a row would let globex judge her for good, when she shows her acme chain
    alone too."""
    two = desk.two
    alice = two.alice.identifier
    globex = two.globex.identifier
    assert verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW).identifier == alice
    assert verify_peer(desk.trust, desk.alice(), (two.chain(two.acme),), NOW).identifier == alice
    old, vault = two.alice.party, two.vault
    primary, rotated, _ = rotate_identity(
        vault, old.identity, old.primary, old.next_primary, now=T, valid_for=10**8
    )
    channel_key = vault.public_key(two.alice.channel_key)
    attestation = attest_purpose_key(
        vault, primary, rotated, KeyPurpose.SECURE_CHANNEL, channel_key, now=T, expires_at=T + 3600
    )
    as_rotated = HandshakeClaim(rotated.history, attestation, channel_key)
    named = ((desk.forged.current_change_hash, 2), (rotated.current_change_hash, 2))
    entries = [
        RevocationEntry(
            seq, RevocationKind.SUPERSEDED, alice.digest, globex, T, "", Supersession(n, h)
        )
        for seq, (h, n) in enumerate(named)
    ]
    (page,) = pages(two.globex, entries, now=T, per_page=1, start=1)
    desk.node.wallet.update_feed(page, authority=globex, now=NOW)
    node_trust = NodeTrust(desk.node, None)
    node_trust.reload(NOW)
    trust = node_trust.channel_trust(AnyAuthenticatedIdentity())
    peer = verify_peer(trust, as_rotated, (two.chain(two.acme), desk.globex_chain), NOW)
    assert {c.authority for c in peer.credentials} == {two.acme.identifier, globex}
    assert set(node_trust.vouchers.of(alice)) == {two.acme.identifier}
    restarted = NodeTrust(desk.node, None)
    restarted.reload(NOW)
    assert set(restarted.vouchers.of(alice)) == {two.acme.identifier}


def test_a_running_node_forgets_the_liars_word_in_its_maintenance(desk: Desk) -> None:  # noqa: F811
    """Refuted 2, a running node that is not reloaded: another process replaces the made-up
    copy; the node's next maintenance round forgets globex's word on alice (it reads the
    recorded made-up changes), and her acme chain admits her there."""
    two = desk.two
    alice = two.alice.identifier

    async def run() -> None:
        runtime = NodeRuntime(desk.node)
        try:
            runtime.trust.reload(NOW)
            trust = runtime.trust.channel_trust(AnyAuthenticatedIdentity())
            assert verify_peer(trust, desk.as_alice, (desk.globex_chain,), NOW).identifier == alice
            assert two.globex.identifier in runtime.trust.vouchers.of(alice)
            with open_node("desk") as other:  # `troth identity import alice.history`
                other.identities.import_history(two.alice.party.identity.history, now=NOW)
            await runtime.maintain()
            assert set(runtime.trust.vouchers.of(alice)) == set()
            peer = verify_peer(trust, desk.alice(), (two.chain(two.acme),), NOW)
            assert peer.identifier == alice
        finally:
            await runtime.stop()

    asyncio.run(run())
