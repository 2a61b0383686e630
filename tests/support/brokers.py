"""A served broker on the in-memory network: the hub hosts the authority and the broker (a
`payments` token secret), its policy bundle says who may lease what, and agents lease over
secure channels as their own identities."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.support.nodes import HUB, MemNet, run_memnet
from troth.gates import create_bundle
from troth.node import Node
from troth.node.runtime import NodeRuntime
from troth.node.services.broker import BrokerClient, BrokerService, local_broker, put_secret
from troth.routing import parse_route
from troth.secrets import Jwks

PAYMENTS = {"scopes": ["refunds", "charges"], "ttl": 120, "max_ttl": 600, "audience": "payments"}
POLICIES = """\
@id("support-refunds") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("agents.team") && principal.getTag("agents.team").contains("support")
         && ["refunds"].containsAll(context.scope) && context.ttl <= 300 };
@id("billing-charges") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("agents.team") && principal.getTag("agents.team").contains("billing")
         && ["charges"].containsAll(context.scope) };
@id("orders-db") permit(principal, action == Action::"lease", resource == Secret::"orders-db")
  when { principal.hasTag("agents.team") && principal.getTag("agents.team").contains("support") };
"""


def hub_bundle(hub: NodeRuntime, *, revision: int = 1, policies: str = POLICIES) -> bytes:
    """A policy bundle signed by the hub's authority (its identity is the node's)."""
    now = hub.clock.now()
    return create_bundle(
        hub.node.identities.signer("hub", now=now),
        authority=hub.node.authority().identifier,
        policies=policies,
        schema="",
        tools={},
        revision=revision,
        now=now,
        ttl=86_400,
    )


def broker_of(hub: NodeRuntime) -> BrokerService:
    return local_broker(hub)


async def install_bundle(hub: NodeRuntime, data: bytes) -> None:
    service = broker_of(hub)
    await asyncio.to_thread(service.bundles.accept, data, now=hub.clock.now())


def client(runtime: NodeRuntime, identity: str | None = None) -> BrokerClient:
    return BrokerClient(runtime, parse_route(HUB), identity or runtime.name)


async def jwks(hub: NodeRuntime) -> Jwks:
    answer: dict[str, Any] = await broker_of(hub).local("jwks", {})
    return Jwks.parse(answer)


def run_broker(
    test: Callable[[MemNet], Awaitable[None]],
    home: Path,
    *,
    bundle: bool = True,
    secrets: dict[str, tuple[str, dict[str, Any], bytes]] | None = None,
    budget: float = 60,
) -> None:
    """`test` with a hub hosting the authority and a broker holding `secrets` (default: the
    payments token secret) and, with `bundle`, POLICIES in force."""
    stored = secrets if secrets is not None else {"payments": ("token", PAYMENTS, b"")}

    def prepare(node: Node) -> None:
        now = int(time.time())  # the memory network's clock starts at the real time
        for name, (engine, config, value) in stored.items():
            put_secret(node, name, engine, json.dumps(config).encode(), value, now=now)

    async def wrapped(net: MemNet) -> None:
        assert net.hub is not None
        if bundle:
            await install_bundle(net.hub, hub_bundle(net.hub))
        await test(net)

    run_memnet(wrapped, home, budget=budget, prepare_hub=prepare)
