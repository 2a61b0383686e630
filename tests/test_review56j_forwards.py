"""Review 56j, the audit records a member's forwards write (found checking review 56b's
pattern, a stored record per request, over the broker's other records).

2. docs/secrets.md ("Issue rate") bounds what one member leaves in the database by its issue
   budget: its burst plus its rate over the retention in lease rows, "and three times that in
   audit records". A forward is not counted against any budget ("a forward's record is the use
   it audits"), yet each writes a `use` record (its method and path, up to the 2,048-character
   target) to the append-only audit log: one member holding one http-inject lease writes as
   many as the node serves it, bounded only by `MAX_FORWARDS_PER_AGENT` (4) at once and the
   upstream's latency, not by the issue budget the docs name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from troth.errors import SecretError
from troth.secrets import AllowListPolicy, HttpRequest
from troth.secrets.audit import AuditKind
from troth.secrets.issues import IssueBudget

INJECT = {
    "scopes": ["orders"],
    "ttl": 60,
    "max_ttl": 600,
    "upstream": "http://127.0.0.1:9/api",  # never called: prepare_forward sends nothing
    "header": "Authorization",
    "rules": [{"methods": ["GET"], "path": "/v1/orders/*"}],
}


@pytest.mark.xfail(
    strict=True, reason="review56j forwards 2: a member's forwards' records escape its budget"
)
def test_a_members_forwards_write_records_within_its_budget(tmp_path: Path) -> None:
    """2: one member (issue budget: a burst of 4, as the docs' bound scales) holding one
    http-inject lease prepares 40 forwards at one instant: each is audited `use`, none refused,
    ten times the records its issue budget allows in that instant."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"orders-api": None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.issues = IssueBudget(burst=4, rate=1, total_burst=40, total_rate=10)
    broker.put_secret("orders-api", "http-inject", INJECT, b"Bearer sk_upstream_1", now=NOW)
    credential = world.member_credential(world.agent_b)
    issued = broker.issue(credential, "orders-api", now=NOW)
    request = HttpRequest("GET", "/v1/orders/" + "x" * 2000, (), b"")
    refused = 0
    for _ in range(40):
        try:
            broker.prepare_forward(credential, issued.lease_id, request, now=NOW)
        except SecretError:
            refused += 1
    assert broker.audit_log is not None
    uses = [e for _, e in broker.audit_log.read(limit=1000) if e.kind is AuditKind.USE]
    # the issue budget's burst bounds a member's records at one instant ("three times" its
    # leases: the issue, revoke and revoked records of each)
    assert len(uses) <= 3 * 4, (len(uses), refused, sum(len(e.detail) for e in uses))
    db.close()
