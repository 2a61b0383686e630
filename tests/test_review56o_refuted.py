"""Review 56o, attacks on review 56j's broker code that did not work: the migration dropping the
chains' bytes (`store_schema._drop_chain_bytes`) killed in the middle or run by two openers at
once, and the forward budgets (`ForwardBudget`) spread over fresh delegates, spent by a caller
who may not forward under the lease, or spent by one member to lock the others out. Each is a
real attempt that would fail if its defence broke."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import ATTRS, CHAIN_TTL, LeaseWorld, make_world, open_broker
from tests.support.parties import Party, make_party
from tests.test_review30b_leases import INJECT
from tests.test_review56j_chains import member_chain
from troth import limits
from troth.credentials import VerifiedCredential, delegate
from troth.errors import SecretError, SecretFailure
from troth.identity import Identifier
from troth.secrets import AllowListPolicy, Broker, HttpRequest, store_schema
from troth.secrets.issues import ForwardBudget
from troth.secrets.lease import LeaseId
from troth.secrets.store import SqliteSecretStore
from troth.storage import SqliteDatabase

F = SecretFailure
HASHES = [bytes([n]) * 32 for n in range(1, 6)]
OK = HttpRequest("GET", "/v1/orders/1", (), b"")


def _old_store(path: Path) -> None:
    """A node.db whose `secret_lease_chains` keeps each chain's bytes (before review 56j)."""
    db = SqliteDatabase(path)
    try:
        SqliteSecretStore(db)
        db.execute("DROP TABLE secret_lease_chains")
        db.execute(
            "CREATE TABLE secret_lease_chains (chain_hash BLOB PRIMARY KEY, chain BLOB NOT NULL)"
        )
        for chain_hash in HASHES:
            db.execute("INSERT INTO secret_lease_chains VALUES (?, ?)", (chain_hash, b"c" * 4096))
    finally:
        db.close()


def _layout(path: Path) -> tuple[list[str], list[str], set[bytes]]:
    """The tables named secret_lease_chains*, the chains table's columns, its hashes."""
    db = SqliteDatabase(path)
    try:
        tables = db.fetch_all(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name LIKE 'secret_lease_chains%' ORDER BY name"
        )
        columns = db.fetch_all("PRAGMA table_info(secret_lease_chains)")
        hashes = db.fetch_all("SELECT chain_hash FROM secret_lease_chains")
        return [t[0] for t in tables], [c[1] for c in columns], {bytes(h[0]) for h in hashes}
    finally:
        db.close()


class _Counting:
    """A connection whose `execute` calls `at(n)` after its n-th statement."""

    @classmethod
    def over(cls, conn: Any, at: Any) -> Any:
        return cls(conn, at)

    def __init__(self, conn: Any, at: Any) -> None:
        self._conn, self._at, self._n = conn, at, 0

    def execute(self, *args: Any) -> Any:
        result = self._conn.execute(*args)
        self._n += 1
        self._at(self._n)
        return result


_KILLED = """
import os, sys
from troth.secrets import store_schema
from troth.secrets.store import SqliteSecretStore
from troth.storage import SqliteDatabase
from tests.test_review56o_refuted import _Counting
original, after = store_schema._drop_chain_bytes, int(sys.argv[2])
def killed(n):
    if n == after:
        os._exit(9)  # killed: no rollback, no close
store_schema._drop_chain_bytes = lambda conn: original(_Counting(conn, killed))
SqliteSecretStore(SqliteDatabase(sys.argv[1]))
"""


@pytest.mark.parametrize("after", [2, 3, 4, 5])  # the rename, the new table, the copy, the drop
def test_a_migration_killed_in_the_middle_leaves_the_old_table_whole(
    tmp_path: Path, after: int
) -> None:
    """The process opening an old store is killed after each statement of the migration (its
    table renamed, the new one made, the hashes copied, the old one dropped): one transaction,
    so the store is the old layout, all its hashes there; the next open migrates it. Were the
    statements committed one by one, a kill after the rename left `secret_lease_chains_old`
    and the next open made an empty new table beside it (the hashes lost: a revoked chain's
    members pruned with nothing to find them by)."""
    path = tmp_path / "node.db"
    _old_store(path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _KILLED, str(path), str(after)],
        env=env,
        capture_output=True,
        cwd=Path(__file__).parent.parent,
        check=False,
    )
    assert done.returncode == 9, done.stderr
    assert _layout(path) == (["secret_lease_chains"], ["chain_hash", "chain"], set(HASHES))
    SqliteSecretStore(db := SqliteDatabase(path))
    db.close()
    assert _layout(path) == (["secret_lease_chains"], ["chain_hash"], set(HASHES))


