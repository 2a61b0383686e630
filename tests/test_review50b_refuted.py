"""Review 50b, attacks on the marks of revdue 1 that the code refutes."""

from __future__ import annotations

import troth
from tests.support.revocation import delegated_to_sub
from tests.test_api_network import LOOPBACK, served_in_a_thread
from tests.test_review50b_revdue import _marks


def test_a_member_revoking_over_the_network_marks_no_node_here() -> None:
    """A mark is no lever for a member: a link revoked with the authority reached over the
    network (its node's `revoke` method, taken from any authenticated peer) writes no mark at
    the other nodes here (only a process with an authority's store open on this machine marks
    them); the revoker's own node's mark (review 48m) is cleared once its copy synced."""
    with troth.Node.open("hub") as hub:
        acme = hub.create_authority()
        with served_in_a_thread(hub, listen=LOOPBACK) as serving:
            with troth.Node.open("agents") as agents, troth.Node.open("sub") as sub:
                chain = delegated_to_sub(acme, agents, sub, at=serving.address)
            with troth.Node.open("agents") as agents:
                assert agents.revoke(chain, by=agents.identity, reason="done") == 0
            assert _marks("sub", acme.identifier) == 0
            assert _marks("agents", acme.identifier) == 0
