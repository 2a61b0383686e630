"""Node runtimes on the in-memory transport (no TCP where TCP is not the point): a hub that
hosts an authority and a relay at /tcp/hub:4000, and helpers to add nodes, tickets and
delegations."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import troth
from troth.authority import Authority
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.identity import Identifier
from troth.node import Node, init_node, open_node
from troth.node.home import write_private_file
from troth.node.node import node_dir
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address
from troth.routing import Router, parse_route
from troth.transport import MemoryNetwork, MemoryTransport

HUB = "/tcp/hub:4000"


@dataclass
class MemNet:
    """A hub (authority + relay) and the nodes added to it, all on one memory network."""

    home: Path
    clock: FixedClock
    network: MemoryNetwork = field(default_factory=MemoryNetwork)
    runtimes: list[NodeRuntime] = field(default_factory=list)
    opened: list[Node] = field(default_factory=list)
    hub: NodeRuntime | None = None

    def transport(self, host: str) -> Callable[[Router], MemoryTransport]:
        return lambda router: MemoryTransport(router, self.network, host=host)

    async def node(
        self,
        name: str,
        *,
        listen: tuple[str, int] | None = None,
        prepare: Callable[[Node], None] | None = None,
        services: tuple[str, ...] | None = None,
        host: str | None = None,
        **options: Any,
    ) -> NodeRuntime:
        """Node `name` (its own memory host, or `host`; `services` configured), started;
        `prepare` runs on it first."""
        config = init_node(name, home=self.home)
        if services is not None:
            path = node_dir(self.home, name) / "node.json"
            write_private_file(path, dataclasses.replace(config, services=services).to_json())
        node = open_node(name, home=self.home)
        self.opened.append(node)
        if prepare is not None:
            prepare(node)
        host = listen[0] if listen else host or f"host-{name}"
        runtime = NodeRuntime(node, clock=self.clock, transport=self.transport(host), **options)
        self.runtimes.append(runtime)
        await runtime.start(listen)
        return runtime

    @property
    def authority(self) -> Authority:
        assert self.hub is not None
        return self.hub.node.authority()

    def ticket(self, **attributes: str) -> str:
        authority = self.authority
        return str(
            authority.create_ticket(
                creator=authority.identifier,
                attributes=Attributes({"agents.team": "support", **attributes}),
                address=HUB,
                now=self.clock.now(),
            )
        )

    async def member(self, name: str, **attributes: str) -> NodeRuntime:
        runtime = await self.node(name)
        await runtime.enroll(self.ticket(**attributes), name)
        return runtime

    def identifier(self, runtime: NodeRuntime) -> Identifier:
        assert runtime.identifier is not None
        return runtime.identifier


def run_memnet(
    test: Callable[[MemNet], Awaitable[None]],
    home: Path,
    *,
    budget: float = 60,
    prepare_hub: Callable[[Node], None] | None = None,
    **hub_options: Any,
) -> None:
    """Run `test` with a started hub, then stop every runtime and close every node."""

    async def main() -> None:
        net = MemNet(home, FixedClock(int(time.time())))

        def create_authority(node: Node) -> None:
            node.create_authority("hub", now=net.clock.now())
            if prepare_hub is not None:
                prepare_hub(node)

        try:
            net.hub = await net.node(
                "hub", listen=("hub", 4000), prepare=create_authority, **hub_options
            )
            await asyncio.wait_for(test(net), budget)
        finally:
            for runtime in reversed(net.runtimes):
                await runtime.stop()
            for node in net.opened:
                node.close()

    asyncio.run(main())


def route(text: str) -> Any:
    """A parsed route (shorthand)."""
    return parse_route(text)


async def globex_over_tcp(net: MemNet) -> tuple[NodeRuntime, Authority, str]:
    """A second authority, globex, on a node of its own listening at /tcp/globex:4000: the node,
    its authority and a ticket to it (attributes globex.team=desk)."""

    def create_globex(node: Node) -> None:
        node.create_authority("globex", now=net.clock.now())

    globex = await net.node("globex", listen=("globex", 4000), prepare=create_globex)
    authority = globex.node.authority()
    ticket = authority.create_ticket(
        creator=authority.identifier,
        attributes=Attributes({"globex.team": "desk"}),
        address="/tcp/globex:4000",
        now=net.clock.now(),
    )
    return globex, authority, str(ticket)


def authority_and_trusting_node(authority: str, node: str) -> tuple[Identifier, Identifier]:
    """`authority`, a node hosting an authority, and `node` trusting it (troth.Node API):
    their identifiers."""
    with troth.Node.open(authority) as hosting:
        hosting.create_authority()
        authority_id = hosting.identity.identifier
    with troth.Node.open(node) as trusting:
        served = trusting.identity.identifier
    with open_node(node) as opened:
        opened.wallet.trust(authority_id, f"node:{authority}", now=int(time.time()))
    return authority_id, served


async def ask_authority(node: NodeRuntime, net: MemNet, method: str, request: bytes) -> Any:
    """Call `method` of the hub's authority service with `request` from `node`, over a channel
    pinned to the hub's authority (as an enrolling node opens it: its members or not)."""
    authority = net.authority.identifier
    end = await node.channel_to(
        route(HUB), also_trust=frozenset({authority}), expect=authority, claimed=True
    )
    return await call(node.router, (end.enc, service_address("authority")), method, request)
