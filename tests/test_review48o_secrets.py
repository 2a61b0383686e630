"""Review 48o, the secrets broker's issue rate.

1. Nothing bounded how often a member allowed by policy is issued a lease: the quota bounds the
   leases it holds open, the denial budget the refusals recorded. A member looping issue and
   revoke wrote, each round, a lease row kept 30 days after it ended and about three audit
   records, as fast as the broker answered: one member grew the node's database without bound
   (10,000 rounds in 100 s: 10,000 rows). Each issue now spends one of the member's issue
   budget (`limits.LEASE_ISSUE_BURST`, then `LEASE_ISSUE_RATE` a second) and one of the
   broker's total (`LEASE_ISSUE_TOTAL_*`); past either it is refused SecretError BUSY, nothing
   written, a refusal the client decodes typed. Another member keeps its own budget, and a
   member the policy refuses spends its own, never the total (a refusal gives that back).

2. The same loop with `renew`: each renewal of a live lease wrote an audit record (and, for a
   token lease, signed a token), as fast as the member asked. A renewal spends the same budget.

The attacks through the broker were strict xfails until their fix; the other tests check the
fix's parts (the total budget, delegates, the defaults).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world, open_broker
from tests.support.parties import make_party
from tests.test_review47d_secrets import _delegated
from tests.test_secrets_tokens import CONFIG
from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.issues import IssueBudget
from troth.secrets.wire import raise_refusal
from troth.storage import SqliteDatabase

ROUNDS = 10_000
PER_SECOND = 100  # the attacker's rounds a second (the clock advances one second per 100)


def _count(db: SqliteDatabase, table: str) -> int:
    row = db.fetch_one(f"SELECT COUNT(*) FROM {table}", ())  # noqa: S608 (a fixed name)
    assert row is not None
    return int(row[0])


def _broker(tmp_path: Path, quota: int = 100) -> tuple[SqliteDatabase, Broker, LeaseWorld]:
    world = make_world(NOW)
    policy = AllowListPolicy(
        {world.agent_a.identifier: {"payments": None}, world.agent_b.identifier: {"payments": None}}
    )
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=quota)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    return db, broker, world


def test_a_member_looping_issue_and_revoke_grows_the_database_only_at_its_rate(
    tmp_path: Path,
) -> None:
    """1: 10,000 issue+revoke rounds of one member over 100 s leave at most its burst and its
    rate's rows (and three audit records each), not 10,000; the others are refused BUSY. The
    member is issued leases again once its budget refilled, and another member is not
    affected."""
    db, broker, world = _broker(tmp_path)
    attacker = world.credential_a()
    refused: set[SecretFailure] = set()
    for n in range(ROUNDS):
        now = NOW + n // PER_SECOND
        try:
            issued = broker.issue(attacker, "payments", now=now)
        except SecretError as exc:
            refused.add(exc.reason)
            continue
        broker.revoke(attacker, issued.lease_id, now=now)
    elapsed = (ROUNDS - 1) // PER_SECOND
    allowed = limits.LEASE_ISSUE_BURST + limits.LEASE_ISSUE_RATE * elapsed
    leases = _count(db, "secret_leases")
    assert leases <= allowed < ROUNDS // 5, leases
    assert _count(db, "secret_audit") <= 3 * allowed + 10
    assert refused == {SecretFailure.BUSY}
    other = world.credential_b()
    broker.issue(other, "payments", now=NOW + elapsed)  # its own budget, full
    later = NOW + elapsed + limits.LEASE_ISSUE_BURST // limits.LEASE_ISSUE_RATE
    broker.issue(attacker, "payments", now=later)


def test_the_refusal_is_a_typed_busy_the_client_decodes(tmp_path: Path) -> None:
    """1: a served broker answers the issue past the budget as a refusal of reason BUSY (the
    client's `raise_refusal` raises SecretError BUSY), nothing written."""
    db, broker, world = _broker(tmp_path, quota=limits.LEASE_ISSUE_BURST + 1)
    endpoint = BrokerEndpoint(broker)
    caller = BrokerCaller(world.agent_a.identifier, (world.credential_a(),))
    answers = [
        endpoint.handle("issue", {"secret": "payments", "scope": None, "ttl": 60}, caller, NOW)
        for _ in range(limits.LEASE_ISSUE_BURST + 1)
    ]
    with pytest.raises(SecretError) as refused:
        raise_refusal(answers[-1])
    assert refused.value.reason is SecretFailure.BUSY
    assert all("refused" not in answer for answer in answers[:-1])
    assert _count(db, "secret_leases") == limits.LEASE_ISSUE_BURST


def test_a_member_looping_renew_writes_audit_records_only_at_its_rate(tmp_path: Path) -> None:
    """2: 10,000 renewals of one lease over 100 s write at most the budget's records, the
    others refused BUSY."""
    db, broker, world = _broker(tmp_path)
    agent = world.credential_a()
    issued = broker.issue(agent, "payments", now=NOW)
    refused: set[SecretFailure] = set()
    for n in range(ROUNDS):
        try:
            broker.renew(agent, issued.lease_id, now=NOW + n // PER_SECOND)
        except SecretError as exc:
            refused.add(exc.reason)
    elapsed = (ROUNDS - 1) // PER_SECOND
    allowed = limits.LEASE_ISSUE_BURST + limits.LEASE_ISSUE_RATE * elapsed
    assert _count(db, "secret_audit") <= allowed + 10
    assert refused == {SecretFailure.BUSY}


def test_fresh_delegates_spend_their_members_budget(tmp_path: Path) -> None:
    """1: delegates are minted for free; each spends its member's budget (`lease_account`),
    none has one of its own."""
    world = make_world(NOW)
    member = make_party(world.vault, now=NOW)
    delegates = [make_party(world.vault, now=NOW) for _ in range(3)]
    policy = AllowListPolicy({d.identifier: {"payments": None} for d in delegates})
    budget = IssueBudget(burst=4, rate=1)
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.issues = budget
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    credentials = [_delegated(world, member, d) for d in delegates]
    for n in range(4):
        broker.issue(credentials[n % 3], "payments", now=NOW)
    for credential in credentials:
        with pytest.raises(SecretError) as refused:
            broker.issue(credential, "payments", now=NOW)
        assert refused.value.reason is SecretFailure.BUSY
        assert str(member.identifier) in refused.value.detail


def test_the_total_budget_bounds_many_members_each_within_its_own(tmp_path: Path) -> None:
    """1: members each within their own budget share the broker's total: past it every member
    is refused BUSY until it refills; a member refused by the total keeps what it had."""
    budget = IssueBudget(burst=3, rate=1, total_burst=5, total_rate=2)
    a, b, c = make_world(NOW).agent_a, make_world(NOW).agent_b, make_world(NOW).user
    for _ in range(3):
        budget.take(a.identifier, NOW)
    budget.take(b.identifier, NOW)
    budget.take(b.identifier, NOW)
    with pytest.raises(SecretError) as refused:
        budget.take(c.identifier, NOW)
    assert refused.value.reason is SecretFailure.BUSY
    with pytest.raises(SecretError):
        budget.take(a.identifier, NOW)  # its own is empty too
    budget.take(c.identifier, NOW + 1)  # the total refilled two; c's own was never spent
    budget.take(c.identifier, NOW + 1)
    with pytest.raises(SecretError):
        budget.take(c.identifier, NOW + 1)  # the total is empty; c has one left, kept
    budget.take(c.identifier, NOW + 2)  # c: the one kept and one refilled
    budget.take(c.identifier, NOW + 2)
    with pytest.raises(SecretError):
        budget.take(c.identifier, NOW + 2)


def test_members_the_policy_refuses_do_not_spend_the_total(tmp_path: Path) -> None:
    """1: members refused by the policy spend their own budget, not the broker's total: the
    members it allows keep it."""
    world = make_world(NOW)
    refused = [make_party(world.vault, now=NOW) for _ in range(3)]
    allowed = make_party(world.vault, now=NOW)
    policy = AllowListPolicy({allowed.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.issues = IssueBudget(burst=3, rate=1, total_burst=5, total_rate=1)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    for party in refused:
        credential = world.member_credential(party)
        for _ in range(3):
            with pytest.raises(SecretError) as denied:
                broker.issue(credential, "payments", now=NOW)
            assert denied.value.reason is SecretFailure.DENIED
    mine = world.member_credential(allowed)
    for _ in range(3):
        broker.issue(mine, "payments", now=NOW)


def test_one_member_at_its_rate_takes_a_small_share_of_the_total() -> None:
    """1: the defaults leave the total to the others: one member's burst and rate are at most
    a tenth of the broker's."""
    assert 10 * limits.LEASE_ISSUE_BURST <= limits.LEASE_ISSUE_TOTAL_BURST
    assert 10 * limits.LEASE_ISSUE_RATE <= limits.LEASE_ISSUE_TOTAL_RATE
