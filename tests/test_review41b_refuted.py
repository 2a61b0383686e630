"""Review 41b, refuted attempts worth pinning (they held).

Reply paths at the relay: a message to `/relay/NAME` makes the relay's connection to the
relayed node remember a reply path, the first hop of the message's return route. Could one
sender, varying the rest of its return route, fill that list and push the relayed node's own
reply paths out? No: the relay's connection puts itself first in every return route, so the
list holds one path per connection that sent through the relay, and connections are capped
(1,024), below the list's 4,096.
"""

from __future__ import annotations

from tests.test_channel_manager import HUB, Net, attacker, run, until
from troth.routing import Address, RoutedMessage, parse_route


def test_one_sender_adds_one_reply_path_at_the_relay_whatever_its_return_routes() -> None:
    """200 messages through the relay, each with a return route of its own: the relay's
    connection to the relayed node remembers one reply path for them."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        b = await net.relayed(hub, "b")
        (to_b,) = b.transport.connections()
        (at_hub,) = [c for c in hub.transport.connections() if c.other is to_b]
        before = at_hub.allowed.reply_paths
        mallory = attacker(net)
        route = parse_route(f"{HUB}/relay/b/service/echo")
        for n in range(200):
            back = (Address("worker", f"w{n}"), Address("worker", f"x{n}"))
            await mallory.route(RoutedMessage(route, back, b"junk"))
        await until(lambda: to_b.frames_read >= 200)
        assert at_hub.allowed.reply_paths <= before + 1

    run(test)
