"""Review 69r, leased secrets and the lease lifecycle: attacks that did not work (each test
would fail if the defence it names broke). PostgreSQL tests need TROTH_REQUIRE_PG=1 (skipped
otherwise, as tests/test_secrets_postgres.py).

- A renewal racing another broker's revocation of the same lease (two brokers on one node.db:
  the daemon and a CLI command) before or after the engine's upstream extension, the window
  `LeaseBook.renew` leaves outside its transactions for a remote engine: refused, the role
  dropped, the lease REVOKED.
- An issue racing another broker's sweep that aborts it as stalled before its role exists
  (the revocation finds no role, the lease is REVOKED; then the engine creates it): refused,
  and the role is dropped at once, not left to the orphan sweep.
- The same lease revoked twice at once by two brokers (the agent, the operator): both answer
  REVOKED, the role is gone, one `revoke` record.
- Renewing forever: an operator raising max_ttl after the issue does not move the lease's cap;
  each renewed token carries the lease's scope, never the secret's wider set.
- Scopes and secret names an agent chooses never reach SQL: one with quotes or spaces is
  BAD_REQUEST before any engine runs; a lease role's name is the broker's prefix and the
  handle's hex only.
- The quota across two brokers on one database, issued concurrently: exact.
- A revoked lease's token is refused after the broker restarts (its state is in node.db).
- Another member's lease committing a default grant to a lease's role (a shared dependency):
  the role is still dropped at its revocation (DROP OWNED clears default ACLs naming it).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world, open_broker
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, AuditKind, Broker, LeaseState

F = SecretFailure
TOKEN = {"scopes": ["read", "write"], "ttl": 60, "max_ttl": 300, "audience": "api"}


def _second(tmp_path: Path, parties: LeaseWorld) -> Broker:
    """Another broker on the same node.db (a CLI command's beside the daemon's)."""
    policy = AllowListPolicy({parties.agent_a.identifier: {SECRET: None, "api": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=now(), policy=policy)
    return broker


def _rejects(call: Any, *reasons: SecretFailure) -> SecretError:
    with pytest.raises(SecretError) as caught:
        call()
    assert caught.value.reason in reasons, caught.value
    return caught.value


# -- postgres: races between two brokers on one node.db ------------------------------------------


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_renewal_racing_another_brokers_revocation_leaves_no_role(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    when: str,
) -> None:
    broker = setup(tmp_path, world, orders)
    other = _second(tmp_path, world)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    role = issued.lease.engine_ref
    engine = broker.engines["postgres"]
    renew = engine.renew

    def racing(grant: Any, upstream: Any) -> Any:
        if when == "before":
            other.revoke_lease(issued.lease.handle, now=now())
            return renew(grant, upstream)
        made = renew(grant, upstream)
        other.revoke_lease(issued.lease.handle, now=now())
        return made

    engine.renew = racing  # type: ignore[method-assign]
    _rejects(lambda: broker.renew(agent, issued.lease_id, now=now()), F.REVOKED, F.ENGINE_FAILED)
    assert role not in orders.lease_roles()
    assert broker.book.lease(issued.lease.handle).state is LeaseState.REVOKED  # type: ignore[union-attr]
    other.close()
    broker.close()


def test_an_issue_aborted_by_another_brokers_sweep_before_its_role_exists_leaves_none(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    broker = setup(tmp_path, world, orders)
    other = _second(tmp_path, world)
    other.book.pending_grace = -10  # its sweep finds the lease being issued stalled
    engine = broker.engines["postgres"]
    issue = engine.issue
    swept: list[int] = []

    def racing(grant: Any, upstream: Any) -> Any:
        report = other.sweep(now())
        swept.append(report.revoked)
        return issue(grant, upstream)  # the role made after its lease was revoked

    engine.issue = racing  # type: ignore[method-assign]
    _rejects(lambda: broker.issue(world.credential_a(), SECRET, now=now()), F.REVOKED)
    assert swept == [1]
    assert orders.lease_roles() == set()  # dropped at once, not left to the orphan sweep
    other.close()
    broker.close()


def test_one_lease_revoked_twice_at_once_by_two_brokers(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    broker = setup(tmp_path, world, orders)
    other = _second(tmp_path, world)
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, now=now())
    start = threading.Barrier(2)
    states: list[LeaseState] = []
    errors: list[BaseException] = []

    def revoke(call: Any) -> None:
        start.wait()
        try:
            states.append(call().state)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(
            target=revoke, args=(lambda: broker.revoke(agent, issued.lease_id, now=now()),)
        ),
        threading.Thread(
            target=revoke, args=(lambda: other.revoke_lease(issued.lease.handle, now=now()),)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    other.sweep(now())  # whichever lost the race and left it REVOKING: done now
    assert broker.book.lease(issued.lease.handle).state is LeaseState.REVOKED  # type: ignore[union-attr]
    assert orders.lease_roles() == set()
    assert broker.audit_log is not None
    kinds = [event.kind for _seq, event in broker.audit_log.read()]
    assert kinds.count(AuditKind.REVOKE) == 1
    other.close()
    broker.close()


def test_an_agents_scope_never_reaches_sql_and_roles_name_only_the_handle(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    broker = setup(tmp_path, world, orders)
    agent = world.credential_a()
    for scope in ['orders:read"; DROP ROLE postgres; --', "orders:read orders:write", ""]:
        _rejects(lambda s=scope: broker.issue(agent, SECRET, scope=[s], now=now()), F.BAD_REQUEST)
    _rejects(lambda: broker.issue(agent, 'x"; DROP', now=now()), F.BAD_REQUEST)
    assert orders.lease_roles() == set()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    prefix = f"tl_{broker.keys.broker_id}_"
    assert issued.lease.engine_ref == prefix + issued.lease.handle.digest.hex()
    assert re.fullmatch(r"tl_[0-9a-f]{8}_[0-9a-f]{32}", issued.lease.engine_ref or "")
    broker.close()


# -- token engine: renewal caps, scopes, quota across brokers, state after a restart -------------


def _token_broker(tmp_path: Path, parties: LeaseWorld, *, quota: int = 100) -> Broker:
    policy = AllowListPolicy({parties.agent_a.identifier: {"api": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=quota)
    return broker


def test_renewing_forever_stops_at_the_cap_the_lease_was_issued_with(tmp_path: Path) -> None:
    """An operator raising max_ttl after the issue moves no lease's cap; each renewal's token
    carries the lease's scope (read), never the secret's (read, write)."""
    parties = make_world(NOW)
    broker = _token_broker(tmp_path, parties)
    broker.put_secret("api", "token", TOKEN, b"", now=NOW)
    agent = parties.credential_a()
    issued = broker.issue(agent, "api", scope=["read"], now=NOW)
    broker.put_secret("api", "token", {**TOKEN, "max_ttl": 3000}, b"", now=NOW + 1)
    for at in range(NOW + 2, NOW + 300, 100):
        lease, made = broker.renew(agent, issued.lease_id, ttl=300, now=at)
        assert lease.expires_at == NOW + 300  # the cap the lease was issued with
        token = str(made.reveal()["token"])
        assert broker.validate_token(token, audience="api", now=at).scope == ("read",)
    _rejects(lambda: broker.renew(agent, issued.lease_id, now=NOW + 300), F.EXPIRED)
    broker.close()


def test_the_quota_is_exact_across_two_brokers_on_one_database(tmp_path: Path) -> None:
    parties = make_world(NOW)
    first = _token_broker(tmp_path, parties, quota=3)
    first.put_secret("api", "token", TOKEN, b"", now=NOW)
    second = _token_broker(tmp_path, parties, quota=3)
    agent = parties.credential_a()
    start = threading.Barrier(8)
    outcomes: list[object] = []

    def issue(broker: Broker) -> None:
        start.wait()
        try:
            outcomes.append(broker.issue(agent, "api", now=NOW).lease.state)
        except SecretError as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=issue, args=((first, second)[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, outcomes)) == sorted(
        [str(LeaseState.ACTIVE)] * 3 + [str(F.QUOTA_EXCEEDED)] * 5
    )
    assert len(first.leases(agent)) == 3
    second.close()
    first.close()


def test_a_revoked_leases_token_stays_refused_after_the_broker_restarts(tmp_path: Path) -> None:
    parties = make_world(NOW)
    broker = _token_broker(tmp_path, parties)
    broker.put_secret("api", "token", TOKEN, b"", now=NOW)
    agent = parties.credential_a()
    issued = broker.issue(agent, "api", now=NOW)
    token = str(issued.credential.reveal()["token"])
    broker.revoke(agent, issued.lease_id, now=NOW + 1)
    broker.close()
    broker.store.db.close()
    reopened = _token_broker(tmp_path, parties)
    _rejects(lambda: reopened.validate_token(token, audience="api", now=NOW + 2), F.REVOKED)
    _rejects(lambda: reopened.renew(agent, issued.lease_id, now=NOW + 2), F.REVOKED)
    reopened.close()


def test_another_leases_committed_default_grant_to_a_lease_does_not_keep_it(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
) -> None:
    """Agent b's lease commits `ALTER DEFAULT PRIVILEGES ... TO <a's lease role>` (a shared
    dependency on it, in the secret's database): a's revocation still drops the role (DROP
    OWNED takes a role out of every default ACL naming it)."""
    broker = setup(tmp_path, world, orders)
    victim = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    holder = broker.issue(world.credential_b(), SECRET, scope=["orders:read"], now=now())
    with login(orders, holder.credential.reveal()) as session:
        session.execute(
            f'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO "{victim.lease.engine_ref}"'
        )
    revoked = broker.revoke(world.credential_a(), victim.lease_id, now=now())
    assert revoked.state is LeaseState.REVOKED
    assert victim.lease.engine_ref not in orders.lease_roles()
    broker.close()
