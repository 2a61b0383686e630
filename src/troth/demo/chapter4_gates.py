"""Chapter 4: gates. The shop's authority signs its Cedar policies into a bundle; the agents'
node pulls it over a secure channel. The customer delegates write access to its support
agent with a caveat (refunds up to 100); the support agent passes read access to a sub-agent.
Gate 1 shows the support agent lookup_order and refund but never export_customers; gate 2
allows a refund of 20, denies one of 500 (the customer's caveat) and every refund of the
sub-agent; the customer revokes the delegation mid-task and the next call is denied. Then the
same story through a real MCP client: the shop publishes its orders MCP server as a node
service and the agents reach it through secure channels (`troth mcp connect`)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Literal

from troth.authority.client import revoke_request
from troth.clock import Clock
from troth.credentials import Attributes
from troth.demo.story import Story, quiet
from troth.gates import Tool, ToolGate, create_bundle, schema_from_function
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.node.runtime import AUTHORITY, NodeRuntime
from troth.node.services import call
from troth.node.services.node_policies import LocalCredential
from troth.node.services.policy import PolicyService
from troth.routing import parse_route

# refunds of 1 to 100 (none negative), other tools left alone: `context.args.amount` alone
# errors for a tool without `amount`, so every lookup would be denied, and hidden (65g gates 1)
CAVEAT = (
    'action != Action::"invoke:refund" || (0 < context.args.amount && context.args.amount <= 100)'
)
POLICIES = """\
@id("support-lookup") permit(principal, action == Action::"invoke:lookup_order", resource)
  when { principal.hasTag("orders.access") };
@id("support-refund") permit(
  principal, action == Action::"invoke:refund", resource in Server::"orders")
  when { principal.hasTag("orders.access") && principal.getTag("orders.access").contains("write") };
@id("dpo-export") permit(principal, action == Action::"invoke:export_customers", resource)
  when { principal.hasTag("troth.role") && principal.getTag("troth.role").contains("dpo") };
