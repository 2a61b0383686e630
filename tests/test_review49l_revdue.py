"""Review 49l, revdue 1 (left): a revocation an authority on this machine takes itself
(`troth revoke credential`, `troth revoke identity`, `troth authority members remove`;
`Authority.revoke`, `Authority.revoke_identity`) tells the daemons running the other nodes here
(`tell_local_nodes`) only after the authority's commit, and marks nothing before it: a process
killed between the two leaves the other nodes holding their copies of the feed as they were,
admitting what was revoked until their next maintenance round. Review 48m's mark
(`feed_syncs_due`, troth.node.syncdue) covers the revoker's own node's copy in a link
revocation, not the other nodes' copies; and a running daemon reads its marks only at its feed
refresh, so marking the other nodes' stores alone would not close this. Closed by review 50b
(troth.node.localdue marks them before the commit; troth.node.duewatch has a running node read
its marks every second: tests/test_review50b_revdue.py runs it against a real daemon)."""

from __future__ import annotations

import pytest

import troth
import troth.node.traces


@pytest.mark.parametrize("what", ["credential", "identity"])
def test_a_revocation_killed_before_the_other_nodes_are_told_leaves_them_due(
    what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Authority.revoke` killed (KeyboardInterrupt standing for the kill) once the authority
    took the entry and before the other nodes running here were told: the other node trusting
    the authority should hold a mark saying its copy of the feed is due a sync."""

    def killed(*_: object) -> None:
        raise KeyboardInterrupt

    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        member = agents.enroll(acme.ticket({"orders.access": "read"}))
        monkeypatch.setattr(troth.node.traces, "tell_local_nodes", killed)
        with pytest.raises(KeyboardInterrupt):
            if what == "credential":
                acme.revoke(member, reason="left")
            else:
                acme.revoke_identity(agents.identity, reason="left")
        assert hub._stored.authority().store.revocation_tip()[0] == 1  # taken
        due = dict(agents._stored.wallet.store.syncs_due())
        assert acme.identifier.digest in due
