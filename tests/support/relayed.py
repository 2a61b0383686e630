"""A member behind the hub's relay on the in-memory network (tests.support.nodes): b, enrolled
with `troth.relay=b` and holding `/relay/b` at the hub, its reconnect backoff short."""

from __future__ import annotations

from tests.support.nodes import HUB, MemNet
from troth.node.links import Backoff
from troth.node.runtime import NodeRuntime

FAST = Backoff(0.05, 0.2)


async def relayed_b(net: MemNet) -> NodeRuntime:
    """Node b, a member of the hub's authority, reachable at `{HUB}/relay/b`."""
    b = await net.node("b", backoff=FAST)
    await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
    await b.create_relay("b", HUB)
    return b
