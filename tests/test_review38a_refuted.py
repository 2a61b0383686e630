"""Review 38a: cross-authority attacks on a hub hosting acme and trusting globex that found
nothing, kept where they pin a useful property."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.brokers import PAYMENTS, client, run_broker
from tests.support.cotrust import make_cotrust
from tests.support.gates import POLICIES, T
from tests.support.leases import open_broker
from tests.support.mcp_orders import orders_server
from tests.support.nodes import HUB, MemNet, globex_over_tcp, run_memnet
from tests.test_review36c_services import globex_member
from tests.test_review37c_broker import LEASES, globex_on_hub
from troth import limits
from troth.credentials import Attributes
from troth.errors import ConflictError, SecretError, SecretFailure
from troth.node.services.mcp import McpService, publish_upstream
from troth.secrets import GatesLeasePolicy


def test_a_lease_follows_the_root_of_the_chain_not_the_members_authority(
    tmp_path: Path,
) -> None:
    """A globex member (globex's bundle permits every lease) holds a delegation from acme's
    support member alice. `payments` is grantable by acme only (the default). Its globex chain
    is refused as not grantable, its acme-rooted chain is leased under acme's bundle: the
    lease is filed under acme and under alice's account (the member at the chain's root), so
    acme's own policies, revocations and quota decide it; globex's permit counts for nothing.
    A chain cannot mix authorities: a link's issuer is the previous link's subject, and the
    chain's authority is its root's (the grant an acme member made is acme's to judge)."""

    async def test(net: MemNet) -> None:
        _node, globex = await globex_on_hub(net)
        mallory = await globex_member(net, globex, "mallory")
        alice = await net.member("alice", **{"agents.team": "support"})
        now = net.clock.now()
        assert mallory.identifier is not None
        assert alice.identifier is not None
        chain = alice.node.wallet.delegate(
            "alice",
            to=mallory.identifier,
            attributes=Attributes({"agents.team": "support"}),
            now=now,
            ttl=600,
            purpose="refunds",
        )
        mallory.node.wallet.hold("mallory", chain, now=now)
        mallory.node.wallet.trust(net.authority.identifier, HUB, now=now)  # shows acme's chain
        await mallory.refresh_feeds()
        issued = await client(mallory).issue("payments", scope=("refunds",), ttl=120)
        assert issued.lease.authority == net.authority.identifier
        assert issued.lease.identity == mallory.identifier
        with pytest.raises(SecretError) as refused:  # a scope acme's bundle does not permit
            await client(mallory).issue("payments", scope=("charges",), ttl=120)
        assert refused.value.reason is SecretFailure.DENIED
        assert "none of the caller's 2 credentials may lease it" in str(refused.value)
        assert f"not grantable under the bundles of {globex.identifier}" in str(refused.value)

    run_broker(test, tmp_path)


def test_a_published_server_keeps_its_grantors_while_published(tmp_path: Path) -> None:
    """`mcp serve` of a name already published, naming other authorities (globex), is refused
    (`ConflictError`) before anything starts: the open server's grantors stay the hub's own
    (acme), whatever sessions are open; nothing re-publishes a server in place."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        first = await publish_upstream(hub, "orders", orders_server())
        assert first["grantable_by"] == [str(net.authority.identifier)]
        _node, globex, ticket = await globex_over_tcp(net)
        await hub.enroll(ticket, "hub")
        with pytest.raises(ConflictError, match="already published"):
            await publish_upstream(
                hub, "orders", orders_server(), grantable_by=(globex.identifier,)
            )
        service = hub.host.services["mcp.orders"]
        assert isinstance(service, McpService)
        assert service.grantors is not None
        assert service.grantors() == frozenset({net.authority.identifier})

    run_memnet(test, tmp_path)


def test_grantable_by_is_bounded_and_deduplicated(tmp_path: Path) -> None:
    """`grantable_by` names at most MAX_SECRET_GRANTORS entries (17 distinct ones are
    CONFIG_INVALID, naming the limit), is kept distinct, and an authority the node does not
    trust may be named (its credentials never verify, so it grants nothing) beside the one
    that grants."""
    co = make_cotrust()
    point = co.point(co.store(co.acme.bundle(policies=POLICIES + LEASES)))
    _db, broker = open_broker(tmp_path / "node.db", now=T, policy=GatesLeasePolicy(point))
    many = [str(co.party().identifier) for _ in range(limits.MAX_SECRET_GRANTORS + 1)]
    with pytest.raises(SecretError) as refused:
        broker.put_secret("wide", "token", {**PAYMENTS, "grantable_by": many}, b"", now=T)
    assert refused.value.reason is SecretFailure.CONFIG_INVALID
    assert f"at most {limits.MAX_SECRET_GRANTORS} authorities" in str(refused.value)
    acme = co.acme.authority.identifier
    stranger = co.party().identifier  # no node trusts it
    named = [str(acme), str(stranger), str(acme)]
    spec = broker.put_secret("payments", "token", {**PAYMENTS, "grantable_by": named}, b"", now=T)
    assert set(spec.grantable_by) == {acme, stranger}
    assert len(spec.grantable_by) == 2
    support = co.credential(co.acme.support_chain, co.acme.support)
    assert broker.issue(support, "payments", scope=("refunds",), ttl=120, now=T + 10)
