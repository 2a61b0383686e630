"""Review 41b, relayed requests (the requests running on a node reached through a relay).

Relayed requests 1: a node counts the requests running per member (16), per connection (64,
`MAX_REQUESTS_PER_CONNECTION`) and in all (256, shared out per authority past it). Every
channel that peers open to a relayed node runs over the node's one connection to the relay,
so there the per-connection bound was a bound on every relayed peer together, with no share
per sender and no share per authority: four members behind the relay (or, on a node that
hosts an authority, four identities that cost nothing), each holding 16 requests that wait,
left every other peer that reaches the node through the relay answered `busy` for as long as
they held them. A relayed channel's requests now count against the sender behind the relay
(the relay's connection to it, as the relay put it in the return route and the per-source
channel limits count it: `Connection.origin`), the node's own connection to the relay
counting only the channels the relay itself opened.
"""

from __future__ import annotations

import pytest

from tests.test_channel_manager import HUB, Net, run, until
from tests.test_service_concurrency import Gated, _ask, _channel, _once
from troth.errors import Busy
from troth.node.services.admission import RequestLimits

RELAYED = f"{HUB}/relay/node"


def test_one_sender_behind_a_relay_leaves_another_its_requests() -> None:
    """Relayed requests 1: limits of 2 per member and 3 per connection; one host behind the
    relay holds 3 requests that wait (two members); another host's request through the same
    relay still runs, while the first host's next one is still answered busy.
    Was a strict xfail until a relayed channel's requests counted against the sender behind
    the relay (`ChannelEnd.request_lane`), not the node's one connection to the relay."""

    async def test(net: Net) -> None:
        gated = Gated()
        hub = await net.hub()
        limits = RequestLimits(per_peer=2, per_connection=3, total=100)
        node = await net.relayed(hub, "node", services=(gated,), requests=limits)
        mallory, alice = net.peer("10.6.6.6"), net.peer("10.0.0.3")
        first, second = await _channel(net, mallory, RELAYED), await _channel(net, mallory, RELAYED)
        waiting = [_ask(mallory, first, "wait", n) for n in ("m1", "m2")]
        waiting.append(_ask(mallory, second, "wait", "m3"))
        await until(lambda: len(gated.started) == 3)
        third = await _channel(net, mallory, RELAYED)
        with pytest.raises(Busy, match=r"^busy: 3 requests over this connection"):
            await _once(mallory, third, "quick", "m4")
        end = await _channel(net, alice, RELAYED)
        assert await _once(alice, end, "quick", "a") == "a"
        assert node.host.busy == 1
        gated.gate.set()
        for task in waiting:
            await task

    run(test)