"""
CUSTOMER = Attributes({"orders.access": frozenset({"read", "write"}), "orders.customer": "4471"})
_IDENTIFIER = re.compile(r"T?[0-9a-f]{64}")

Ask = Callable[[str, str, dict[str, Any]], Awaitable[tuple[bool, str]]]
"""(agent, tool, arguments) -> (allowed, what came back)."""
Lists = Callable[[str], Awaitable[list[str]]]


def lookup_order(order_id: str) -> str:
    """Look up an order."""
    return f"order {order_id}: 2 items, paid"


def refund(order_id: str, amount: int) -> str:
    """Refund part of an order."""
    return f"refunded {amount} on order {order_id}"


def export_customers(fmt: Literal["csv", "json"] = "csv") -> str:
    """Export every customer."""
    return f"customers.{fmt}"


TOOLS = (lookup_order, refund, export_customers)


def run(story: Story, home: Path, clock: Clock) -> None:
    story.chapter(4, "Gates: Cedar policies in signed bundles decide every tool call")
    with quiet("troth"):  # the story says what the nodes log
        asyncio.run(_run(story, home, clock))


class _Scene:
    """The shop's node (authority, policies, the orders MCP server) and the agents' node."""

    def __init__(self, story: Story, shop: NodeRuntime, agents: NodeRuntime, clock: Clock):
        self.story, self.shop, self.agents, self.clock = story, shop, agents, clock
        self.authority = shop.node.authority().identifier
        self.names: dict[str, str] = {}

    def name(self, text: str) -> str:
        """`text` with every identifier it holds replaced by its local name (other long hex
        values shortened)."""
        return _IDENTIFIER.sub(lambda m: self.names.get(m[0], m[0][:12] + "..."), text)

    def delegate(
        self,
        by: str,
        to: str,
        attributes: Attributes,
        caveats: tuple[str, ...],
        *,
        parent: bytes | None = None,
        ttl: int = 600,
    ) -> bytes:
        """`by` delegates to `to` for `ttl` seconds, extending `parent` (one of the chains `by`
        holds; default: the wallet's choice) or, once a delegation is revoked, the one named
        here. A delegation may not outlive its parent: a sub-delegation takes a shorter ttl,
        as the clock may pass a second between the two."""
        node = self.agents.node
        extends = None
        if parent is not None:
            extends = node.wallet.inspect(parent, now=self.clock.now()).links[-1].hash
        chain = node.wallet.delegate(
            by,
            to=Identifier(node.identities.find(to).identifier),
            attributes=attributes,
            now=self.clock.now(),
            ttl=ttl,
            purpose="complaint 123",
            caveats=caveats,
            credential_hash=extends,
        )
        node.wallet.hold(to, chain, now=self.clock.now())
        return chain

    async def revoke(self, chain: bytes) -> int:
        """The customer revokes the last link of `chain` with the shop's authority."""
        node = self.agents.node
        link = node.wallet.inspect(chain, now=self.clock.now()).links[-1].hash
        request = revoke_request(
            node.identities,
            "customer-4471",
            self.authority,
            credential_hash=link,
            chain=chain,
            reason="complaint resolved",
            now=self.clock.now(),
        )
        end = await self.agents.channel_to(parse_route(self.shop_route))
        seq = await call(self.agents.router, (end.enc, AUTHORITY), "revoke", request)
        return int(seq)

    @property
    def shop_route(self) -> str:
        return "/tcp/{}:{}".format(*(self.shop.listening or ("", 0)))


def _shown(allowed: bool, text: str) -> str:
    return f"allowed: {text}" if allowed else text if text.startswith("denied") else f"{text!r}"


async def _tell(
    scene: _Scene, lists: Lists, ask: Ask, revoke: Callable[[], Awaitable[str]]
) -> None:
    """The story of gates 1 and 2, told through `lists` and `ask`."""
    say = scene.story.say
    say(f"  support-agent sees: {', '.join(await lists('support-agent'))}")
    say("    (gate 1: export_customers needs troth.role=dpo, which nobody delegated)")
    for amount in (20, 500):
        allowed, text = await ask("support-agent", "refund", {"order_id": "4471", "amount": amount})
        say(f"  support-agent: refund {amount:>3} -> {_shown(allowed, scene.name(text))}")
    say(f"    (caveat:1:0 is the customer's caveat, link 1's first: {CAVEAT})")
    say(f"  sub-agent sees: {', '.join(await lists('sub-agent'))}")
    allowed, text = await ask("sub-agent", "refund", {"order_id": "4471", "amount": 20})
    say(f"  sub-agent: refund  20 -> {_shown(allowed, scene.name(text))}")
    say("    (gate 1 hides refund from it: it is told what a name the bundle lacks is told, so")
    say("    calling names reveals no tool it may never use; a decision record keeps the real why)")
    say(f"  {await revoke()}")
    allowed, text = await ask("support-agent", "refund", {"order_id": "4471", "amount": 20})
    say(f"  support-agent: refund  20 -> {_shown(allowed, scene.name(text))}")


async def _run(story: Story, home: Path, clock: Clock) -> None:
    for name in ("shop", "agents"):
        init_node(name, home=home)
    nodes = {name: open_node(name, home=home) for name in ("shop", "agents")}
    nodes["shop"].create_authority("shop", now=clock.now())
    for name in ("customer-4471", "support-agent", "sub-agent"):
        nodes["agents"].identities.create(now=clock.now(), name=name)
    shop, agents = (NodeRuntime(nodes[n], clock=clock) for n in ("shop", "agents"))
    try:
        await shop.start(("127.0.0.1", 0))
        await agents.start()
        scene = _Scene(story, shop, agents, clock)
        for local in ("customer-4471", "support-agent", "sub-agent"):
            scene.names[str(Identifier(agents.node.identities.find(local).identifier))] = local
        scene.names[str(scene.authority)] = "the shop's authority"
        await _setup(scene)
        story.say("the agents' own process gates its tools (troth.gates.ToolGate):")
        await _in_process(scene)
        story.proved("an agent sees only the tools its credentials could ever be allowed")
        story.proved("every call is decided with its arguments: the customer's caveat stops 500")
        story.proved("a revocation mid-task denies the very next call")
        await _over_mcp(scene)
    finally:
        await agents.stop()
        await shop.stop()
        for node in nodes.values():
            node.close()


async def _setup(scene: _Scene) -> None:
    story, shop, agents, clock = scene.story, scene.shop, scene.agents, scene.clock
    authority = shop.node.authority()
    story.say(f"shop: authority and policy node, listening on {scene.shop_route[5:]}")
    for who, attributes in (("agents", Attributes({})), ("customer-4471", CUSTOMER)):
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=attributes,
            address=scene.shop_route,
            now=clock.now(),
        )
        await agents.enroll(str(ticket), who)
    story.say("the agents' node and customer 4471 enrolled; the customer holds")
    story.say("  orders.access = read, write (for its own orders)")
    tools = {f.__name__: schema_from_function(f) for f in TOOLS}
    data = create_bundle(
        shop.node.identities.signer("shop", now=clock.now()),
        authority=authority.identifier,
        policies=POLICIES,
        schema="",
        tools=tools,
        revision=1,
        now=clock.now(),
        ttl=7 * 86_400,
    )
    await shop.worker.run(lambda: shop.policies.accept(data, now=clock.now()))
    ids = ", ".join(shop.policies.show(now=clock.now())[0]["policies"])
    story.say(f"the shop signs revision 1 of its policy bundle: 3 tools, policies {ids}")
    story.say('  (support-refund names its server, resource in Server::"orders": a refund')
    story.say("  another MCP server lists is not one it allows)")
    policy = agents.host.services["policy"]
    if isinstance(policy, PolicyService):
        await policy.pull()
    held = agents.policies.held(authority.identifier)
    revision = 0 if held is None else held.bundle.body.revision
    story.say(f"the agents' node pulled revision {revision} over a secure channel")
    story.say("  (and is subscribed now: the shop pushes every later revision to it)")


