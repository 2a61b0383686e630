"""Review 30b, leases: what the library broker (`troth.secrets.Broker`) does with a lease when
the caller presents another credential than the one it was issued under."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import LeaseWorld, make_world, open_broker
from troth.credentials import RevocationKind
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, AuditKind, Broker, HttpRequest, LeaseState
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.wire import IssueArgs

F = SecretFailure
TOKEN = {"scopes": ["refunds"], "ttl": 60, "max_ttl": 600, "audience": "payments"}
INJECT = {
    "scopes": ["orders"],
    "ttl": 60,
    "max_ttl": 600,
    "upstream": "http://127.0.0.1:9/api",  # never called: prepare_forward sends nothing
    "header": "Authorization",
    "rules": [{"methods": ["GET"], "path": "/v1/orders/*"}],
}


def broker_with(tmp_path: Path, world: LeaseWorld) -> Broker:
    policy = AllowListPolicy(
        {
            world.agent_a.identifier: {"payments": None, "orders-api": None},
            world.agent_b.identifier: {"payments": None},
        }
    )
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    broker.put_secret("orders-api", "http-inject", INJECT, b"Bearer sk_upstream_1", now=NOW)
    return broker


@pytest.fixture
def world() -> LeaseWorld:
    return make_world(NOW)


def test_a_renewal_presents_the_chain_the_lease_was_issued_under(
    tmp_path: Path, world: LeaseWorld
) -> None:
    """Review 30b, leases 1 (was a strict xfail until `LeaseBook.renew` refused a credential
    whose chain is not the lease's: EXPIRED, as the served broker answers). A lease issued
    under A's member credential, renewed with its delegated chain: the new token's `act` named
    the orchestrator and the user, yet the lease stayed filed under the member chain, so the
    feed revoking the orchestrator left the lease ACTIVE and that token valid at the broker."""
    broker = broker_with(tmp_path, world)
    issued = broker.issue(world.member_credential(world.agent_a), "payments", now=NOW)
    with pytest.raises(SecretError) as caught:
        broker.renew(world.credential_a(), issued.lease_id, now=NOW + 10)
    assert caught.value.reason is F.EXPIRED
    assert "issued under" in caught.value.detail
    # the refusal changed nothing: the lease still ends when it did, and a revocation of the
    # orchestrator (who never justified it) leaves it alone
    lease = broker.leases(world.agent_a.identifier)[0]
    assert (lease.state, lease.expires_at) == (LeaseState.ACTIVE, NOW + 60)
    feed = world.feed_revoking(
        [(int(RevocationKind.IDENTITY), world.orchestrator.identifier.digest)], NOW + 11
    )
    assert broker.revoke_for_feed(feed, now=NOW + 11) == []
    token = str(issued.credential.reveal()["token"])
    assert broker.validate_token(token, audience="payments", now=NOW + 12).actors == ()


def test_a_forward_presents_the_chain_the_lease_was_issued_under(
    tmp_path: Path, world: LeaseWorld
) -> None:
    """Review 30b, leases 1 (was a strict xfail until `LeaseBook.active_lease` refused a
    credential whose chain is not the lease's). An http-inject lease issued under A's member
    credential was used under its delegated chain: the `use` record counted for the user's
    member (the delegated chain's root), not for A, under whom the lease is filed."""
    broker = broker_with(tmp_path, world)
    direct = world.member_credential(world.agent_a)
    issued = broker.issue(direct, "orders-api", now=NOW)
    request = HttpRequest("GET", "/v1/orders/1", (), b"")
    with pytest.raises(SecretError) as caught:
        broker.prepare_forward(world.credential_a(), issued.lease_id, request, now=NOW + 1)
    assert caught.value.reason is F.EXPIRED
    assert "issued under" in caught.value.detail
    # under its own chain the same forward is prepared (nothing is sent here)
    broker.prepare_forward(direct, issued.lease_id, request, now=NOW + 2)


def test_the_served_broker_audits_a_refused_renewal_or_forward(
    tmp_path: Path, world: LeaseWorld
) -> None:
    """Review 30b, leases 2 (was a strict xfail until `BrokerEndpoint._justifying` left the
    refusal to the broker, passing the caller's first current credential). The endpoint
    looked up the credential a lease was issued under
    itself and refused, unaudited, a renewal or forward with another identity's lease id (a
    stolen one: NO_SUCH_LEASE) or under a credential no longer current (EXPIRED), where the
    library audits both: a thief trying stolen lease ids at the served broker left no
    `deny` record ("every refusal is audited", docs/secrets.md)."""
    broker = broker_with(tmp_path, world)
    endpoint = BrokerEndpoint(broker)
    a = BrokerCaller(world.agent_a.identifier, (world.credential_a(),))
    issued = endpoint.handle("issue", IssueArgs("payments").to_wire(), a, NOW)
    stolen = {"lease_id": issued["lease_id"], "ttl": None}
    thief = BrokerCaller(world.agent_b.identifier, (world.credential_b(),))
    refreshed = BrokerCaller(world.agent_a.identifier, (world.member_credential(world.agent_a),))
    answers = [
        endpoint.handle("renew", stolen, thief, NOW + 1),
        endpoint.handle("renew", stolen, refreshed, NOW + 2),
    ]
    assert [answer["refused"] for answer in answers] == ["NO_SUCH_LEASE", "EXPIRED"]
    assert broker.audit_log is not None
    denials = [
        (event.at, event.identity)
        for _seq, event in broker.audit_log.read()
        if event.kind is AuditKind.DENY
    ]
    assert denials == [
        (NOW + 1, world.agent_b.identifier),
        (NOW + 2, world.agent_a.identifier),
    ]


def test_a_renewal_keeps_to_the_secrets_max_ttl_as_stored_now(
    tmp_path: Path, world: LeaseWorld
) -> None:
    """Review 30b, leases 3 (was a strict xfail until `LeaseBook.renew` also kept to the
    secret's max_ttl as stored now). A renewal was bounded by the max_ttl the lease was issued with
    (its ttl and its cap): an operator who lowered the secret's max_ttl with `put_secret`
    (from 600 s to 120 s, say after an incident) left every open lease renewable for the
    old 600 s, where withdrawing a scope stops the renewal at once."""
    broker = broker_with(tmp_path, world)
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", now=NOW)
    assert issued.lease.cap_at == NOW + 600
    broker.put_secret("payments", "token", {**TOKEN, "max_ttl": 120}, b"", now=NOW + 1)
    with pytest.raises(SecretError) as caught:
        broker.renew(credential, issued.lease_id, ttl=600, now=NOW + 50)
    assert caught.value.reason is F.BAD_REQUEST
    assert caught.value.detail == "ttl must be 1-120 seconds"
    lease, _token = broker.renew(credential, issued.lease_id, now=NOW + 50)
    assert lease.expires_at == NOW + 110  # its ttl, 60 s
    lease, _token = broker.renew(credential, issued.lease_id, now=NOW + 100)
    assert lease.expires_at == NOW + 120  # issued_at + the max_ttl stored now
