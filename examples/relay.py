"""Two agents talk through a relay: three nodes in one process on loopback TCP.

The hub hosts the authority acme and a relay, and is the only node listening. agent-b has no
listening port: it enrolls over the network with a ticket that lets it hold relay name
agent-b, and asks the hub to forward /relay/agent-b to it. agent-a enrolls the same way and
opens a secure channel to agent-b through the relay, pinning agent-b's identifier; the hub
forwards only ciphertext. A stranger without a credential is refused by agent-b.

    TROTH_HOME=$(mktemp -d) python examples/relay.py
"""

from __future__ import annotations

import asyncio

import troth

chat = troth.Service("chat")


@chat.method("ask", allow=troth.MembersOnly())
async def ask(request: troth.Request) -> str:
    """agent-b's answer to a question from another member."""
    return f"agent-b heard {request.caller} ask: {request.arguments}"


async def main() -> None:
    with (
        troth.Node.open("acme") as hub_node,
        troth.Node.open("agent-a") as a_node,
        troth.Node.open("agent-b") as b_node,
        troth.Node.open("stranger") as stranger_node,
    ):
        acme = hub_node.create_authority()
        async with (
            hub_node.serve(listen=("127.0.0.1", 0)) as hub,
            b_node.serve(services=[chat]) as agent_b,
            a_node.serve() as agent_a,
            stranger_node.serve() as stranger,
        ):
            print(f"hub (authority acme, relay) listening at {hub.address}")
            team = {"agents.team": "support"}
            await agent_b.enroll(acme.ticket({**team, "troth.relay": "agent-b"}, at=hub.address))
            await agent_a.enroll(acme.ticket(team, at=hub.address))
            route = await agent_b.relay("agent-b", at=hub.address)
            print(f"agent-b {agent_b.identifier} is reachable at {route}")

            async with agent_a.connect(route, expect=agent_b.identifier) as channel:
                print(f"agent-a opened a channel to {channel.peer}")
                print(await channel.call("chat", "ask", "is order 4471 refunded?"))

            try:
                async with stranger.connect(route, expect=agent_b.identifier):
                    raise SystemExit("a stranger got a channel (this must never happen)")
            except troth.ChannelError as exc:
                print(f"the stranger is refused: {exc}")


if __name__ == "__main__":
    asyncio.run(main())
