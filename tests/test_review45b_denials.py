"""Review 45b, the broker's refusal records.

4. An agent with no current credential may call the served broker's `revoke` (no credential is
   needed to give a lease back): each refusal (NO_SUCH_LEASE for a lease id of its making) was
   audited, so one caller sending requests wrote a trace record each, for as long as it kept
   sending. Refusal records are now bounded per caller and per account (the member a chain
   names; all uncredentialed callers share one) within a window (`DENIALS_PER_CALLER`,
   `DENIALS_PER_ACCOUNT`, `DENIAL_WINDOW` in troth.secrets.denials); those not recorded are
   counted in one summary record per account once its window ends. The refusal is answered as
   before.

The test was a strict xfail until the bound.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from troth.secrets.audit import UNCREDENTIALED, AuditEvent, AuditKind
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.lease import LeaseId
from troth.secrets.wire import LeaseArgs

CALLS = 10_000


class _Sink:
    """An audit sink that keeps every record (the node's trace outbox stand-in)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def append(self, event: AuditEvent) -> None:
        self.events.append(event)


def test_one_callers_refused_revocations_write_a_bounded_number_of_records(
    tmp_path: Path,
) -> None:
    world = make_world(NOW)
    sink = _Sink()
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, audit=sink)
    endpoint = BrokerEndpoint(broker)
    mallory = BrokerCaller(world.agent_a.identifier, refused="no current credential")
    request = LeaseArgs(LeaseId.new(NOW)).to_wire()
    for _ in range(CALLS):
        answer = endpoint.handle("revoke", request, mallory, NOW)
        assert answer["refused"] == "NO_SUCH_LEASE"  # still answered
    denials = [e for e in sink.events if e.kind is AuditKind.DENY]
    assert 1 <= len(denials) <= 100, len(denials)
    # another caller (another identity, uncredentialed too) is still recorded
    other = BrokerCaller(world.agent_b.identifier, refused="no current credential")
    endpoint.handle("revoke", request, other, NOW)
    last = sink.events[-1]
    assert last.kind is AuditKind.DENY
    assert last.identity == world.agent_b.identifier
    assert last.member == UNCREDENTIALED
    # the ones not recorded are counted once the window ended (the sweep writes it)
    before = len(sink.events)
    broker.sweep(NOW + 3600)
    summaries = [e for e in sink.events[before:] if e.kind is AuditKind.DENY]
    assert len(summaries) == 1
    assert str(CALLS - len(denials)) in summaries[0].detail