async def _in_process(scene: _Scene) -> None:
    agents = scene.agents
    to_support = scene.delegate("customer-4471", "support-agent", CUSTOMER, (CAVEAT,))
    read = Attributes({"orders.access": "read", "orders.customer": "4471"})
    scene.delegate("support-agent", "sub-agent", read, (), ttl=300)
    scene.story.say(f"customer 4471 delegates read, write to support-agent, only if {CAVEAT};")
    scene.story.say("  support-agent passes read on to its sub-agent")
    gate = ToolGate(  # the orders server's tools, in process
        agents.policies.point,
        [Tool.from_function(f) for f in TOOLS],
        clock=scene.clock,
        server="orders",
    )

    def caller(who: str) -> LocalCredential:
        return LocalCredential(agents.node, who, agents.policies)

    async def lists(who: str) -> list[str]:
        return [tool.name for tool in gate.available_tools(caller(who))]

    async def ask(who: str, tool: str, arguments: dict[str, Any]) -> tuple[bool, str]:
        result = gate.invoke(caller(who), tool, arguments)
        return result.allowed, str(result.value) if result.allowed else result.decision.reason

    async def revoke() -> str:
        seq = await scene.revoke(to_support)
        await agents.refresh_feeds()
        return (
            f"mid-task, customer 4471 revokes its delegation (entry {seq} of the shop's feed);\n"
            "  the agents' node syncs the feed (every 30 s; here at once)"
        )

    await _tell(scene, lists, ask, revoke)


async def _over_mcp(scene: _Scene) -> None:
    story = scene.story
    story.say("the same story through MCP: the shop publishes its orders MCP server as node")
    story.say("service mcp.orders; each agent connects through a secure channel of its own")
    try:
        from mcp import Client

        from troth.integrations.mcp.connect import connect
        from troth.node.services.mcp import publish_upstream
    except ImportError:
        story.say("  (skipped: the MCP SDK is the mcp extra: pip install 'troth[mcp]')")
        return
    to_support = scene.delegate("customer-4471", "support-agent", CUSTOMER, (CAVEAT,))
    read = Attributes({"orders.access": "read", "orders.customer": "4471"})
    # support-agent holds the revoked first delegation too: extend the new one
    scene.delegate("support-agent", "sub-agent", read, (), parent=to_support, ttl=300)
    story.say("  (the customer delegates again, as before: the first delegation is revoked)")
    await publish_upstream(scene.shop, "orders", _orders_server())
    to = f"{scene.shop_route}/service/mcp.orders"
    async with AsyncExitStack() as stack:
        clients: dict[str, Any] = {}
        for who in ("support-agent", "sub-agent"):
            transport = await stack.enter_async_context(connect(scene.agents, who, to))
            # the initialize handshake (mode "legacy"): no discover probe and its 10 s timeout
            client = Client(transport, mode="legacy", cache=None)
            clients[who] = await stack.enter_async_context(client)
        story.say(f"  MCP clients connected to {to[5:]} as support-agent and sub-agent")
        story.say("  (a denial is the tool result the client gets: isError, the text quoted)")

        async def lists(who: str) -> list[str]:
            return [tool.name for tool in (await clients[who].list_tools()).tools]

        async def ask(who: str, tool: str, arguments: dict[str, Any]) -> tuple[bool, str]:
            result = await clients[who].call_tool(tool, arguments)
            return not result.is_error, result.content[0].text

        async def revoke() -> str:
            seq = await scene.revoke(to_support)
            return (
                f"mid-task, customer 4471 revokes the new delegation (entry {seq} of the feed);\n"
                "  the shop hosts the authority, so its next decision sees it"
            )

        with quiet("mcp", logging.CRITICAL):  # the SDK logs refused requests: told instead
            await _tell(scene, lists, ask, revoke)
    story.say("  (the shop decided every call on the channel's verified peer: one tool")
    story.say("  server, many agents, each with its own rights, and no port opened for it)")
    story.proved("the same gates hold for MCP clients over secure channels, no port opened")


def _orders_server() -> Any:
    """The shop's orders MCP server (the SDK derives each tool's schema from its signature)."""
    from mcp.server import MCPServer

    app = MCPServer("orders")
    for function in TOOLS:
        app.tool()(function)
    return app
