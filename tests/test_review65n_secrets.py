"""Review 65n, the secret broker and its leases (docs/secrets.md):

- secrets 1: a lease asked for with an empty scope (`scope=[]`, on the wire `"scope": []`) of a
  secret that offers scopes was granted: every policy of the documented shape
  (`["refunds"].containsAll(context.scope)`) allows the empty set, and the token minted said
  `"scope": ""`, which a relying party that reads "no scope claim" as "no restriction" takes
  for everything. An empty scope is now refused (BAD_REQUEST); asking for none (`scope=None`)
  still means every scope the secret offers.
- secrets 2: `Node.secrets.jwks()` on a node that is not a broker made the broker's tables,
  its seal and audit keys and a token signing key in the node's vault, and published that
  key: a JWKS of a broker that does not exist. It now refuses (SecretError NOT_CONFIGURED),
  nothing made. (`rotate_key` still makes the keys it is asked to rotate: an operator's
  explicit act, which `troth secret rotate-key` tests rely on.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.brokers import PAYMENTS
from tests.support.leases import LeaseWorld, make_world, open_broker
from tests.support.public_api import Agents, acme_and_agents
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, Broker
from troth.secrets.wire import IssueArgs

SUPPORT_LEASES = """\
@id("support-refunds") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("orders.access") && ["refunds"].containsAll(context.scope) };
"""


@pytest.fixture
def lease_world() -> LeaseWorld:
    return make_world(NOW)


def _broker(tmp_path: Path, world: LeaseWorld) -> Broker:
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": ["refunds"]}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", PAYMENTS, b"", now=NOW)
    return broker


def test_secrets_1_an_empty_scope_is_refused(tmp_path: Path, lease_world: LeaseWorld) -> None:
    broker = _broker(tmp_path, lease_world)
    try:
        with pytest.raises(SecretError) as empty:
            broker.issue(lease_world.credential_b(), "payments", now=NOW, scope=[])
        assert empty.value.reason is SecretFailure.BAD_REQUEST
        assert "scope" in empty.value.detail
        # as the broker's wire carries it
        args = IssueArgs.from_wire({"secret": "payments", "scope": [], "ttl": None})
        with pytest.raises(SecretError) as wired:
            broker.issue(lease_world.credential_b(), args.secret, now=NOW, scope=args.scope)
        assert wired.value.reason is SecretFailure.BAD_REQUEST
        # the scopes the policy grants still lease
        issued = broker.issue(lease_world.credential_b(), "payments", now=NOW, scope=["refunds"])
        assert issued.lease.scope == ("refunds",)
    finally:
        broker.close()


def test_secrets_1_a_secret_offering_no_scope_still_leases_it(
    tmp_path: Path, lease_world: LeaseWorld
) -> None:
    policy = AllowListPolicy({lease_world.agent_b.identifier: {"bare": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    try:
        broker.put_secret("bare", "token", {"ttl": 60, "audience": "bare"}, b"", now=NOW)
        asked: list[str] | None
        for asked in (None, []):
            issued = broker.issue(lease_world.credential_b(), "bare", now=NOW, scope=asked)
            assert issued.lease.scope == ()
    finally:
        broker.close()


@pytest.fixture
def world() -> Iterator[Agents]:
    with acme_and_agents() as made:
        made.hub.secrets.put("payments", engine="token", config=PAYMENTS)
        made.hub.policies.publish(policies=SUPPORT_LEASES, tools={}, revision=1)
        yield made


def test_secrets_1_the_api_refuses_an_empty_scope_before_sending(world: Agents) -> None:
    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            with pytest.raises(troth.ArgumentError) as empty:
                await world.agents.secrets.lease(
                    "payments",
                    holder="support",
                    broker=running.address,
                    expect=running.identifier,
                    scope=[],
                )
            assert "scope" in str(empty.value)

    asyncio.run(main())


def test_secrets_2_a_node_that_is_no_broker_publishes_no_jwks(world: Agents) -> None:
    with pytest.raises(troth.SecretError) as refused:
        world.agents.secrets.jwks()
    assert refused.value.reason is troth.SecretFailure.NOT_CONFIGURED
    assert "not a broker" in refused.value.detail
    with pytest.raises(troth.SecretError):  # and asked again: still none (none was made)
        world.agents.secrets.jwks()
    # the broker's keys are what they were (none made on the agents' node, the hub's intact)
    assert len(world.hub.secrets.jwks()["keys"]) == 1