def test_two_openers_of_an_old_store_migrate_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two openers (two connections, as two processes) of an old store at once: the first is
    held after renaming the old table; the second waits for the write lock, then finds the
    store migrated (its check is inside its transaction) and opens it. Neither fails, and the
    hashes are all there once."""
    path = tmp_path / "node.db"
    _old_store(path)
    renamed, go = threading.Event(), threading.Event()
    original = store_schema._drop_chain_bytes

    def hold(n: int) -> None:
        if n == 2 and threading.current_thread().name == "first":
            renamed.set()
            go.wait(10)

    monkeypatch.setattr(
        store_schema, "_drop_chain_bytes", lambda c: original(_Counting.over(c, hold))
    )
    failures: list[BaseException] = []

    def open_store() -> None:
        db = SqliteDatabase(path)
        try:
            SqliteSecretStore(db)
        except BaseException as exc:
            failures.append(exc)
        finally:
            db.close()

    first = threading.Thread(target=open_store, name="first")
    second = threading.Thread(target=open_store, name="second")
    first.start()
    assert renamed.wait(10)
    second.start()  # waits on the write lock the first holds
    second.join(0.3)
    assert second.is_alive()
    go.set()
    first.join(10)
    second.join(10)
    assert failures == []
    assert _layout(path) == (["secret_lease_chains"], ["chain_hash"], set(HASHES))


# -- forward budgets ------------------------------------------------------------------------


def _inject_broker(tmp_path: Path, allowed: list[Identifier], budget: ForwardBudget) -> Broker:
    policy = AllowListPolicy({identity: {"orders-api": None} for identity in allowed})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.forwards = budget
    broker.put_secret("orders-api", "http-inject", INJECT, b"Bearer sk_upstream_1", now=NOW)
    return broker


def _delegate_credential(world: LeaseWorld, fresh: Party) -> VerifiedCredential:
    """A fresh delegate of agent b (a member allowed one delegation), minted offline."""
    chain = delegate(
        world.agent_b.signer,
        member_chain(world, ATTRS, depth=1),
        subject=fresh.identifier,
        attributes=ATTRS,
        now=NOW,
        ttl=CHAIN_TTL,
        purpose="one forward",
    ).encode()
    return world.verifier.verify(chain, presenter=fresh.identifier, feeds=world.feeds(), now=NOW)


def _refusal(broker: Broker, credential: VerifiedCredential, lease: LeaseId, r: Any) -> Any:
    try:
        broker.prepare_forward(credential, lease, r, now=NOW)
    except SecretError as exc:
        return exc.reason
    return None


def test_fresh_delegates_share_their_members_forward_budget(tmp_path: Path) -> None:
    """Member b mints a fresh delegate for each forward (delegates cost nothing), each with a
    lease of its own: every one spends b's budget (the chain's first link's subject), so the
    fourth is refused BUSY once b's 3 are spent, though the broker's total has room."""
    world = make_world(NOW)
    fresh = [make_party(world.vault, now=NOW) for _ in range(5)]
    budget = ForwardBudget(burst=3, rate=1, total_burst=100, total_rate=1)
    broker = _inject_broker(tmp_path, [party.identifier for party in fresh], budget)
    reasons = []
    for party in fresh:
        credential = _delegate_credential(world, party)
        issued = broker.issue(credential, "orders-api", now=NOW)
        reasons.append(_refusal(broker, credential, issued.lease_id, OK))
    assert reasons == [None, None, None, F.BUSY, F.BUSY]
    broker.close()


def test_a_caller_who_may_not_forward_spends_nothing_of_the_holders_budget(
    tmp_path: Path,
) -> None:
    """Another member presenting b's lease id, a request the secret's rules forbid, a method
    they do not allow, and b's own lease once revoked: each refused before the budget is
    taken, so b (a budget of 2) is forwarded twice afterwards."""
    world = make_world(NOW)
    budget = ForwardBudget(burst=2, rate=1, total_burst=2, total_rate=1)
    allowed = [world.agent_a.identifier, world.agent_b.identifier]
    broker = _inject_broker(tmp_path, allowed, budget)
    b, a = world.member_credential(world.agent_b), world.member_credential(world.agent_a)
    lease = broker.issue(b, "orders-api", now=NOW).lease_id
    revoked = broker.issue(b, "orders-api", now=NOW).lease_id
    broker.revoke(b, revoked, now=NOW)
    forbidden = HttpRequest("GET", "/v1/refunds/1", (), b"")
    posted = HttpRequest("POST", "/v1/orders/1", (), b"")
    for _ in range(5):
        assert _refusal(broker, a, lease, OK) is F.NO_SUCH_LEASE
        assert _refusal(broker, b, lease, forbidden) is F.FORBIDDEN_REQUEST
        assert _refusal(broker, b, lease, posted) is F.FORBIDDEN_REQUEST
        assert _refusal(broker, b, revoked, OK) is F.REVOKED
    assert [_refusal(broker, b, lease, OK) for _ in range(3)] == [None, None, F.BUSY]
    broker.close()


def test_one_member_cannot_spend_the_brokers_forward_budget() -> None:
    """One member (with all its delegates: one account) forwarding as fast as it is let for two
    minutes, with the named limits: it is held to its own burst and rate, and nine other
    members are then each forwarded their whole burst at once (the broker's total less the
    greedy one's share): one member cannot lock the others out."""
    budget = ForwardBudget()
    greedy = Identifier(b"\x01" * 32)
    spent, refusals = 0, set()
    for second in range(120):
        while True:
            try:
                budget.take(greedy, NOW + second)
            except SecretError as exc:
                refusals.add((exc.reason, exc.detail.split(" ")[0]))
                break
            spent += 1
    assert refusals == {(F.BUSY, "member")}
    assert spent == limits.LEASE_FORWARD_BURST + 119 * limits.LEASE_FORWARD_RATE
    others = limits.LEASE_FORWARD_TOTAL_BURST // limits.LEASE_FORWARD_BURST - 1
    for n in range(others):
        for _ in range(limits.LEASE_FORWARD_BURST):
            budget.take(Identifier(bytes([n + 2]) * 32), NOW + 119)
