"""The hard limits of a running node's syncs of its trusted authorities' feeds
(troth.node.membership; docs/protocols.md, "Services").

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_CONCURRENT_FEED_SYNCS"]

MAX_CONCURRENT_FEED_SYNCS: Final = 8
"""Trusted authorities whose feeds a maintenance round syncs at once (and whose member
credentials it refreshes, and rotations it announces to, at once: review 63g), each sync
within its own timeouts (connect, handshake, `FEED_SYNC_SECONDS`): a slow or unreachable
authority holds back no other's (review 62t, feeds 1: synced one after the other, ~75 s each,
four of them made a round outlast `DEFAULT_FEED_STALENESS_SECONDS` and every healthy
authority's members were refused). Up to this many slow ones cost a round one sync's bound,
~75 s; past it, one more bound per this many."""
