"""How fast a node takes up handshake openings (messages 1) from each network: a token bucket
per network, spent before a message 1 costs the node a responder's handshake work (~0.4 ms of
CPU). The half-open table bounds how many handshakes are held, not how fast they come: a flood
from one /24 evicted its own oldest entries, never met its per-source limit, and was taken up at
any rate (review 57c, handshakes 1). Used by troth.node.channels' listener; docs/protocols.md,
"Load limits"."""

from __future__ import annotations

import asyncio

from troth import limits as protocol_limits
from troth.rates import ByteBudgets

__all__ = ["OpeningRates"]


class OpeningRates:
    """A budget of `burst` messages 1 per network, refilled at `rate` a second of the event
    loop's clock (the CPU they cost is spent in real time, whatever the node's clock says); at
    most `MAX_HANDSHAKE_NETWORKS` kept, a refilled one forgotten first, then the oldest (a
    newcomer's network is never refused for want of a slot)."""

    __slots__ = ("_budgets",)

    def __init__(self, *, rate: int, burst: int) -> None:
        self._budgets = ByteBudgets(
            rate=rate,
            burst=burst,
            max_sources=protocol_limits.MAX_HANDSHAKE_NETWORKS,
            evict=True,
        )

    def take(self, network: str) -> bool:
        """Spend one opening of `network`'s budget (False, nothing spent, when it has none)."""
        now = int(asyncio.get_running_loop().time())
        return self._budgets.take(network, 1, now=now)

    def __len__(self) -> int:
        return len(self._budgets)
