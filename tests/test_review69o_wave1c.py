"""Review 69o (area: wave1c): the trace outbox at rotation (69a), the channel identity's
renewal and the broker's due revocations (69j).

1. (laundering, high) A `--compromised` rotation signed again with the new key every queued
   row of the key current before it (review 69a, outbox 2), though that key is the one the
   thief's copy holds: a thief with the copied key and write access to node.db planted a row
   signed by it (any content, dated before the rotation), and the owner's own recovery signed
   it with the new key, no copy holds, and dated it anew: the thief's record entered the log
   as the agent's, past the compromise. Now a compromised rotation signs none of them: it sets
   each aside in its transaction (ATTESTATION_STALE, `signed by a key a compromised rotation
   retired`), kept in `trace_outbox_refused`, never sent (deny when in doubt: the honest
   records queued just before it are not delivered either). troth.trace.outbox_rotation;
   `IdentityService.rotated_hooks` now get `compromised`.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.test_review69a_outbox import _keys, _node_agent
from tests.test_trace_service import NOW, F, tool
from troth.trace.signing import sign_record


def test_a_compromised_rotation_signs_no_row_of_the_compromised_key(tmp_path: Path) -> None:
    """Wave1c 1: the thief's row planted under the compromised key, and the rows queued
    before, are not signed by the new key: set aside, kept (their ids), none sent."""
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        stolen = node.identities.signer("agent", now=NOW + 5)  # what the thief's copy signs
        planted = sign_record(
            stolen, tool("wire_transfer"), seq=0, prev=None, time=NOW + 5, random=os.urandom
        )
        with outbox.store.transaction():  # what a writer of node.db can write with SQL
            outbox.store.insert(agent, planted, made=NOW + 5, chain=None, stale=False)
        queued = [row.record for row in outbox.store.first(agent, 10)]
        node.identities.rotate("agent", now=NOW + 10, compromised=True)
        assert _keys(outbox, node, NOW + 20) == []
        assert outbox.next_batch(NOW + 20) is None
        refused = outbox.store.refused(agent=agent, limit=10)
        assert sorted(r.record for r in refused) == sorted(queued)
        assert {r.reason for r in refused} == {F.ATTESTATION_STALE.value}
    finally:
        outbox.close()
        node.close()
