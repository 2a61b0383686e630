"""Review 71o (area: wave2e): attacks tried on the outbox's re-sign tickets
(troth.trace.outbox_tickets) that did not work, kept as passing tests. Each: the agent's two
rows queued, a rotation that signs one again and lists the other in its ticket (tests of
review 71g's `Rotated`), then a thief holding the retired key and node.db."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.traces import Held
from tests.test_review71g_outbox2 import Rotated
from tests.test_review71o_wave2e import forged_by_thief, planted
from tests.test_trace_service import NOW, F
from troth.crypto import sha256
from troth.trace.outbox_tickets import write_ticket

_STALE: Final = F.ATTESTATION_STALE.value
_TICKET: Final = "SELECT agent, hashes, signature, attestation FROM trace_outbox_resign"


def _restore(rotated: Rotated, row: tuple[Any, ...]) -> None:
    with rotated.db.transaction():
        rotated.db.execute("INSERT OR REPLACE INTO trace_outbox_resign VALUES (?, ?, ?, ?)", row)


def test_a_ticket_of_another_agent_of_the_node_lists_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: the thief's own identity on the node (its key current) signs a ticket under
    the agent's digest listing the thief's record's envelope: the key is of no change of the
    agent's history, so the ticket lists nothing; the thief's row (and the listed honest
    one) are set aside. (The agent's digest is a 32-byte identifier: the signed bytes agent
    || hashes split one way only.)"""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        forged = forged_by_thief(rotated)
        planted(rotated, forged)
        other = Held(now=NOW - 1000)
        with rotated.db.transaction():
            write_ticket(
                rotated.db,
                rotated.agent.identifier.digest,
                other.signer(NOW - 40),
                [sha256(forged.envelope)],
            )
        assert rotated.sent() == [(rotated.ids[0], True)]
        assert sorted(rotated.refused()) == sorted(
            [(rotated.ids[1], _STALE), (forged.record.id, _STALE)]
        )
    finally:
        rotated.close()


@pytest.mark.parametrize("compromised", [False, True])
def test_an_earlier_rotations_ticket_put_back_after_a_later_one_lists_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compromised: bool
) -> None:
    """Tried: keep the first rotation's ticket (signed by the key a second rotation retires,
    routine or `--compromised`) and put it back after the second: its key is no longer of
    the current change, so it lists nothing and the row it listed is set aside (the second
    rotation's own ticket, carrying it, replaced: a writer of node.db can delete rows
    anyway). A compromised second rotation sets the rows aside as well, the ticket deleted."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        kept = rotated.db.fetch_one(_TICKET)
        assert kept is not None
        rotated.rotate(NOW - 40, compromised=compromised)
        _restore(rotated, tuple(kept))
        sent = rotated.sent()
        assert (rotated.ids[1], True) not in sent
        assert (rotated.ids[1], _STALE) in rotated.refused()
    finally:
        rotated.close()
