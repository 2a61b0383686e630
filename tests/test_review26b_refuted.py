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
"""

from __future__ import annotations

import os

import pytest

from tests.support.channels import T
from tests.support.feeds import pages
from tests.test_review23a_lockout import Desk, desk  # noqa: F401  (the fixture)
from tests.test_trust_scope import NOW
from troth.channel import AnyAuthenticatedIdentity, verify_peer
from troth.credentials import RevocationEntry, RevocationKind, Supersession
from troth.node import open_node
from troth.node.trust import NodeTrust


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


@pytest.mark.xfail(
    strict=True,
    reason="review 26b, refuted 2 (left): the refutation is an event told only to the hooks of "
    "the process that replaced the copy, after its commit; it must be recorded with the "
    "replacement, in its transaction (the liars' voucher rows deleted there from the stored "
    "feeds, or a refuted-copies row every process and a restart apply)",
)
def test_a_refutation_in_another_process_forgets_the_liars_word(desk: Desk) -> None:  # noqa: F811
    """Refuted 2: the vouchers are forgotten only by the `refuted` hook of the process that
    replaces the made-up copy, after its commit. `troth identity import` of alice's history
    (another process opening desk, no NodeTrust: the operator mending her lockout) replaces it,
    and no later observation can show it made up again (the copy is hers now): globex's row
    stays for good, its supersession naming the made-up change refusing her real history. (A
    crash between the commit and the hook leaves the same.)"""
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
