"""Review 45e, relay: an owner that reached its relay node through another relay.

Relay 1. The relay service forwarded `/relay/<name>` to the first hop of its owner's route
(`peer_route[0]`: the connection the owner's channel came over) followed by what the sender
addressed past the name. For an owner connected to the hub directly that connection is the
owner's; for owner B that reached the hub through relay node R1 (`/tcp/r1/relay/hub`: the
hub holds `/relay/hub` at R1) it is the hub's connection to R1, so a message for B arrived at
R1 addressed to R1's own listener: a sender opening a channel to `/tcp/hub/relay/b` reached
R1 (pinned to B: "peer not allowed", R1 answered), never B. Was a strict xfail until the
relay kept the whole way back to its owner's node (its channel's route back but the channel's
own end: `Relay.beyond`) and forwarded along it.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import HUB, MemNet, run_memnet
from troth.credentials import Attributes
from troth.node import Node
from troth.routing import parse_route

R1 = "/tcp/r1:4000"
HUB_AT_R1 = f"{R1}/relay/hub"
TO_B = f"{HUB}/relay/b"


def _ticket(net: MemNet, address: str, **attributes: str) -> str:
    authority = net.authority
    return str(
        authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes(attributes),
            address=address,
            now=net.clock.now(),
        )
    )


def test_an_owner_behind_two_relays_gets_its_messages(tmp_path: Path) -> None:
    """R1 hosts an authority of its own, of which the hub is a member holding `/relay/hub`
    at R1. B has no listening port and reaches the hub only through R1; it creates
    `/relay/b` at the hub over that path. A, a member connected to the hub, opens a channel
    to `/tcp/hub/relay/b` pinned to B and calls B's echo."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None

        def create_r1(node: Node) -> None:
            node.create_authority("r1", now=net.clock.now())

        r1 = await net.node("r1", listen=("r1", 4000), prepare=create_r1)
        r1_authority = r1.node.authority()  # the hub is its member: it may hold /relay/hub
        for_hub = r1_authority.create_ticket(
            creator=r1_authority.identifier,
            attributes=Attributes({"troth.relay": "hub"}),
            address=R1,
            now=net.clock.now(),
        )
        await hub.enroll(str(for_hub), "hub")
        await hub.create_relay("hub", R1)
        b = await net.node("b")
        await b.enroll(_ticket(net, HUB_AT_R1, **{"troth.relay": "b"}), "b")
        created = await b.create_relay("b", HUB_AT_R1)
        assert created["route"] == f"{HUB_AT_R1}/relay/b"
        a = await net.member("a")
        end = await a.channel_to(parse_route(TO_B), expect=net.identifier(b))
        assert end.peer is not None
        assert end.peer.identifier == net.identifier(b)
        answer = await a.send_message(f"{TO_B}/service/echo", "hello", expect=net.identifier(b))
        assert answer == "hello"

    run_memnet(test, tmp_path)
