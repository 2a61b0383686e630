"""Review 29a, refuted: a change recorded refuted (a copy from a checkpoint an admitted peer's
full history replaced as not bound by it: review 27h, gap) that a full history this node
verifies later holds is a real change of the identity, and the authority that named it spoke
the truth.

Refuted 1: desk saw alice only from globex's checkpoint (her change 2, her globex chain: globex
vouched under change 2). A thief with her change 0 (a stale backup) and an acme chain is
admitted over that copy (the documented cost of review 27h: "What this costs"), which records
her real change 2 refuted, and globex's voucher is forgotten. Then alice shows her full history
0..2 with her globex chain: it extends the thief's change 0 and holds change 2, so globex named
a change of hers. Before the fix its voucher was never taken again (`vouch` refused the row of
an authority whose feed names a refuted change, for good, in every process and after a
restart), so globex's later revocation of her did not judge her full history shown with an
acme chain only: one replayed stale backup cost an honest authority its word on its member
at this node for good.

Refuted 2: her full history ending at the very change a stored copy from a checkpoint ends at
left the copy unlinked (nothing was written: the copy "was" the stored copy), so that copy
bound only histories an attester had standing over, though this node had checked its link.

Both were strict xfails until the fix (troth.identity.known: a full history ending at a copy
from a checkpoint's last change is stored over it, linked, `_Seen.LINKS`; a history stored
linked drops the refuted records of the changes it holds, `IdentityStore.drop_refuted`;
`Vouchers.vouch(history=)` does not refuse an authority for a refuted change the full history
shown holds, and `forget_refuted` replaces its memory with the store's records), shown failing
first (refuted 1: globex not vouched again and its revocation unheard; refuted 2: the stale
backup admitted).
"""

from __future__ import annotations

from tests.test_review27h_gap import Rotated, refused, restart, rotated, stored  # noqa: F401
from tests.test_trust_scope import NOW
from troth.channel import AnyAuthenticatedIdentity, verify_peer
from troth.errors import ChannelFailure
from troth.node.trust import NodeTrust


def test_a_refuted_change_her_full_history_holds_lets_its_authority_vouch_again(
    rotated: Rotated,  # noqa: F811
) -> None:
    """Refuted 1: the stale backup replaced globex's copy of her change 2 (recorded refuted);
    her full history 0..2 shown with her globex chain lets globex vouch again (a restart too),
    so its revocation of her judges her full history shown with an acme chain only."""
    two = rotated.two
    alice = two.alice.identifier
    globex = (two.chain(two.globex),)
    acme = (two.chain(two.acme),)
    verify_peer(rotated.trust, rotated.checkpointed, globex, NOW)
    # the documented cost: the stale backup with an acme chain is admitted over globex's copy
    assert verify_peer(rotated.trust, rotated.backup, acme, NOW).identity.first_index == 0
    assert two.globex.identifier not in rotated.trust.vouched(alice)
    # alice shows her full history (holding change 2) with her globex chain: stored, and
    # globex vouches for her again (at this handshake, and after a restart)
    peer = verify_peer(rotated.trust, rotated.full, globex, NOW)
    assert stored(rotated.node, peer.identity) == peer.identity.history
    assert two.globex.identifier in rotated.trust.vouched(alice)
    again = restart(rotated.node)
    assert two.globex.identifier in again.vouchers.of(alice)
    # so globex's revocation of her judges her full history whatever chain she shows
    trust = rotated.revoke().channel_trust(AnyAuthenticatedIdentity())
    error = refused(trust, rotated.full, acme)
    assert error.reason is ChannelFailure.REVOKED
    assert f"revoked by {two.globex.identifier}" in str(error)


def test_her_full_history_equal_to_a_checkpoints_copy_links_it(
    rotated: Rotated,  # noqa: F811
) -> None:
    """Refuted 2: desk stored her change 2 from globex's checkpoint (her globex chain: globex
    vouched under change 2), then verified her full history 0..2, ending at that very change,
    with her acme chain: the copy's link to her identifier was checked here (as when a copy
    extends her full history: review 27h, gap 5). A thief with her change 0 and an acme chain
    is refused, and globex's word on her stays."""
    two = rotated.two
    alice = two.alice.identifier
    acme = (two.chain(two.acme),)
    verify_peer(rotated.trust, rotated.checkpointed, (two.chain(two.globex),), NOW)
    assert verify_peer(rotated.trust, rotated.full, acme, NOW).identity.first_index == 0
    error = refused(rotated.trust, rotated.backup, acme)
    assert error.reason is ChannelFailure.PEER_INVALID
    assert "older than the stored copy" in str(error)
    assert two.globex.identifier in restart(rotated.node).vouchers.of(alice)
    trust = restart(rotated.node).channel_trust(AnyAuthenticatedIdentity())
    assert "older than the stored copy" in str(refused(trust, rotated.backup, acme))


def test_another_process_keeps_the_voucher_once_her_history_shows_the_change_real(
    rotated: Rotated,  # noqa: F811
) -> None:
    """Refuted 1, two processes: another process of desk read the refutation of her change 2
    (its reload after the stale backup's replacement); once her full history is stored here
    and globex vouches again, that process's next reload (or maintenance round) reads the
    records again and does not forget globex's voucher (its memory of the refutation is the
    store's, not kept beside it)."""
    two = rotated.two
    alice = two.alice.identifier
    globex = (two.chain(two.globex),)
    verify_peer(rotated.trust, rotated.checkpointed, globex, NOW)
    verify_peer(rotated.trust, rotated.backup, (two.chain(two.acme),), NOW)
    other = NodeTrust(rotated.node, None)  # another process: its own hooks, not this one's
    rotated.node.identities.refuted_hooks.remove(other.vouchers.refuted)
    other.reload(NOW)
    verify_peer(rotated.trust, rotated.full, globex, NOW)
    other.reload(NOW)
    assert two.globex.identifier in other.vouchers.of(alice)
    assert two.globex.identifier in restart(rotated.node).vouchers.of(alice)
