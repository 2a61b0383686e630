"""Review 37c, broker: whose policy bundles may grant leases of the host's secrets.

A node trusts every authority it enrolls with, and the served broker's lease policy is the
gates' decision point: the bundle in force for the *caller's* authority decides (docs/secrets.md,
"Policy"). So a hub hosting acme that enrolled with globex (to use globex's services) let
globex's bundle decide globex's members' leases of the hub's own secrets: a permit-all bundle
globex pushed leased them acme's secrets.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.brokers import PAYMENTS, client, run_broker
from tests.support.cotrust import make_cotrust, member_chain
from tests.support.gates import POLICIES, T
from tests.support.leases import open_broker
from tests.support.nodes import MemNet, globex_over_tcp
from tests.test_cli_secrets import Session, session  # noqa: F401 (the fixture)
from tests.test_review36c_services import globex_member, push_to_hub
from troth.authority import Authority
from troth.credentials import Attributes
from troth.errors import SecretError, SecretFailure
from troth.gates import create_bundle
from troth.identity import Identifier
from troth.node.runtime import NodeRuntime
from troth.node.services.broker import put_secret
from troth.secrets import AllowListPolicy, GatesLeasePolicy

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


def test_a_co_trusted_authoritys_bundle_grants_none_of_the_hosts_secrets(
    tmp_path: Path,
) -> None:
    """Broker 1. The hub hosts acme and keeps the `payments` secret (stored with no
    authorities named: the hub's own). It enrolls with globex, whose bundle permits every
    lease. A globex member asks for `payments`: it was leased it, under globex's bundle, with
    nothing the hub's operator could set to prevent it. Now refused DENIED, the reason saying
    the secret is not grantable under globex's bundles; nothing is leased; acme's own support
    agent, the control, still is. Was a strict xfail until each secret recorded the
    authorities whose bundles may grant it (`grantable_by`; default, on the served broker:
    the authority the node hosts, `NodeTrust.own_authorities`) and `GatesLeasePolicy`
    denied a credential of any other before its bundle was asked."""

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


async def put_on(
    runtime: NodeRuntime, name: str, config: dict[str, Any], *named: Identifier
) -> Any:
    """`troth secret put` on a running node (a second broker over its database, off its loop)."""
    data = json.dumps(config).encode()
    return await asyncio.to_thread(
        put_secret, runtime.node, name, "token", data, b"", now=runtime.clock.now(),
        grantable_by=named,
    )  # fmt: skip


def test_the_operator_names_the_authorities_that_grant_a_secret(tmp_path: Path) -> None:
    """The hub's operator re-stores `payments` grantable by acme and globex: globex's member is
    leased it under globex's bundle (the lease filed under globex), acme's agent under acme's.
    Re-stored grantable by acme alone, the globex lease's renewal is refused DENIED as not
    grantable (it lives at most to its expiry), and a new issue too."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        _node, globex = await globex_on_hub(net)
        acme = net.authority.identifier
        both = await put_on(net.hub, "payments", PAYMENTS, acme, globex.identifier)
        assert sorted(both["grantable_by"]) == sorted([str(acme), str(globex.identifier)])
        mallory = await globex_member(net, globex, "mallory")
        issued = await client(mallory).issue("payments", scope=("refunds",), ttl=120)
        assert issued.lease.authority == globex.identifier
        agent = await net.member("support", **{"agents.team": "support"})
        mine = await client(agent).issue("payments", scope=("refunds",), ttl=120)
        assert mine.lease.authority == acme

        only = await put_on(net.hub, "payments", PAYMENTS, acme)
        assert only["grantable_by"] == [str(acme)]
        with pytest.raises(SecretError) as refused:
            await client(mallory).renew(issued.lease_id)
        assert refused.value.reason is SecretFailure.DENIED
        assert "not grantable under the bundles of" in str(refused.value)
        with pytest.raises(SecretError) as refused:
            await client(mallory).issue("payments", scope=("refunds",), ttl=120)
        assert refused.value.reason is SecretFailure.DENIED
        await client(agent).renew(mine.lease_id)  # acme's own: renewed as before

    run_broker(test, tmp_path)


def test_a_node_hosting_none_records_the_one_authority_it_trusts(tmp_path: Path) -> None:
    """A node hosting no authority, enrolled with globex alone, stores a secret naming none:
    globex is recorded (so the node's later enrollments grant it nothing); named explicitly,
    the named one is kept as given."""

    async def test(net: MemNet) -> None:
        _node, globex, _ticket = await globex_over_tcp(net)
        desk = await globex_member(net, globex, "desk")
        stored = await put_on(desk, "keys", PAYMENTS)
        assert stored["grantable_by"] == [str(globex.identifier)]
        acme = net.authority.identifier
        named = await put_on(desk, "keys", {**PAYMENTS, "grantable_by": [str(acme)]})
        assert named["grantable_by"] == [str(acme)]

    run_broker(test, tmp_path)


LEASES = (
    '@id("lease") permit(principal, action == Action::"lease", resource == Secret::"payments");\n'
)
WRITE = Attributes({"orders.access": frozenset({"read", "write"})})


def test_a_secrets_grantable_by_binds_every_lease_policy(tmp_path: Path) -> None:
    """Library level: a secret naming acme in `grantable_by` is not leased to a globex member
    under globex's permit (`GatesLeasePolicy`, even with no `grantors`) nor under an allow
    list naming it; acme's support agent is. A malformed `grantable_by` is CONFIG_INVALID."""
    co = make_cotrust()
    mallory = co.party()
    member = co.credential(member_chain(co.globex, mallory, WRITE), mallory)
    support = co.credential(co.acme.support_chain, co.acme.support)
    acme = co.acme.authority.identifier
    config = {**PAYMENTS, "grantable_by": [str(acme)]}
    point = co.point(co.store(co.acme.bundle(policies=POLICIES + LEASES), co.globex_bundle(LEASES)))
    _db, broker = open_broker(tmp_path / "node.db", now=T, policy=GatesLeasePolicy(point))
    broker.put_secret("payments", "token", config, b"", now=T)
    with pytest.raises(SecretError) as refused:
        broker.issue(member, "payments", scope=("refunds",), ttl=120, now=T + 10)
    assert refused.value.reason is SecretFailure.DENIED
    assert f"not grantable under the bundles of {co.globex.identifier}" in str(refused.value)
    assert broker.issue(support, "payments", scope=("refunds",), ttl=120, now=T + 10)

    listed = AllowListPolicy({mallory.identifier: {"payments": None}})
    _db2, allow = open_broker(tmp_path / "allow.db", now=T, policy=listed)
    allow.put_secret("payments", "token", config, b"", now=T)
    with pytest.raises(SecretError) as refused:
        allow.issue(member, "payments", scope=("refunds",), ttl=120, now=T + 10)
    assert "not grantable under the bundles of" in str(refused.value)

    for bad in (["acme"], "x", [1], ["did:troth:00"]):
        with pytest.raises(SecretError) as invalid:
            broker.put_secret("other", "token", {**PAYMENTS, "grantable_by": bad}, b"", now=T)
        assert invalid.value.reason is SecretFailure.CONFIG_INVALID
        assert "grantable_by" in str(invalid.value)


def test_secret_put_names_the_authorities_that_grant_it(
    session: Session,  # noqa: F811 - the fixture of tests/test_cli_secrets.py
    tmp_path: Path,
) -> None:
    """`troth secret put --grantable-by` takes an identifier or a local authority's name
    (repeatable); naming none on a node hosting one records none (the hosted one grants it);
    a malformed identifier is refused with the config's reason, nothing stored."""
    hub = session.json("authority", "create", "hub")["identifier"]
    other = str(make_cotrust().globex.identifier)
    (tmp_path / "p.json").write_text(json.dumps(PAYMENTS))
    put = ("secret", "put", "payments", "--engine", "token", "--config", str(tmp_path / "p.json"))
    plain = session.json(*put, "--node", "hub")
    assert plain["grantable_by"] == []
    named = session.json(*put, "--grantable-by", "hub", "--grantable-by", other, "--node", "hub")
    assert sorted(named["grantable_by"]) == sorted([hub, other])
    (tmp_path / "bad.json").write_text(json.dumps({**PAYMENTS, "grantable_by": ["globex"]}))
    bad = ("secret", "put", "bad", "--engine", "token", "--config", str(tmp_path / "bad.json"))
    refused = session.run(*bad, "--node", "hub", code=1)
    assert "grantable_by" in refused.output
