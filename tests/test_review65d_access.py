"""Review 65d, access: the node's access decision point and the service host, attacked from
the callers' side.

access 1 (low; fixed, `NodeRuntime.add_service`): a service added at run time (an MCP server
  published on a running node: `troth mcp publish`) was granted to the channels `OPEN` then,
  and a channel gets the services served when its handshake establishes it
  (`ChannelManager._on_established`). A channel this node opened is established when the
  responder's message 2 verifies, and is `AWAITING_ACCEPT` until the responder's ACCEPTED
  comes back (a round trip, through relays). A service added in between was granted to
  neither: for the rest of that channel's life its peer's requests to the new service met the
  channel's allow set and were answered `no-route` ("... may not reach /service/mcp.x"),
  while a made-up name is answered a denial to a caller the decision point refuses members-only
  methods (`ServiceHost.unserved`, review 64b, access 1). So that peer (a stranger to this
  node) told the new service from made-up names, and a member was told that nothing served a
  service the node serves (wrong, until the channel was opened again). Now every established
  channel that is not closed is granted the new set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_review64b_access import answers, request
from tests.test_review64b_refuted import Tools
from troth.channel import ChannelState
from troth.node.services.base import decode_response


def test_access1_a_service_added_while_an_opened_channel_awaits_accept_is_granted_to_it(
    tmp_path: Path,
) -> None:
    """mallory (trusting no authority: the hub is a stranger to it) opens a channel to the hub
    and publishes a service right after the hub's message 2 established it, before the
    ACCEPTED: the hub's requests to it and to a made-up name get the same bytes."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        mallory = await net.node("mallory")
        channels = mallory.channels
        established = channels._on_established
        states: list[ChannelState] = []

        def publish_meanwhile(end: Any, peer: Any) -> None:
            established(end, peer)
            if not states:
                states.append(end.channel.state)
                mallory.add_service(Tools())

        channels._on_established = publish_meanwhile  # type: ignore[method-assign]
        authority = net.authority.identifier
        await mallory.channel_to(
            route(HUB), also_trust=frozenset({authority}), expect=authority, claimed=True
        )
        assert states == [ChannelState.AWAITING_ACCEPT]
        [hub_end] = [
            end
            for end in net.hub.channels.ends.values()
            if end.peer is not None and end.peer.identifier == mallory.identifier
        ]
        tools, made_up = await answers(
            net.hub, hub_end, [("tools", request()), ("tooIs", request())]
        )
        assert decode_response(tools)[1][4]["error"] == "denied", tools
        assert tools == made_up

    run_memnet(test, tmp_path)
