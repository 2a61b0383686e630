"""Review 72e (area: tickets): attacks tried on the outbox's re-sign tickets
(troth.trace.outbox_tickets, troth.trace.outbox_rotation) that did not work, kept as passing
tests: a rotation killed between its ticket and its commit, a thief holding a retired key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.killed import killed_after
from tests.test_review69a_outbox import _keys, _node_agent
from tests.test_review71g_outbox2 import _TICKETS, Rotated
from tests.test_review71o_wave2e import forged_by_thief, planted
from tests.test_review72e_tickets import under_column
from tests.test_trace_service import NOW, F, tool
from troth import limits
from troth.crypto import sha256
from troth.faults import CRASH_EXIT_CODE
from troth.node import open_node
from troth.trace import outbox_rotation
from troth.trace.outbox import TraceOutbox
from troth.trace.outbox_tickets import write_ticket
from troth.trace.signing import sign_record

_STALE = F.ATTESTATION_STALE.value


def test_a_rotation_killed_after_writing_its_ticket_leaves_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: kill a node's rotation (two rows, the bound at 1) just after its ticket is
    written, before the rotation's commit: the ticket is in the rotation's transaction, so
    neither is left (the rows as they were, no ticket table); the rotation run again sends
    both under the new key, none set aside."""
    monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", 1, raising=False)
    node, outbox = _node_agent(tmp_path)
    agent = outbox.identifier.digest
    before = [row.envelope for row in outbox.store.first(agent, 10)]
    outbox.close()
    node.close()

    def rotate() -> None:
        def killed(*args: object) -> None:
            write_ticket(*args)  # type: ignore[arg-type]
            os._exit(CRASH_EXIT_CODE)

        monkeypatch.setattr(outbox_rotation, "write_ticket", killed)  # the child's own
        open_node("n", home=tmp_path).identities.rotate("agent", now=NOW + 10)

    assert killed_after(0, rotate) == CRASH_EXIT_CODE
    node = open_node("n", home=tmp_path)
    outbox = TraceOutbox(
        node.db, outbox.identifier, lambda n: node.identities.signer("agent", now=n)
    )
    try:
        assert [row.envelope for row in outbox.store.first(agent, 10)] == before
        assert not node.db.run_rows(_TICKETS)
        node.identities.rotate("agent", now=NOW + 10)
        assert outbox.next_batch(NOW + 20) is not None
        assert _keys(outbox, node, NOW + 20) == [True, True]
        assert outbox.store.refused(agent=agent, limit=10) == []
    finally:
        outbox.close()
        node.close()


def test_a_record_of_a_key_retired_before_under_the_current_column_within_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (72e tickets 1 within the bound): the thief's record signed by K0, planted under
    K1's column, signed again in the rotation's transaction (K1 to K2, the bound at 10): it
    does not verify under K1, so it is neither signed again nor listed; its column set to
    K0's after the rotation, it is set aside."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        forged = forged_by_thief(rotated)
        planted(rotated, forged)
        under_column(rotated, forged, rotated.agent.signer(NOW - 50).attestation)
        monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", 10, raising=False)
        rotated.rotate(NOW - 40)
        under_column(rotated, forged, forged.attestation)
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        assert rotated.refused() == [(forged.record.id, _STALE)]
    finally:
        rotated.close()


def test_a_compromised_keys_ticket_left_by_a_rotation_with_none_queued_lists_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: every row delivered, a compromised rotation (K1 to K2) with none queued leaves
    the ticket K1 signed; the thief holding K1 plants its record signed by K1 (dated before
    the rotation) and writes the ticket anew, signed by K1, listing its envelope: K1 is not
    the current change's key, so the ticket lists nothing and the record is set aside (the
    outbox's signer asked after the rotation: before, while the vault still holds K1, its
    record is signed by K1, which the thief holds anyway)."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        assert rotated.sent() == [(i, True) for i in rotated.ids]
        stolen = rotated.agent.signer(NOW - 50)  # K1, the key the compromised rotation retires
        assert rotated.rotate(NOW - 40, compromised=True) == 0
        assert rotated.db.run_rows(_TICKETS)  # left, listing nothing
        rotated.outbox.close()  # a signer asked after the rotation (a node's vault deletes
        rotated.outbox = rotated.open(rotated.db)  # the retired key: the signer asked again)
        forged = sign_record(
            stolen, tool("wire_transfer"), seq=0, prev=None, time=NOW - 45, random=os.urandom
        )
        planted(rotated, forged)
        with rotated.db.transaction():
            write_ticket(
                rotated.db, rotated.agent.identifier.digest, stolen, [sha256(forged.envelope)]
            )
        assert rotated.sent() == []
        assert rotated.refused() == [(forged.record.id, _STALE)]
    finally:
        rotated.close()
