"""Review 31a, refuted 1 (a guard, passes): one member evicts a victim's refutation records.

`refuted_changes` is bounded (review 30a, refuted 1) and the oldest copies' rows go first, so
a member who has copies replaced again and again (its fresh delegates, each from a checkpoint
of its own) pushes out the records of any victim older than its flood: the eviction can be
aimed. What a record does: it keeps the word of the authority that named a refuted change out
of the node's judgment of that identity (`Vouchers`: that authority's voucher is not taken
again). Once it is gone that authority may vouch for her again, but only with a chain verified
for her identifier: it would have to be admitted as her, and its copy made up after a gap is
refused by her full history, stored linked when it replaced the copy. So globex, whose copy of
alice was replaced and its word forgotten, is still refused as alice after the victim's
records are evicted and desk restarted, and alice is still admitted with her acme chain.
"""

from __future__ import annotations

import os

import pytest

from tests.test_review23a_lockout import Desk, gap_desk  # noqa: F401  (the fixture)
from tests.test_review27h_gap import restart
from tests.test_trust_scope import NOW
from troth import limits
from troth.channel import AnyAuthenticatedIdentity, verify_peer
from troth.errors import ChannelError, ChannelFailure
from troth.storage import SqliteVoucherStore


def test_evicting_a_victims_refutation_does_not_let_the_liar_back(
    gap_desk: Desk,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    desk, two = gap_desk, gap_desk.two
    alice = two.alice.identifier
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)  # globex's copy stored
    verify_peer(desk.trust, desk.alice(), (two.chain(two.acme),), NOW)  # replaced, recorded
    records = SqliteVoucherStore(desk.node.db)
    assert any(identifier == alice.digest for identifier, _, _ in records.refuted())
    monkeypatch.setattr(limits, "MAX_REFUTED_CHANGES", 64, raising=False)
    store = desk.node.identities.store
    for _ in range(3):  # a member's flood of replaced copies, the newest last
        with store.transaction():
            store.add_refuted(os.urandom(32), [(5 + i, os.urandom(32)) for i in range(64)])
    assert not any(identifier == alice.digest for identifier, _, _ in records.refuted())
    trust = restart(desk.node).channel_trust(AnyAuthenticatedIdentity())
    with pytest.raises(ChannelError) as refused:
        verify_peer(trust, desk.as_alice, (desk.globex_chain,), NOW)
    assert refused.value.reason is ChannelFailure.PEER_INVALID
    assert "checkpointed history not attested" in str(refused.value)
    peer = verify_peer(trust, desk.alice(), (two.chain(two.acme),), NOW)
    assert [c.authority for c in peer.credentials] == [two.acme.identifier]
    assert two.globex.identifier not in restart(desk.node).vouchers.of(alice)
