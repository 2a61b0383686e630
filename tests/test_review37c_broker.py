"""Review 37c, broker: whose policy bundles may grant leases of the host's secrets.

A node trusts every authority it enrolls with, and the served broker's lease policy is the
gates' decision point: the bundle in force for the *caller's* authority decides (docs/secrets.md,
"Policy"). So a hub hosting acme that enrolled with globex (to use globex's services) let
globex's bundle decide globex's members' leases of the hub's own secrets: a permit-all bundle
globex pushed leased them acme's secrets.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.brokers import PAYMENTS, client, run_broker
from tests.support.nodes import MemNet, globex_over_tcp
from tests.test_review36c_services import globex_member, push_to_hub
from troth.authority import Authority
from troth.errors import SecretError, SecretFailure
from troth.gates import create_bundle
from troth.node.runtime import NodeRuntime

LEASE_ANYTHING = '@id("all") permit(principal, action == Action::"lease", resource);\n'


def globex_leases(node: NodeRuntime, globex: Authority, now: int) -> bytes:
    """globex's bundle (signed by globex) permitting every lease to everyone."""
    return create_bundle(
        node.node.identities.signer("globex", now=now),
        authority=globex.identifier,
        policies=LEASE_ANYTHING,
        schema="",
        tools={},
        revision=1,
        now=now,
        ttl=3600,
    )


async def globex_on_hub(net: MemNet) -> tuple[NodeRuntime, Authority]:
    """globex, trusted by the hub, its permit-all lease bundle in force there."""
    assert net.hub is not None
    globex_node, globex, ticket = await globex_over_tcp(net)
    await net.hub.enroll(ticket, "hub")  # the hub trusts globex from now on
    await push_to_hub(globex_node, globex_leases(globex_node, globex, net.clock.now()))
    assert net.hub.policies.held(globex.identifier) is not None
    return globex_node, globex


@pytest.mark.xfail(
    strict=True,
    reason="review 37c, broker 1: a co-trusted authority's bundle grants its members the "
    "host's secrets",
)
def test_a_co_trusted_authoritys_bundle_grants_none_of_the_hosts_secrets(
    tmp_path: Path,
) -> None:
    """Broker 1. The hub hosts acme and keeps the `payments` secret (stored with no
    authorities named: the hub's own). It enrolls with globex, whose bundle permits every
    lease. A globex member asks for `payments`: it was leased it, under globex's bundle, with
    nothing the hub's operator could set to prevent it. Now refused DENIED, the reason saying
    the secret is not grantable under globex's bundles; nothing is leased; acme's own support
    agent, the control, still is."""

    async def test(net: MemNet) -> None:
        _node, globex = await globex_on_hub(net)
        mallory = await globex_member(net, globex, "mallory")
        with pytest.raises(SecretError) as refused:
            await client(mallory).issue("payments", scope=("refunds",), ttl=120)
        assert refused.value.reason is SecretFailure.DENIED
        assert f"not grantable under the bundles of {globex.identifier}" in str(refused.value)
        assert await client(mallory).leases() == []
        agent = await net.member("support", **{"agents.team": "support"})
        issued = await client(agent).issue("payments", scope=("refunds",), ttl=120)
        assert issued.lease.authority == net.authority.identifier

    run_broker(test, tmp_path)
