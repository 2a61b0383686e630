"""Review 22f (traces): the trace outbox's per-member bounds read counters
(`trace_outbox_members`, 9e5f3c8) that troth.trace.outbox_store moves in Python next to each
change of `trace_outbox_sources`. The version before it (1b9fd09, one release back) keeps
`trace_outbox_sources` but knows nothing of the counters: run on the same node database —
an operator rolling a release back, then forward again — it delivers (or discards) records
and deletes their `trace_outbox_sources` rows, leaving the counters as they were. The
counters are made from the rows only when the table is made, so they never come down again:
the members whose records were queued at the roll-back are refused their share for good
(OVER_LIMIT with nothing in the outbox), and once those reach TRACE_OUTBOX_MEMBERS_PERCENT,
every member's audited operation is refused — a gate's every decision, a broker's every
lease — until someone edits the database by hand.

The test asserts the correct behaviour and was a strict xfail until an outbox opened for
sending made the counters again from the rows (`OutboxStore.recount`, one `GROUP BY` when the
process opens it): whichever version changed the rows before, they count as they are.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.test_trace_outbox import Outboxes
from tests.test_trace_service import NOW, Service, service, tool  # noqa: F401 - a fixture
from troth.errors import TraceError
from troth.identity import Identifier

_MEMBERS = [Identifier(bytes([n]) * 32) for n in range(1, 5)]


def _previous_version_delivers(path: Path) -> None:
    """What 1b9fd09's `OutboxStore.delete` runs for each record the service took: the row and
    its `trace_outbox_sources` row go, and the agent's counters come down."""
    db = sqlite3.connect(path)
    with db:
        for pos, agent, digest in db.execute(
            "SELECT pos, agent, hash FROM trace_outbox"
        ).fetchall():
            size, record = db.execute(
                "DELETE FROM trace_outbox WHERE pos = ? AND agent = ? AND hash = ? "
                "RETURNING size, record",
                (pos, agent, digest),
            ).fetchone()
            db.execute(
                "UPDATE trace_outbox_agents SET queued = queued + ?, "
                "queued_bytes = queued_bytes + ? WHERE agent = ?",
                (-1, -size, agent),
            )
            db.execute("DELETE FROM trace_outbox_sources WHERE record = ?", (record,))
    db.close()


def test_members_are_not_refused_after_the_previous_version_delivered_their_records(
    tmp_path: Path,
    service: Service,  # noqa: F811 - the fixture imported above
) -> None:
    """A bound of 8 records (a member's share: 2, the members': 7). Four members fill the
    members' share while the trace service is out of reach; the node is rolled back one
    release, which delivers them all; rolled forward, the outbox is empty: every member
    records again, each up to its share."""
    outboxes = Outboxes(tmp_path / "node.db", service.world.support, max_records=8)
    outbox = outboxes.open()
    for member in _MEMBERS:
        for _ in range(2 if member is not _MEMBERS[-1] else 1):
            outbox.add(tool("refund"), now=NOW, source=member)
    with pytest.raises(TraceError, match="TRACE_OUTBOX_MEMBERS_PERCENT"):
        outbox.add(tool("refund"), now=NOW, source=_MEMBERS[-1])
    outboxes.crash()
    _previous_version_delivers(tmp_path / "node.db")
    again = outboxes.open()
    assert again.pending() == 0
    for member in _MEMBERS[:3]:
        for _ in range(2):
            again.add(tool("refund"), now=NOW, source=member)
    outboxes.close()
