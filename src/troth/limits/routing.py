"""The hard limits of routing on a node: what its TCP connections bring that waits to be routed
(troth.transport, the routing budget; docs/protocols.md, "TCP transport").

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4).
"""

from __future__ import annotations

from typing import Final

__all__ = ["PINNED_CONNECTION_KEPT_SECONDS", "READ_PAST_ROUTING_TOTAL"]

READ_PAST_ROUTING_TOTAL: Final = 16 << 10
"""Bytes an accepted TCP connection reads at a time while the frames waiting to be routed pass
the node's total (`TcpSettings.max_routing_total`): one that holds no frames goes on reading
(addresses whose frames are routed at once are not paused by others), so past the total each
reads a little at a time, and one whose frames then wait holds at most this and the frame it
completed before it pauses (review 55a, budget 2: before, one full read, up to 512 KiB each,
~512 MiB past the total at the connection cap from as many addresses, an IPv6 /48's /64s)."""

PINNED_CONNECTION_KEPT_SECONDS: Final = 120.0
"""Seconds a node keeps an outgoing connection over which another identity answered a link's
pinned attempt, from the first such answer, while channels a caller pinned to the identity that
answered run over it (review 63r, reconnect 1: not cut by each attempt of a link whose node
left the address). Then it is closed once, and the link's next attempt dials the address
afresh: the name may lead to the pinned node again (review 63y, reconnect 1: kept for good, a
link whose node came back never reached it while anything spoke over that connection)."""
