"""Review 49e, secrets broker: attacks tried that the code refused (each passes as written).

- a token, a renewal and a forward at exactly the lease's expiry (`now == expires_at`);
- a renewal widening a token's scope after the operator widened the secret's scopes;
- the orphan sweep's removals, now spread over several sweeps (review 49e, orphans 1), never
  naming the object of a lease issued between its listing and its removals.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, HttpRequest, LeaseState
from troth.secrets.engine import Grant, SecretSpec
from troth.secrets.lease import LeaseCredential, SecretValue

TOKEN = {"scopes": ["read", "write"], "ttl": 60, "max_ttl": 600, "audience": "payments"}
INJECT = {
    "scopes": ["read"],
    "ttl": 60,
    "upstream": "http://127.0.0.1:9",
    "header": "Authorization",
    "rules": [{"methods": ["GET"], "path": "/**"}],
}


def test_a_token_renewal_and_forward_at_exactly_the_expiry_are_refused(tmp_path: Path) -> None:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None, "api": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW)
    broker.put_secret("api", "http-inject", INJECT, b"Bearer upstream-secret-1", now=NOW)
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", now=NOW)
    token = str(issued.credential.reveal()["token"])
    end = issued.lease.expires_at
    broker.validate_token(token, audience="payments", now=end - 1)
    with pytest.raises(SecretError) as caught:
        broker.validate_token(token, audience="payments", now=end)
    assert caught.value.reason is SecretFailure.EXPIRED
    with pytest.raises(SecretError) as renewed:
        broker.renew(credential, issued.lease_id, now=end)
    assert renewed.value.reason is SecretFailure.EXPIRED
    forwarding = broker.issue(credential, "api", now=NOW)
    with pytest.raises(SecretError) as forwarded:
        broker.prepare_forward(
            credential,
            forwarding.lease_id,
            HttpRequest("GET", "/x"),
            now=forwarding.lease.expires_at,
        )
    assert forwarded.value.reason is SecretFailure.EXPIRED


def test_a_renewal_keeps_the_leases_scope_when_the_secret_offers_more(tmp_path: Path) -> None:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", {**TOKEN, "scopes": ["read"]}, b"", now=NOW)
    credential = world.credential_a()
    issued = broker.issue(credential, "payments", now=NOW)
    broker.put_secret("payments", "token", TOKEN, b"", now=NOW + 1)  # now offers write too
    _lease, made = broker.renew(credential, issued.lease_id, now=NOW + 2)
    validated = broker.validate_token(str(made.reveal()["token"]), audience="payments", now=NOW + 3)
    assert validated.scope == ("read",)


class _Server(RemoteStub):
    """A remote engine whose one server holds `roles`: issue creates the lease's, revoke drops
    it, the listing names them all."""

    def __init__(self) -> None:
        super().__init__()
        self.roles: set[str] = set()

    def issue(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        self.roles.add(grant.engine_ref or "")
        return super().issue(grant, upstream)

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        super().revoke(spec, ref, upstream)
        self.roles.discard(ref or "")

    def upstream_refs(self, spec: SecretSpec, upstream: SecretValue) -> set[str]:
        return set(self.roles)


def test_orphans_removed_over_several_sweeps_never_name_a_lease_issued_between(
    tmp_path: Path,
) -> None:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"db": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    engine = _Server()
    broker.engines[engine.kind] = engine
    broker.put_secret("db", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    orphans = {f"role_orphan_{n:03}" for n in range(200)}
    engine.roles |= orphans
    credential = world.credential_a()
    broker.sweep(NOW)  # listed: most of the orphans are left for the next sweeps
    assert engine.roles & orphans
    live = [broker.issue(credential, "db", now=NOW + 1 + n) for n in range(5)]
    for n in range(20):
        broker.sweep(NOW + 5 * (n + 1))
    assert not engine.roles & orphans
    for issued in live:
        lease = broker.book.lease(issued.lease.handle)
        assert lease is not None
        assert lease.state is LeaseState.ACTIVE
        assert issued.lease.engine_ref in engine.roles
