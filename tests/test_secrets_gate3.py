"""Gate 3: a tool that declares a secret gets a lease of it for the caller at invocation — the
Cedar `lease` decision through the same bundle as the call — reused while it is the same
identity, chain, secret and scope with enough time left; a refused lease denies the call with
a readable reason and the tool never runs; the same over a secure channel to a served broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.brokers import client, run_broker
from tests.support.gates import POLICIES, TOOLS, T, make_world
from tests.support.leases import open_broker
from tests.support.nodes import MemNet
from troth.clock import FixedClock
from troth.credentials import RevocationKind
from troth.errors import ConfigError
from troth.gates import Outcome, Tool, ToolGate, create_bundle
from troth.secrets import (
    GatesLeasePolicy,
    LocalLeases,
    SecretNeed,
    ToolLease,
    ToolLeases,
    needs_secret,
    secret_need,
    validate_token,
)
from troth.secrets.toolgate import DEFAULT_MIN_LEFT

LEASES = """\
@id("lease-refunds") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("orders.access") && principal.getTag("orders.access").contains("write")
         && ["refunds"].containsAll(context.scope) && context.ttl <= 300 };
"""
PAYMENTS = {"scopes": ["refunds", "charges"], "ttl": 120, "max_ttl": 600, "audience": "payments"}


@needs_secret("payments", scope=["refunds"], ttl=120)
def refund(order_id: str, amount: int, *, lease: ToolLease) -> str:
    """Refund part of an order."""
    return f"refunded {amount} on {order_id} with {lease.token}"


def lookup_order(order_id: str) -> str:
    """Look up an order."""
    return f"order {order_id}"


class Setup:
    def __init__(self, tmp_path: Path, *, policies: str = POLICIES + LEASES) -> None:
        self.world = make_world()
        bundle = create_bundle(
            self.world.authority.signer,
            authority=self.world.authority.identifier,
            policies=policies,
            schema="",
            tools=TOOLS,
            revision=1,
            now=T,
            ttl=86_400,
        )
        self.clock = FixedClock(T + 10)
        self.point = self.world.point(self.world.store(bundle))
        _db, self.broker = open_broker(
            tmp_path / "node.db", now=T, policy=GatesLeasePolicy(self.point)
        )
        self.broker.put_secret("payments", "token", PAYMENTS, b"", now=T)
        tools = [Tool.from_function(refund), Tool.from_function(lookup_order)]
        self.leases = ToolLeases.for_tools(LocalLeases(self.broker), tools, clock=self.clock)
        self.gate = ToolGate(self.point, tools, clock=self.clock, leases=self.leases)
        self.support = self.world.credential(self.world.support_chain, self.world.support)
        self.sub = self.world.credential(self.world.sub_chain, self.world.sub)


def token_of(result: str) -> str:
    return result.rsplit(" ", 1)[1]


def test_the_tool_declares_its_secret_and_gets_a_scoped_token(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    assert secret_need(refund) == SecretNeed("payments", ("refunds",), 120)
    assert set(setup.leases.needs) == {"refund"}
    result = setup.gate.invoke(setup.support, "refund", {"order_id": "4471", "amount": 20})
    assert result.allowed
    token = validate_token(
        token_of(result.value), setup.broker.jwks(T + 10), audience="payments", now=T + 10
    )
    assert token.scope == ("refunds",)
    assert token.expires_at == T + 10 + 120
    assert token.subject == setup.world.support.identifier.did
    assert setup.gate.invoke(setup.support, "lookup_order", {"order_id": "4471"}).allowed
    assert len(setup.broker.leases(setup.support)) == 1  # lookup_order needs no secret


def test_a_live_lease_is_reused_until_it_runs_short_or_is_revoked(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    args = {"order_id": "4471", "amount": 20}
    first = token_of(setup.gate.invoke(setup.support, "refund", args).value)
    setup.clock.advance(120 - DEFAULT_MIN_LEFT - 1)
    second = token_of(setup.gate.invoke(setup.support, "refund", args).value)
    assert second == first  # same identity, chain, secret, scope; enough left
    setup.clock.advance(2)  # now less than min_left remains
    third = token_of(setup.gate.invoke(setup.support, "refund", args).value)
    assert third != first
    (live,) = [lease for lease in setup.broker.leases(setup.support) if lease.live_at(T + 200)]
    setup.broker.revoke_lease(live.handle, now=setup.clock.now())
    fourth = token_of(setup.gate.invoke(setup.support, "refund", args).value)
    assert fourth not in (first, third)
    assert len(setup.broker.leases(setup.support, include_ended=True)) == 3


def test_a_refused_lease_denies_the_call_and_the_tool_never_runs(tmp_path: Path) -> None:
    setup = Setup(tmp_path, policies=POLICIES)  # the bundle permits the call, not the lease
    ran: list[str] = []

    @needs_secret("payments", scope=["refunds"])
    def refund(order_id: str, amount: int, *, lease: ToolLease) -> str:
        ran.append(order_id)
        return "refunded"

    tools = [Tool.from_function(refund)]
    gate = ToolGate(
        setup.point,
        tools,
        clock=setup.clock,
        leases=ToolLeases.for_tools(LocalLeases(setup.broker), tools, clock=setup.clock),
    )
    result = gate.invoke(setup.support, "refund", {"order_id": "4471", "amount": 20})
    assert not result.allowed
    assert result.decision.outcome is Outcome.LEASE_DENIED
    assert result.decision.reason.startswith("denied: no lease of secret payments: ")
    assert "no policy permits" in result.decision.reason
    assert ran == []


def test_the_lease_follows_the_feed_of_the_callers_chain(tmp_path: Path) -> None:
    """The support agent's credential is revoked between two calls: gate 2 denies the second,
    and the broker refuses it a lease too (it re-checks the chain against the newest feed)."""
    setup = Setup(tmp_path)
    args = {"order_id": "4471", "amount": 20}
    assert setup.gate.invoke(setup.support, "refund", args).allowed
    setup.world.revoke(int(RevocationKind.IDENTITY), setup.world.support.identifier.digest, T + 20)
    setup.broker.revoke_for_feed(setup.world.feed, now=T + 20)
    setup.clock.advance(15)
    denied = setup.gate.invoke(setup.support, "refund", args)
    assert not denied.allowed
    assert denied.decision.outcome is Outcome.CREDENTIAL
    assert all(not lease.live_at(T + 25) for lease in setup.broker.leases(setup.support))


def test_a_need_is_checked_when_it_is_declared() -> None:
    with pytest.raises(Exception, match="secret name"):
        needs_secret("Payments!")
    with pytest.raises(ValueError, match="ttl"):
        SecretNeed("payments", ttl=0)


def test_gate3_over_a_secure_channel(tmp_path: Path) -> None:
    """The agent's tool gate runs in a thread of its own; RemoteLeases leases over the agent
    node's channel to the hub's broker, as the agent's identity, and reuses the lease."""
    from troth.gates import BundleStore, DecisionPoint
    from troth.node.services.broker import RemoteLeases

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        agent = await net.member("support")
        now = net.clock.now()
        bundle = create_bundle(
            net.hub.node.identities.signer("hub", now=now),
            authority=net.hub.node.authority().identifier,
            policies='@id("refund") permit(principal, action == Action::"invoke:refund", '
            "resource);",
            schema="",
            tools={"refund": TOOLS["refund"]},
            revision=1,
            now=now,
            ttl=3600,
        )
        verifier = agent.trust.verifier
        assert verifier is not None
        store = BundleStore(verifier)
        store.accept(bundle, feeds=agent.trust.feeds, now=now)
        point = DecisionPoint(store, lambda authority: agent.trust.feeds.get(authority))
        (held,) = agent.node.wallet.held("support")
        credential = verifier.verify(
            held.chain, presenter=net.identifier(agent), feeds=agent.trust.feeds, now=now
        )
        source = RemoteLeases(client(agent), net.identifier(agent), asyncio.get_running_loop())
        tools = [Tool.from_function(refund)]
        gate = ToolGate(
            point,
            tools,
            clock=net.clock,
            leases=ToolLeases.for_tools(source, tools, clock=net.clock),
        )
        args = {"order_id": "4471", "amount": 20}
        first = await asyncio.to_thread(gate.invoke, credential, "refund", args)
        second = await asyncio.to_thread(gate.invoke, credential, "refund", args)
        assert first.allowed
        assert token_of(first.value) == token_of(second.value)
        assert len(await client(agent).leases()) == 1
        fresh = ToolGate(point, tools, clock=net.clock, leases=ToolLeases.for_tools(source, tools))
        with pytest.raises(ConfigError, match="thread other than its loop"):
            fresh.invoke(credential, "refund", args)  # from the loop's own thread: refused

    run_broker(test, tmp_path)
