"""Chapter 3: secure channels through a relay. Three nodes on loopback: an authority that is
also a relay, agent A, and agent B with no listening port. Both enroll with tickets over TCP
(the runtime's enrollment, the one the CLI uses); A opens a channel to B through the relay,
pinning B's identifier; the relay forwards only ciphertext; a stranger is refused with the
reasons of B's access decision."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from troth.clock import Clock
from troth.credentials import Attributes
from troth.demo.story import Story
from troth.errors import ChannelError
from troth.node import init_node, open_node
from troth.node.runtime import ECHO, NodeRuntime
from troth.node.services import call
from troth.routing import RoutedMessage, parse_route

MESSAGES = ("refund order 4471 for complaint 123?", "approved: refund 19.99 EUR to card on file")


def run(story: Story, home: Path, clock: Clock) -> None:
    story.chapter(3, "Secure channels: end to end, mutually authenticated, through a relay")
    asyncio.run(_run(story, home, clock))


async def _run(story: Story, home: Path, clock: Clock) -> None:
    for name in ("hub", "agent-a", "agent-b", "stranger"):
        init_node(name, home=home)
    nodes = {name: open_node(name, home=home) for name in ("hub", "agent-a", "agent-b", "stranger")}
    authority = nodes["hub"].create_authority("hub", now=clock.now())
    runtimes = {name: NodeRuntime(node, clock=clock) for name, node in nodes.items()}
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
    finally:
        for runtime in runtimes.values():
            await runtime.stop()
        for node in nodes.values():
            node.close()
