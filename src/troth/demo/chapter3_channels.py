"""Chapter 3: secure channels through a relay. Three nodes on loopback: an authority that is
also a relay, agent A, and agent B with no listening port. Both enroll with tickets over TCP
(the runtime's enrollment, the one the CLI uses); A opens a channel to B through the relay,
pinning B's identifier; the relay forwards only ciphertext; a stranger is refused with the
reasons of B's access decision. Then the hub goes down: B notices, reconnects on its own when
the hub is back on the same port, creates its relay again, and A reaches it as before."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from troth.clock import Clock
from troth.credentials import Attributes
from troth.demo.story import Story
from troth.errors import ChannelError, RoutingError
from troth.node import init_node, open_node
from troth.node.links import Backoff, LinkState
from troth.node.runtime import ECHO, NodeRuntime
from troth.node.services import call
from troth.routing import RoutedMessage, parse_route

DEMO_BACKOFF = Backoff(0.1, 1.0)  # agent-b retries fast in the demo (default: 0.5 s, 10 s cap)

MESSAGES = ("refund order 4471 for complaint 123?", "approved: refund 19.99 EUR to card on file")


def run(story: Story, home: Path, clock: Clock) -> None:
    story.chapter(3, "Secure channels: end to end, mutually authenticated, through a relay")
    quiet = logging.getLogger("troth.node")  # the story says what the nodes log
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        asyncio.run(_run(story, home, clock))
    finally:
        quiet.setLevel(level)


async def _run(story: Story, home: Path, clock: Clock) -> None:
    for name in ("hub", "agent-a", "agent-b", "stranger"):
        init_node(name, home=home)
    nodes = {name: open_node(name, home=home) for name in ("hub", "agent-a", "agent-b", "stranger")}
    authority = nodes["hub"].create_authority("hub", now=clock.now())
    runtimes = {
        name: NodeRuntime(node, clock=clock, backoff=DEMO_BACKOFF) for name, node in nodes.items()
    }
    hub, a, b, stranger = (runtimes[n] for n in ("hub", "agent-a", "agent-b", "stranger"))
    try:
        await hub.start(("127.0.0.1", 0))
        for runtime in (a, b, stranger):
            await runtime.start()  # no listening port
        address = "/tcp/{}:{}".format(*(hub.listening or ("", 0)))
        story.say(f"hub: authority and relay, listening on {address[5:]}")

        def ticket(**extra: str) -> str:
            attributes = Attributes({"agents.team": "support", **extra})
            return str(
                authority.create_ticket(
                    creator=authority.identifier,
                    attributes=attributes,
                    address=address,
                    now=clock.now(),
                )
            )

        await a.enroll(ticket(), "agent-a")
        await b.enroll(ticket(**{"troth.relay": "agent-b"}), "agent-b")
        story.say("agent-a and agent-b enrolled over TCP with one-time tickets")
        story.say("  (each over a secure channel to the hub's authority service)")
        await b.create_relay("agent-b", address)
        story.say(
            f"agent-b has no listening port; it asked the hub for relay {address}/relay/agent-b"
        )
        story.say("  (allowed because its credential carries troth.relay=agent-b)")

        seen: list[RoutedMessage] = []

        def watch(connection: object, message: RoutedMessage) -> None:
            seen.append(message)

        route = parse_route(f"{address}/relay/agent-b")
        start = time.perf_counter()
        end = await a.channel_to(route, expect=b.identifier)
        elapsed = (time.perf_counter() - start) * 1000
        peer = end.peer.identifier if end.peer else None
        story.say(f"agent-a -> agent-b through the relay: Noise XX channel in {elapsed:.1f} ms")
        story.say(f"  agent-a verified: {peer} (history, attested channel key, credential)")
        story.say("  (agent-a pinned agent-b's identifier: whoever else answered would be refused)")
        hub.tcp.observers.append(watch)
        story.say("  plaintext (inside the channel)                    what the relay forwarded")
        for text in MESSAGES:
            before = len(seen)
            reply = await call(a.router, (end.enc, ECHO), "echo", text)
            sizes = ", ".join(f"{len(m.payload)} B" for m in seen[before:])
            story.say(f"  {text[:48]:<50} {sizes}")
            if reply != text:
                story.say("  (the reply did not match)")
        hub.tcp.observers.remove(watch)
        leaked = [m for m in seen for t in MESSAGES if t.encode() in bytes(m.payload)]
        story.say(
            f"  frames the relay forwarded: {len(seen)}; containing any plaintext: {len(leaked)}"
        )

        intruder = stranger.status()["identifier"]
        story.say(
            f"a node without credentials ({intruder[:17]}...) tries agent-b through the relay:"
        )
        try:
            target = frozenset({peer}) if peer else frozenset()
            await stranger.channel_to(route, also_trust=target)
            story.say("  accepted (this must never happen)")
        except ChannelError as exc:
            story.say(f"  agent-b refused it: {exc}")
        try:
            await a.send_message(f"{address}/relay/agent-c/service/echo", "hello?")
        except RoutingError as exc:
            story.say(f"a message to a relay nobody holds is answered at once: {exc}")

        hub = runtimes["hub"] = await _hub_down_and_back(story, hub, b, clock)
        reply = await a.send_message(f"{address}/relay/agent-b/service/echo", "are you back?")
        story.say(f"agent-a -> agent-b through the relay again: {reply!r}")
        story.say("  (agent-b was never restarted)")
    finally:
        for runtime in reversed(runtimes.values()):  # the hub last
            await runtime.stop()
        for node in nodes.values():
            node.close()


async def _hub_down_and_back(
    story: Story, hub: NodeRuntime, b: NodeRuntime, clock: Clock
) -> NodeRuntime:
    """The hub's process dies (its connections drop without a word); agent-b notices and
    retries; a new hub runtime starts on the same port; agent-b's link comes back on its own."""
    listening = hub.listening or ("127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    down = loop.time()
    await hub.tcp.close()
    await hub.stop()
    story.say("the hub goes down (its connections drop, as when its process is killed)")
    while b.link_rows()[0].state is LinkState.CONNECTED:
        await asyncio.sleep(0.01)
    story.say(
        f"  agent-b noticed within {loop.time() - down:.2f} s: its channel to the hub is closed"
    )
    story.say("  (a hub that goes silent instead is noticed by the keepalive: 45 s by default)")
    while (row := b.link_rows()[0]).attempts < 2 or row.state is not LinkState.RECONNECTING:
        await asyncio.sleep(0.01)
    story.say(f"  agent-b's link: {row.describe()}")
    back = NodeRuntime(hub.node, clock=clock)
    await back.start(listening)
    up = loop.time()
    story.say("the hub is back on the same port (its relay names kept for their owners)")
    while b.link_rows()[0].state is not LinkState.CONNECTED:
        await asyncio.sleep(0.01)
    story.say(
        f"  agent-b reconnected on its own {loop.time() - up:.2f} s later and created its relay"
        f" again: {back.status()['services']['relay']['agent-b']['state']}"
    )
    return back
