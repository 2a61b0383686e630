"""The hard limits of a running node's syncs of its trusted authorities' feeds
(troth.node.membership; docs/protocols.md, "Services").

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_CONCURRENT_FEED_SYNCS", "MAX_MEMBER_REVOCATION_REASON_BYTES"]

MAX_CONCURRENT_FEED_SYNCS: Final = 8
"""Trusted authorities whose feeds a maintenance round syncs at once (and whose member
credentials it refreshes, and rotations it announces to, at once: review 63g), each sync
within its own timeouts (connect, handshake, `FEED_SYNC_SECONDS`): a slow or unreachable
authority holds back no other's (review 62t, feeds 1: synced one after the other, ~75 s each,
four of them made a round outlast `DEFAULT_FEED_STALENESS_SECONDS` and every healthy
authority's members were refused). Up to this many slow ones cost a round one sync's bound,
~75 s; past it, one more bound per this many."""

MAX_MEMBER_REVOCATION_REASON_BYTES: Final = 64
"""Longest reason (bytes of UTF-8) of an entry a member causes: a link revocation it, or its
delegate, requests (the authority's own revocations keep MAX_REVOCATION_REASON characters).
With MAX_REVOCATION_REASON 4-byte characters a member's entry was 1,126 bytes, not ~100: the
members' part of a feed (MAX_FEED_ENTRIES - FEED_AUTHORITY_RESERVE entries) reached ~4.6 GB at
the authority and ~9,000 pages for a new node's first sync; within this it is ~0.7 GB (review
70q, feeds 1)."""
