"""Review 56j, the audit records a member's forwards write (found checking review 56b's
pattern, a stored record per request, over the broker's other records).

2. docs/secrets.md ("Issue rate") bounds what one member leaves in the database by its issue
   budget: its burst plus its rate over the retention in lease rows, "and three times that in
   audit records". A forward is not counted against any budget ("a forward's record is the use
   it audits"), yet each writes a `use` record (its method and path, up to the 2,048-character
   target) to the append-only audit log: one member holding one http-inject lease writes as
   many as the node serves it, bounded only by `MAX_FORWARDS_PER_AGENT` (4) at once and the
   upstream's latency, not by the issue budget the docs name. Forwards now spend budgets of
   their own (`ForwardBudget`, `limits.LEASE_FORWARD_*`), per member and in all, as issues do.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from tests.support.parties import Party
from tests.test_review30b_leases import INJECT
from troth.errors import SecretError
from troth.secrets import AllowListPolicy, Broker, HttpRequest
from troth.secrets.audit import AuditKind
from troth.secrets.issues import ForwardBudget


def test_a_members_forwards_write_records_within_its_budget(tmp_path: Path) -> None:
    """2: one member (a forward budget of 4 at once, 1 a second; the broker's 6 at once) holding
    one http-inject lease prepares 40 forwards of a ~2 KB path at one instant: 4 are audited
    `use`, the rest refused BUSY writing nothing, one more a second later; another member then
    finds the broker's total spent but for 2. Was a strict xfail (`prepare_forward` counted no
    forward: 40 records, ~80 KB of details, none refused) until `ForwardBudget`."""
    world = make_world(NOW)
    allowed = {"orders-api": None}
    policy = AllowListPolicy({world.agent_a.identifier: allowed, world.agent_b.identifier: allowed})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.forwards = ForwardBudget(burst=4, rate=1, total_burst=6, total_rate=1)
    broker.put_secret("orders-api", "http-inject", INJECT, b"Bearer sk_upstream_1", now=NOW)
    request = HttpRequest("GET", "/v1/orders/" + "x" * 2000, (), b"")

    def forwards(party: Party, times: int, now: int) -> tuple[int, list[str]]:
        credential = world.member_credential(party)
        issued = broker.issue(credential, "orders-api", now=now)
        refusals = []
        for _ in range(times):
            try:
                broker.prepare_forward(credential, issued.lease_id, request, now=now)
            except SecretError as exc:
                refusals.append(f"{exc.reason.name}: {exc.detail}")
        assert all(refusal.startswith("BUSY: ") for refusal in refusals)
        return _uses(broker), refusals

    uses, refusals = forwards(world.agent_b, 40, NOW)
    assert (uses, len(refusals)) == (4, 36)
    assert "requests forwarded lately" in refusals[0]
    assert forwards(world.agent_b, 2, NOW + 1)[0] == 5
    # the broker's total: 6, 1 refilled, 5 spent: another member is forwarded 2 of 3
    uses, refusals = forwards(world.agent_a, 3, NOW + 1)
    assert (uses, len(refusals)) == (7, 1)
    assert "the broker forwarded" in refusals[0]
    db.close()


def _uses(broker: Broker) -> int:
    assert broker.audit_log is not None
    return sum(e.kind is AuditKind.USE for _, e in broker.audit_log.read(limit=1000))
