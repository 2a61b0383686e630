"""Review 70b (area: outbox): attacks on the outbox at a rotation (69a, 69o) that did not work.

- Another process (a second opening of the node) queues a record with a signer it fetched
  before the rotation, after the rotation committed: its key was deleted from the software
  vault in the rotation's transaction, so the signer is asked again and the record is signed
  by the new key (none signed by the retired key lands after the hook ran).
- A rotation that fails after the outbox's hook signed the rows again (a later hook raises)
  rolls them back with it; a signer asked afresh then is the old key's, and two rotations in a
  row afterwards leave every row, the one queued meanwhile too, signed by the newest key.
- A row of another identity (its envelope and attestation valid, the agent's column naming
  this agent) is neither signed again by the agent's rotation nor blocks it.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.traces import Held
from tests.test_review69a_outbox import (
    _keys,
    _node_agent,
    _sent_under,
    rotation_killed_before_commit,
)
from tests.test_trace_service import NOW, tool
from troth.node import open_node
from troth.trace.outbox import TraceOutbox
from troth.trace.signing import sign_record


def test_a_record_queued_by_another_process_after_a_rotation_is_the_new_keys(
    tmp_path: Path,
) -> None:
    node, outbox = _node_agent(tmp_path)
    other = open_node("n", home=tmp_path)
    late = TraceOutbox(
        other.db, outbox.identifier, lambda now: other.identities.signer("agent", now=now)
    )
    try:
        late.add(tool("lookup"), now=NOW + 5)  # its signer fetched before the rotation
        node.identities.rotate("agent", now=NOW + 10)
        late.add(tool("lookup", n=2), now=NOW + 11)
        assert _keys(outbox, node, NOW + 20) == [True] * 4
    finally:
        late.close()
        other.close()
        outbox.close()
        node.close()


def test_a_rotation_rolled_back_then_two_rotations_leave_the_newest_keys_rows(
    tmp_path: Path,
) -> None:
    node, outbox = _node_agent(tmp_path)
    try:
        rotation_killed_before_commit(node, NOW + 10)
        fresh = TraceOutbox(
            node.db, outbox.identifier, lambda now: node.identities.signer("agent", now=now)
        )
        fresh.add(tool("refund", n=3), now=NOW + 12)
        assert _keys(outbox, node, NOW + 20) == [True] * 3
        node.identities.rotate("agent", now=NOW + 30)
        node.identities.rotate("agent", now=NOW + 50)
        assert node.identities.get("agent", now=NOW + 60).identity.change_count == 3
        assert [current for _, current in _sent_under(fresh, node, NOW + 60)] == [True] * 3
        fresh.close()
    finally:
        outbox.close()
        node.close()


def test_another_identitys_row_under_the_agent_is_not_signed_by_its_rotation(
    tmp_path: Path,
) -> None:
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        stranger = Held(now=NOW - 1000).signer(NOW - 1000)
        forged = sign_record(
            stranger, tool("wire_transfer"), seq=0, prev=None, time=NOW + 5, random=os.urandom
        )
        with outbox.store.transaction():  # what a writer of node.db can write with SQL
            outbox.store.insert(agent, forged, made=NOW + 5, chain=None, stale=False)
        node.identities.rotate("agent", now=NOW + 10)
        rows = outbox.store.first(agent, 10)
        assert [row.envelope for row in rows][-1] == forged.envelope  # as it was
        identity = node.identities.get("agent", now=NOW + 20).identity
        assert identity.change_count == 2
    finally:
        outbox.close()
        node.close()
