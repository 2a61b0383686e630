"""A node's sync of a trusted authority's feed over a secure channel (docs/protocols.md,
"Services": `feed [since]`): page by page from where the node's copy ends, each page stored as
it is verified, within `limits.FEED_SYNC_SECONDS`.

The bound is what keeps one authority's node from holding the node: a maintenance round syncs
each authority's feed before it re-checks the peers and refreshes the node's credentials, and
the node of a co-trusted authority decides how its pages come — one entry each, just within
the call timeout, from a feed that grows as fast as it is read. Past the bound the sync stops
(Unreachable: what it verified is kept) and goes on from there the next round; and the round
runs the authorities' syncs at once (`limits.MAX_CONCURRENT_FEED_SYNCS` at a time: one after
the other, four slow ones outlasted the staleness bound; review 62t, feeds 1), so every other
authority's feed is still refreshed well within `limits.DEFAULT_FEED_STALENESS_SECONDS`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from troth import limits
from troth.credentials import VerifiedFeed
from troth.credentials.wallet import feed_step
from troth.encoding import cbor
from troth.errors import RemoteError, Unreachable
from troth.identity import Identifier
from troth.node.channel_ends import ChannelEnd
from troth.node.services import call, service_address
from troth.node.syncdue import clear_marks, orphaned_marks

if TYPE_CHECKING:
    from troth.node.runtime import NodeRuntime

__all__ = ["BUSY_WAITS", "sync_feed"]

AUTHORITY: Final = service_address("authority")
BUSY_WAITS: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0)
"""Seconds a feed sync waits before asking again for a page its authority's node answered
"busy" (it signs pages within a budget: docs/protocols.md); then it gives up."""


async def sync_feed(runtime: NodeRuntime, authority: Identifier, end: ChannelEnd) -> VerifiedFeed:
    """Fetch `authority`'s feed through channel `end` page by page, from where the node's copy
    ends, storing each page as it is verified (a page another process's sync overtook is
    fetched again: troth.credentials.wallet.feed_sync), and hold it; Unreachable when it did
    not end within `limits.FEED_SYNC_SECONDS` (the pages verified so far are kept). The marks
    of link revocations made here that left the feed due a sync, and that no revocation under
    way holds, go once it completed (troth.node.syncdue `orphaned_marks`)."""
    seconds = limits.FEED_SYNC_SECONDS
    node = runtime.node
    orphaned = await runtime.worker.run(orphaned_marks, node, authority)
    try:
        async with asyncio.timeout(seconds):
            feed = await _pages(runtime, authority, end)
    except TimeoutError:
        raise Unreachable(
            f"the feed of {authority} did not end within {seconds} s (the pages verified are "
            "kept: its sync goes on next time)"
        ) from None
    runtime.trust.set_feed(authority, feed)
    if orphaned:  # the revocations they were made for are in it (review 48m, revcrash 2)
        await runtime.worker.run(clear_marks, node, authority, orphaned)
    await runtime.worker.run(runtime.trust.read_due)  # (review 48w, duepeer 1)
    return feed


async def _pages(runtime: NodeRuntime, authority: Identifier, end: ChannelEnd) -> VerifiedFeed:
    sync = runtime.node.wallet.feed_sync(authority, now=runtime.clock)
    step: int | VerifiedFeed = await runtime.worker.run(next, sync)
    waits = iter(BUSY_WAITS)
    while isinstance(step, int):
        try:
            answer = await call(runtime.router, (end.enc, AUTHORITY), "feed", [step])
        except RemoteError as exc:  # the authority's node signs pages within a budget
            wait = next(waits, None) if str(exc).startswith("busy") else None
            if wait is None:
                raise
            await asyncio.sleep(wait)
            continue
        step = await runtime.worker.run(feed_step, sync, cbor.expect_bytes(answer, "page"))
    return step
