"""Chapter 3: secure channels through a relay. acme's hub hosts the authority and a relay and
is the only node listening; acme's order agent runs on a node with no listening port, behind
the relay; both it and the support agent enroll over TCP with one-time tickets (the runtime's
enrollment, the one the CLI uses). The support agent opens a channel to the order agent through
the relay, pinning its identifier, and asks about order 4471; the relay forwards only
ciphertext; a node without a credential is refused with the reasons of the order agent's
access decision. Then the hub goes down: the order agent notices, reconnects on its own when
the hub is back on the same port, creates its relay again, and is reached as before."""

from __future__ import annotations

import asyncio
from pathlib import Path

from troth import MembersOnly, Request, Service
from troth.channel.secure import KEEPALIVE_TIMEOUT
from troth.clock import Clock
from troth.credentials import Attributes
from troth.demo.story import Story, quiet
from troth.errors import ChannelError, RoutingError
from troth.node import init_node, open_node
from troth.node.links import RECONNECT_BASE, RECONNECT_MAX_DELAY, Backoff, LinkState
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address
from troth.routing import RoutedMessage, parse_route

DEMO_BACKOFF = Backoff(0.1, 1.0)  # the order agent retries fast in the demo
NODES = ("acme", "support-agent", "orders", "stranger")
ANSWERS = {
    "status": "order 4471: shipped on Monday, arriving Thursday",
    "history": "customer 4471: 3 orders since 2025, none returned",
}


def _orders_service() -> Service:
    """The order agent's service: any member of an authority it trusts may ask."""
    orders = Service("orders")
    for method, answer in ANSWERS.items():

        async def answer_it(request: Request, answer: str = answer) -> str:
            return answer

        orders.method(method, allow=MembersOnly())(answer_it)
    return orders


def run(story: Story, home: Path, clock: Clock) -> None:
    story.chapter(3, "Secure channels: end to end, mutually authenticated, through a relay")
    with quiet():
        asyncio.run(_run(story, home, clock))


async def _run(story: Story, home: Path, clock: Clock) -> None:
    for name in NODES:
        init_node(name, home=home)
    nodes = {name: open_node(name, home=home) for name in NODES}
    authority = nodes["acme"].create_authority("acme", now=clock.now())
    runtimes = {
        name: NodeRuntime(node, clock=clock, backoff=DEMO_BACKOFF) for name, node in nodes.items()
    }
    runtimes["orders"].host.add(_orders_service())
    hub, support, orders, stranger = (runtimes[n] for n in NODES)
    try:
        await hub.start(("127.0.0.1", 0))
        for runtime in (support, orders, stranger):
            await runtime.start()  # no listening port
        address = "/tcp/{}:{}".format(*(hub.listening or ("", 0)))
        story.say(f"acme's hub, {story.meet('acme', authority.identifier)}, hosts the authority")
        story.say(f"  acme and a relay; it listens on {address}, the only node that does")
        for name, runtime in (("support-agent", support), ("orders", orders)):
            story.meet(name, runtime.identifier or "")
        story.say(f"the support agent's node: {story.who(support.identifier or '')}")
        story.say(f"acme's order agent, on a node with no listening port: {orders.identifier}")

        def ticket(**granted: str) -> str:
            return str(
                authority.create_ticket(
                    creator=authority.identifier,
                    attributes=Attributes(granted),
                    address=address,
                    now=clock.now(),
                )
            )

        await support.enroll(ticket(**{"agents.team": "support"}), "support-agent")
        await orders.enroll(ticket(**{"troth.relay": "orders"}), "orders")
        story.say("both enroll with one-time tickets, each over a secure channel to the hub's")
        story.say("  authority service; orders' ticket grants troth.relay=orders")
        relay = f"{address}/relay/orders"
        await orders.create_relay("orders", address)
        story.say(f"orders asks the hub to relay to it: it is reachable at {relay}")
        story.say("  (the hub allows it: orders' credential from acme carries troth.relay=orders)")
        story.proved("an agent with no listening port is reachable through a relay")

        await _talk(story, hub, support, orders, relay)
        story.proved("both ends verify each other; the relay forwards only ciphertext")
        await _refused(story, stranger, support, orders, address, relay)
        story.proved("a node without a credential from acme is refused, with the reasons")

        hub = runtimes["acme"] = await _hub_down_and_back(story, hub, orders, clock)
        end = await support.channel_to(parse_route(relay), expect=orders.identifier)
        answer = await call(support.router, (end.enc, _ORDERS), "status", "4471")
        story.say("support-agent asks orders again through the relay:")
        story.say(f"  {answer}")
        story.say("  (orders was never restarted)")
        story.proved("when the hub comes back, the agent behind it reconnects on its own")
    finally:
        for runtime in reversed(runtimes.values()):  # the hub last
            await runtime.stop()
        for node in nodes.values():
            node.close()


