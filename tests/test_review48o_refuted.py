"""Review 48o, attacks on the broker's growth that the code already stopped.

- A member the policy refuses, looping issue: no lease row is written, and its refusals are
  recorded within the denial budget (troth.secrets.denials: 8 a caller every 600 s), so 2,000
  refused issues in 200 s wrote at most that many records (the issue budget not involved:
  set past them).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from tests.test_secrets_tokens import CONFIG
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy
from troth.secrets.denials import DENIAL_WINDOW, DENIALS_PER_CALLER
from troth.secrets.issues import IssueBudget


def test_a_member_refused_by_policy_looping_issue_writes_only_its_denial_budget(
    tmp_path: Path,
) -> None:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.issues = IssueBudget(burst=10**6, rate=10**6, total_burst=10**6, total_rate=10**6)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    refused = world.credential_a()
    reasons = set()
    rounds = 2000
    for n in range(rounds):
        try:
            broker.issue(refused, "payments", now=NOW + n // 10)
        except SecretError as exc:
            reasons.add(exc.reason)
    assert reasons == {SecretFailure.DENIED}
    assert rounds // 10 < DENIAL_WINDOW  # one window
    assert db.fetch_one("SELECT COUNT(*) FROM secret_leases", ()) == (0,)
    row = db.fetch_one("SELECT COUNT(*) FROM secret_audit WHERE kind = 'deny'", ())
    assert row is not None
    assert 0 < row[0] <= DENIALS_PER_CALLER
