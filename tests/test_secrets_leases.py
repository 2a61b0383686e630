"""The lease book through the broker (token engine): leases are per agent, renewals are capped,
quotas are exact under concurrency, revocation by the feed reaches every lease and races no
issue, refusals are audited and the audit fails closed, and leases survive a restart."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import ATTRS, CHAIN_TTL, LeaseWorld, make_world, open_broker
from tests.support.parties import make_party
from troth.credentials import CredentialChain, RevocationKind, delegate
from troth.crypto import sha256
from troth.errors import SecretError, SecretFailure
from troth.identity import Identifier
from troth.secrets import (
    AllowListPolicy,
    AuditEvent,
    AuditKind,
    Broker,
    LeaseDecision,
    LeaseId,
    LeaseQuestion,
    LeaseState,
    SqliteAuditLog,
)
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.wire import IssueArgs

F = SecretFailure
CONFIG = {
    "scopes": ["refunds:write", "orders:read"],
    "ttl": 120,
    "max_ttl": 600,
    "audience": "payments",
}


@pytest.fixture
def world() -> LeaseWorld:
    return make_world(NOW)


def allow_all(world: LeaseWorld) -> AllowListPolicy:
    return AllowListPolicy(
        {world.agent_a.identifier: {"payments": None}, world.agent_b.identifier: {"payments": None}}
    )


def broker_for(tmp_path: Path, world: LeaseWorld, **options: object) -> Broker:
    options.setdefault("policy", allow_all(world))
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, **options)  # type: ignore[arg-type]
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    return broker


def rejects(call: object, reason: SecretFailure) -> SecretError:
    with pytest.raises(SecretError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.reason is reason, caught.value
    return caught.value


def audit_kinds(broker: Broker) -> list[AuditKind]:
    assert broker.audit_log is not None
    return [event.kind for _seq, event in broker.audit_log.read()]


# -- per agent -----------------------------------------------------------------------------------


def test_b_cannot_see_renew_or_revoke_as(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    a, b = world.credential_a(), world.credential_b()
    issued = broker.issue(a, "payments", now=NOW)
    assert [lease.handle for lease in broker.leases(a)] == [issued.lease.handle]
    assert broker.leases(b) == []
    # B holding A's lease id (stolen) still cannot act on it: same answer as a made-up id
    for lease_id in (issued.lease_id, LeaseId.new(NOW)):
        rejects(lambda i=lease_id: broker.renew(b, i, now=NOW + 1), F.NO_SUCH_LEASE)
        rejects(lambda i=lease_id: broker.revoke(b, i, now=NOW + 1), F.NO_SUCH_LEASE)
    assert broker.leases(a)[0].state is LeaseState.ACTIVE
    # A knowing only the public handle (a token's jti) is not enough either
    rejects(lambda: LeaseId.parse(str(issued.lease.handle)), F.NO_SUCH_LEASE)
    assert (
        broker.revoke(a, LeaseId.parse(issued.lease_id.text()), now=NOW + 2).state
        is LeaseState.REVOKED
    )


def test_lease_id_is_never_stored(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    issued = broker.issue(world.credential_a(), "payments", now=NOW)
    token = str(issued.credential.reveal()["token"])
    raw, text = issued.lease_id.reveal(), issued.lease_id.text()
    assert text not in repr(issued)
    assert raw.hex() not in repr(issued)
    broker.store.db.close()
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert raw not in data, path
        assert text.encode() not in data, path
        assert token.encode() not in data, path  # the audit keeps only an HMAC of the token


# -- renew ---------------------------------------------------------------------------------------


def test_renew_extends_from_now_capped_by_max_ttl(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    a = world.credential_a()
    issued = broker.issue(a, "payments", ttl=60, now=NOW)
    assert issued.lease.expires_at == NOW + 60
    assert issued.lease.cap_at == NOW + 600
    lease, made = broker.renew(a, issued.lease_id, now=NOW + 50)
    assert lease.expires_at == NOW + 50 + 60  # from now, by the lease's ttl
    token = str(made.reveal()["token"])
    assert broker.validate_token(token, audience="payments", now=NOW + 100).expires_at == NOW + 110
    lease, _ = broker.renew(a, issued.lease_id, ttl=600, now=NOW + 100)
    assert lease.expires_at == NOW + 600  # capped by issued_at + max_ttl
    rejects(lambda: broker.renew(a, issued.lease_id, ttl=601, now=NOW + 101), F.BAD_REQUEST)
    rejects(lambda: broker.renew(a, issued.lease_id, now=NOW + 600), F.EXPIRED)


def test_renew_never_past_the_credential(tmp_path: Path) -> None:
    world = make_world(NOW, chain_ttl=300)
    broker = broker_for(tmp_path, world)
    a = world.credential_a()
    issued = broker.issue(a, "payments", ttl=600, now=NOW)
    assert issued.lease.expires_at == NOW + 300 == issued.lease.cap_at
    lease, _ = broker.renew(a, issued.lease_id, ttl=600, now=NOW + 200)
    assert lease.expires_at == NOW + 300


def test_renew_refuses_a_scope_the_operator_withdrew(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    a = world.credential_a()
    issued = broker.issue(a, "payments", now=NOW)
    assert "refunds:write" in issued.lease.scope
    narrower = {**CONFIG, "scopes": ["orders:read"]}
    broker.put_secret("payments", "token", narrower, b"", now=NOW + 1)
    refused = rejects(lambda: broker.renew(a, issued.lease_id, now=NOW + 2), F.BAD_REQUEST)
    assert "no longer offers" in str(refused)
    fresh = broker.issue(a, "payments", now=NOW + 2)  # a new lease gets what is offered now
    assert fresh.lease.scope == ("orders:read",)


def test_renew_refused_after_revoke_and_rechecks_policy(tmp_path: Path, world: LeaseWorld) -> None:
    class Switch:
        allowed = True

        def decide(self, question: LeaseQuestion) -> LeaseDecision:
            return LeaseDecision(self.allowed, "switch")

    policy = Switch()
    broker = broker_for(tmp_path, world, policy=policy)
    a = world.credential_a()
    one, two = (broker.issue(a, "payments", now=NOW) for _ in range(2))
    policy.allowed = False
    rejects(lambda: broker.renew(a, one.lease_id, now=NOW + 1), F.DENIED)
    policy.allowed = True
    broker.revoke(a, two.lease_id, now=NOW + 1)
    rejects(lambda: broker.renew(a, two.lease_id, now=NOW + 2), F.REVOKED)


# -- policy, quota, concurrency -----------------------------------------------------------------


def test_deny_by_default_and_failing_policy(tmp_path: Path, world: LeaseWorld) -> None:
    _db, broker = open_broker(tmp_path / "node.db", now=NOW)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    error = rejects(lambda: broker.issue(world.credential_a(), "payments", now=NOW), F.DENIED)
    assert "deny by default" in str(error)

    class Broken:
        def decide(self, question: LeaseQuestion) -> LeaseDecision:
            raise RuntimeError("policy engine crashed")

    broker.book._policy = Broken()
    rejects(lambda: broker.issue(world.credential_a(), "payments", now=NOW), F.DENIED)
    assert audit_kinds(broker).count(AuditKind.DENY) == 2
    assert broker.leases(world.credential_a(), include_ended=True) == []


def test_scopes_and_ttl_are_checked(tmp_path: Path, world: LeaseWorld) -> None:
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": ["orders:read"]}})
    broker = broker_for(tmp_path, world, policy=policy)
    a = world.credential_a()
    rejects(lambda: broker.issue(a, "payments", scope=["refunds:write"], now=NOW), F.DENIED)
    rejects(lambda: broker.issue(a, "payments", scope=["admin"], now=NOW), F.BAD_REQUEST)
    rejects(lambda: broker.issue(a, "payments", scope=["a b"], now=NOW), F.BAD_REQUEST)
    rejects(
        lambda: broker.issue(a, "payments", scope=["orders:read"], ttl=601, now=NOW), F.BAD_REQUEST
    )
    rejects(
        lambda: broker.issue(a, "payments", scope=["orders:read"], ttl=0, now=NOW), F.BAD_REQUEST
    )
    rejects(lambda: broker.issue(a, "no-such", now=NOW), F.NOT_CONFIGURED)
    rejects(lambda: broker.issue(a, "../payments", now=NOW), F.BAD_REQUEST)
    assert broker.issue(a, "payments", scope=["orders:read"], now=NOW).lease.scope == (
        "orders:read",
    )


def test_quota_is_exact(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world, quota=3)
    a = world.credential_a()
    leases = [broker.issue(a, "payments", now=NOW) for _ in range(3)]
    rejects(lambda: broker.issue(a, "payments", now=NOW), F.QUOTA_EXCEEDED)
    broker.issue(world.credential_b(), "payments", now=NOW)  # per member
    broker.revoke(a, leases[0].lease_id, now=NOW)
    broker.issue(a, "payments", now=NOW)
    rejects(lambda: broker.issue(a, "payments", now=NOW), F.QUOTA_EXCEEDED)
    # expired leases no longer count, even before the sweep
    broker.issue(a, "payments", now=NOW + 120)


def test_a_members_delegates_share_its_quota_and_see_only_their_own(
    tmp_path: Path, world: LeaseWorld
) -> None:
    # A's chain starts at the user (authority -> user -> orchestrator -> A): A's leases and
    # those of a delegate A mints are filed under the user and spend the user's one quota
    # (docs/secrets.md, "Issue"); listing and revoke-by-identity still see one identity only.
    x = make_party(world.vault, now=NOW)
    to_x = delegate(
        world.agent_a.signer,
        CredentialChain.decode(world.chain_a),
        subject=x.identifier,
        attributes=ATTRS,
        now=NOW,
        ttl=CHAIN_TTL,
        purpose="one refund",
    )
    policy = AllowListPolicy(
        {
            identity: {"payments": None}
            for identity in (world.agent_a.identifier, world.agent_b.identifier, x.identifier)
        }
    )
    broker = broker_for(tmp_path, world, quota=3, policy=policy)
    a = world.credential_a()
    cx = world.verifier.verify(to_x.encode(), presenter=x.identifier, feeds=world.feeds(), now=NOW)
    own = [broker.issue(a, "payments", now=NOW).lease.handle for _ in range(2)]
    delegated = broker.issue(cx, "payments", now=NOW).lease.handle
    for credential in (cx, a):
        error = rejects(lambda c=credential: broker.issue(c, "payments", now=NOW), F.QUOTA_EXCEEDED)
        assert str(world.user.identifier) in str(error)
    broker.issue(world.credential_b(), "payments", now=NOW)  # another member: its own quota
    assert {lease.handle for lease in broker.leases(a)} == set(own)
    assert [lease.handle for lease in broker.leases(cx)] == [delegated]
    assert broker.leases(world.user.identifier) == []  # the account holds no lease itself
    assert [lease.handle for lease in broker.revoke_identity(x.identifier, now=NOW + 1)] == [
        delegated
    ]
    assert {lease.state for lease in broker.leases(a)} == {LeaseState.ACTIVE}
    broker.issue(a, "payments", now=NOW + 1)  # the delegate's lease no longer counts


def test_100_concurrent_issues_give_100_leases(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world, quota=1000)
    a = world.credential_a()
    with ThreadPoolExecutor(max_workers=16) as pool:
        issued = list(pool.map(lambda _: broker.issue(a, "payments", now=NOW), range(100)))
    assert len({i.lease.handle for i in issued}) == 100
    assert len(broker.leases(a)) == 100
    assert audit_kinds(broker).count(AuditKind.ISSUE) == 100


def test_quota_exact_under_concurrency(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world, quota=37)
    a = world.credential_a()

    def attempt(_: int) -> SecretFailure | None:
        try:
            broker.issue(a, "payments", now=NOW)
        except SecretError as exc:
            return exc.reason
        return None

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(attempt, range(100)))
    assert results.count(None) == 37 == len(broker.leases(a))
    assert set(results) == {None, F.QUOTA_EXCEEDED}


# -- revocation ------------------------------------------------------------------------------------


def test_feed_revokes_every_lease_of_the_identity(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    a, b = world.credential_a(), world.credential_b()
    tokens = [
        str(broker.issue(a, "payments", now=NOW).credential.reveal()["token"]) for _ in range(5)
    ]
    kept = str(broker.issue(b, "payments", now=NOW).credential.reveal()["token"])
    feed = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.agent_a.identifier.digest)], NOW + 1
    )
    revoked = broker.revoke_for_feed(feed, now=NOW + 1)
    assert len(revoked) == 5
    assert {lease.state for lease in broker.leases(a, include_ended=True)} == {LeaseState.REVOKED}
    for token in tokens:
        rejects(
            lambda t=token: broker.validate_token(t, audience="payments", now=NOW + 2), F.REVOKED
        )
    broker.validate_token(kept, audience="payments", now=NOW + 2)
    rejects(lambda: broker.issue(a, "payments", now=NOW + 2), F.REVOKED)


@pytest.mark.parametrize("target", ["delegator", "link"])
def test_feed_revoking_a_delegator_or_a_link(
    tmp_path: Path, world: LeaseWorld, target: str
) -> None:
    broker = broker_for(tmp_path, world)
    a = world.credential_a()
    broker.issue(a, "payments", now=NOW)
    entry = (
        (int(RevocationKind.IDENTITY), world.orchestrator.identifier.digest)
        if target == "delegator"
        else (int(RevocationKind.CREDENTIAL), a.links[1].hash)
    )
    assert len(broker.revoke_for_feed(world.feed_revoking([entry], NOW + 1), now=NOW + 1)) == 1
    rejects(lambda: broker.issue(a, "payments", now=NOW + 2), F.REVOKED)


def test_an_older_feed_does_not_replace_a_newer(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    newer = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.agent_a.identifier.digest)], NOW + 5
    )
    broker.revoke_for_feed(newer, now=NOW + 5)
    broker.revoke_for_feed(world.feed_revoking([], NOW + 1), now=NOW + 6)
    rejects(lambda: broker.issue(world.credential_a(), "payments", now=NOW + 7), F.REVOKED)


def test_revoked_identity_cannot_lease_racing_the_revocation(
    tmp_path: Path, world: LeaseWorld
) -> None:
    """Issuers keep issuing while the feed arrives: afterwards no lease of A is active."""
    broker = broker_for(tmp_path, world, quota=10_000)
    a = world.credential_a()
    feed = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.agent_a.identifier.digest)], NOW + 1
    )
    stop, started = threading.Event(), threading.Barrier(5)
    outcomes: list[str] = []

    def issue_loop() -> None:
        started.wait()
        while not stop.is_set():
            try:
                broker.issue(a, "payments", now=NOW + 1)
                outcomes.append("issued")
            except SecretError as exc:
                outcomes.append(exc.reason.name)
                if exc.reason is F.REVOKED:
                    return

    threads = [threading.Thread(target=issue_loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    while outcomes.count("issued") < 20:
        threading.Event().wait(0.001)
    broker.revoke_for_feed(feed, now=NOW + 1)
    stop.set()
    for thread in threads:
        thread.join()
    assert outcomes.count("issued") >= 20
    assert "REVOKED" in outcomes
    assert [lease for lease in broker.leases(a) if lease.state is LeaseState.ACTIVE] == []
    rejects(lambda: broker.issue(a, "payments", now=NOW + 2), F.REVOKED)


def test_operator_revokes_identity_and_handle(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    a, b = world.credential_a(), world.credential_b()
    for _ in range(3):
        broker.issue(a, "payments", now=NOW)
    lease_b = broker.issue(b, "payments", now=NOW).lease
    assert len(broker.revoke_identity(world.agent_a.identifier, now=NOW + 1)) == 3
    assert broker.revoke_lease(lease_b.handle, now=NOW + 1).state is LeaseState.REVOKED
    assert (
        broker.revoke_lease(lease_b.handle, now=NOW + 2).state is LeaseState.REVOKED
    )  # idempotent


# -- audit -------------------------------------------------------------------------------------


def test_every_operation_is_audited_with_hmacs(tmp_path: Path, world: LeaseWorld) -> None:
    broker = broker_for(tmp_path, world)
    a = world.credential_a()
    issued = broker.issue(a, "payments", ttl=10, now=NOW)
    _lease, renewed = broker.renew(a, issued.lease_id, now=NOW + 5)
    second = broker.issue(a, "payments", ttl=10, now=NOW)
    broker.revoke(a, second.lease_id, now=NOW + 6)
    rejects(
        lambda: broker.issue(world.credential_b(), "payments", scope=["x"], now=NOW), F.BAD_REQUEST
    )
    broker.sweep(NOW + 100)
    assert broker.audit_log is not None
    events = [event for _seq, event in broker.audit_log.read()]
    kinds = [event.kind for event in events]
    assert kinds == [
        AuditKind.PUT,
        AuditKind.ISSUE,
        AuditKind.RENEW,
        AuditKind.ISSUE,
        AuditKind.REVOKE,
        AuditKind.REVOKED,
        AuditKind.DENY,
        AuditKind.EXPIRE,
        AuditKind.REVOKED,
    ]
    token = str(issued.credential.reveal()["token"]).encode()
    assert events[1].digest == broker.keys.hasher.digest(token) != sha256(token)
    assert events[2].digest == broker.keys.hasher.digest(str(renewed.reveal()["token"]).encode())
    assert events[7].lease == issued.lease.handle


def test_audit_failure_fails_the_operation(tmp_path: Path, world: LeaseWorld) -> None:
    class Failing:
        def __init__(self) -> None:
            self.fail = False
            self.events: list[AuditEvent] = []

        def append(self, event: AuditEvent) -> None:
            if self.fail:
                raise OSError("disk full")
            self.events.append(event)

    sink = Failing()
    broker = broker_for(tmp_path, world, audit=sink)
    a = world.credential_a()
    issued = broker.issue(a, "payments", now=NOW)
    sink.fail = True
    rejects(lambda: broker.issue(a, "payments", now=NOW), F.AUDIT_FAILED)
    rejects(lambda: broker.renew(a, issued.lease_id, now=NOW + 1), F.AUDIT_FAILED)
    rejects(lambda: broker.revoke(a, issued.lease_id, now=NOW + 1), F.AUDIT_FAILED)
    assert [lease.handle for lease in broker.leases(a)] == [issued.lease.handle]
    assert broker.leases(a)[0].state is LeaseState.ACTIVE
    assert broker.leases(a)[0].expires_at == issued.lease.expires_at
    sink.fail = False
    assert broker.revoke(a, issued.lease_id, now=NOW + 2).state is LeaseState.REVOKED


def test_audit_log_is_append_only(tmp_path: Path, world: LeaseWorld) -> None:
    from troth.errors import StorageError

    broker = broker_for(tmp_path, world)
    broker.issue(world.credential_a(), "payments", now=NOW)
    db = broker.store.db
    for statement in ("UPDATE secret_audit SET detail = 'x'", "DELETE FROM secret_audit"):
        with pytest.raises(StorageError, match="append-only"):
            db.execute(statement)
    assert isinstance(broker.audit_log, SqliteAuditLog)
    assert len(broker.audit_log.read()) == 2


# -- durability ---------------------------------------------------------------------------------


def test_leases_survive_a_restart_and_expired_ones_are_revoked(
    tmp_path: Path, world: LeaseWorld
) -> None:
    broker = broker_for(tmp_path, world)
    a = world.credential_a()
    short = broker.issue(a, "payments", ttl=10, now=NOW)
    long = broker.issue(a, "payments", ttl=600, now=NOW)
    broker.store.db.close()
    _db, reopened = open_broker(tmp_path / "node.db", now=NOW + 60, policy=allow_all(world))
    report = reopened.recover(NOW + 60)
    assert report.expired == 1
    assert report.failed == 0
    states = {lease.handle: lease.state for lease in reopened.leases(a, include_ended=True)}
    assert states == {short.lease.handle: LeaseState.REVOKED, long.lease.handle: LeaseState.ACTIVE}
    # the surviving lease is still the agent's: renew with the same lease id after the restart
    lease, _ = reopened.renew(a, long.lease_id, now=NOW + 61)
    assert lease.expires_at == NOW + 600
    assert CHAIN_TTL > 600


def test_a_refused_issue_names_every_credential_tried(tmp_path: Path, world: LeaseWorld) -> None:
    """The endpoint tries the caller's credentials in turn; when all are refused, the answer
    says why for each (not only the last one's reason, which hid the real cause)."""
    broker = broker_for(tmp_path, world, policy=AllowListPolicy({}))
    endpoint = BrokerEndpoint(broker)
    one, two = world.credential_a(), world.credential_a(NOW + 1)
    issue = IssueArgs("payments").to_wire()
    caller = BrokerCaller(world.agent_a.identifier, (one,))
    alone = endpoint.handle("issue", issue, caller, NOW + 1)
    assert alone == {"refused": "DENIED", "detail": 'Secret::"payments" is not on the allow list'}
    both = endpoint.handle("issue", issue, BrokerCaller(caller.identity, (one, two)), NOW + 1)
    assert both["refused"] == "DENIED"
    assert both["detail"] == (
        "none of the caller's 2 credentials may lease it (credential 1: "
        'Secret::"payments" is not on the allow list; credential 2: Secret::"payments" is not '
        "on the allow list)"
    )
    assert broker.leases(world.agent_a.identifier) == []


def test_an_authoritys_operator_revokes_only_leases_under_that_authority(
    tmp_path: Path, world: LeaseWorld
) -> None:
    """An operator made by one authority's credential cannot revoke the leases another
    authority's credentials justified (the node's operators, local callers, can)."""
    broker = broker_for(tmp_path, world)
    a = world.credential_a()
    broker.issue(a, "payments", now=NOW)
    other = Identifier(bytes(32))
    assert broker.revoke_identity(a.actor, now=NOW + 1, authorities=frozenset({other})) == []
    assert [lease.state for lease in broker.leases(a)] == [LeaseState.ACTIVE]
    revoked = broker.revoke_identity(a.actor, now=NOW + 1, authorities=frozenset({a.authority}))
    assert [lease.state for lease in revoked] == [LeaseState.REVOKED]