_ORDERS = service_address("orders")


async def _talk(
    story: Story, hub: NodeRuntime, support: NodeRuntime, orders: NodeRuntime, relay: str
) -> None:
    """The support agent's channel to orders through the relay, and what the relay saw."""
    end = await support.channel_to(parse_route(relay), expect=orders.identifier)
    story.say("support-agent opens a Noise XX channel to orders through the relay, pinning")
    story.say("  orders' identifier (anyone else answering would be refused); each side checks")
    story.say("  the other's history, attested channel key and credential:")
    story.say(f"  support-agent verified {end.peer.identifier if end.peer else None}")
    seen: list[RoutedMessage] = []

    def watch(connection: object, message: RoutedMessage) -> None:
        seen.append(message)

    hub.tcp.observers.append(watch)
    story.say("  inside the channel, support-agent asks and orders answers:")
    texts: list[bytes] = []
    for method in ANSWERS:
        answer = await call(support.router, (end.enc, _ORDERS), method, "4471")
        texts += [method.encode(), str(answer).encode()]
        story.say(f"    {method + ' 4471?':<14} {answer}")
    hub.tcp.observers.remove(watch)
    leaked = [m for m in seen for text in texts if text in bytes(m.payload)]
    sizes = ", ".join(f"{len(m.payload)} B" for m in seen)
    story.say(f"  the relay forwarded {len(seen)} frames, each request and answer encrypted")
    story.say(f"  ({sizes}); frames containing any of that plaintext: {len(leaked)}")


async def _refused(
    story: Story,
    stranger: NodeRuntime,
    support: NodeRuntime,
    orders: NodeRuntime,
    address: str,
    relay: str,
) -> None:
    """A node without a credential, and a relay name nobody holds."""
    label = story.meet("stranger", stranger.identifier or "")
    story.say(f"a node with no credential from acme, {label}, tries orders through the relay:")
    try:
        target = frozenset({orders.identifier}) if orders.identifier else frozenset()
        await stranger.channel_to(parse_route(relay), also_trust=target)
        story.say("  accepted (this must never happen)")
    except ChannelError as exc:
        story.say(f"  orders refuses it ({exc.reason.name.lower().replace('_', ' ')}):")
        story.say(f"  {exc.detail}")
    try:
        await support.send_message(f"{address}/relay/returns/service/echo", "hello?")
    except RoutingError as exc:
        story.say("support-agent tries /relay/returns, a relay name nobody holds; the hub")
        story.say(f"  answers at once: {exc}")


async def _hub_down_and_back(
    story: Story, hub: NodeRuntime, orders: NodeRuntime, clock: Clock
) -> NodeRuntime:
    """The hub's process dies (its connections drop without a word); orders notices and
    retries; a new hub runtime starts on the same port; orders' link comes back on its own."""
    listening = hub.listening or ("127.0.0.1", 0)
    await hub.tcp.close()
    await hub.stop()
    story.say("the hub goes down (its connections drop, as when its process is killed)")
    while orders.link_rows()[0].state is LinkState.CONNECTED:
        await asyncio.sleep(0.01)
    story.say("  orders notices at once: its channel to the hub is closed (a hub that goes")
    story.say(f"  silent instead is noticed by the keepalive, after {KEEPALIVE_TIMEOUT:.0f} s)")
    while (row := orders.link_rows()[0]).attempts < 2 or row.state is not LinkState.RECONNECTING:
        await asyncio.sleep(0.01)
    story.say(
        "  orders retries, waiting a random time below a ceiling that doubles from "
        f"{DEMO_BACKOFF.base:g} s up to {DEMO_BACKOFF.max_delay:g} s"
    )
    story.say(f"  (by default {RECONNECT_BASE:g} s up to {RECONNECT_MAX_DELAY:g} s)")
    back = NodeRuntime(hub.node, clock=clock)
    await back.start(listening)
    story.say("the hub is back on the same port (it kept the relay name for its owner)")
    while orders.link_rows()[0].state is not LinkState.CONNECTED:
        await asyncio.sleep(0.01)
    state = back.status()["services"]["relay"]["orders"]["state"]
    story.say(f"  orders reconnects on its own and creates its relay again: {state}")
    return back
