"""The authority service (`/service/authority`) of a node hosting an authority: enroll,
refresh, revoke, rotated and feed (docs/protocols.md, "Services").

Open to any authenticated identity: the authority verifies every request's signature and the
requester's rights itself (a newcomer enrolls with a ticket). Storage work runs off the event
loop; a revocation or supersession updates the node's held copy of its own feed at once, so the
next access decision sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.authority import Authority
from troth.encoding import cbor
from troth.errors import DecodeError, RemoteError
from troth.identity import Identifier
from troth.node.access import AnyAuthenticated, PeerCaller
from troth.node.rates import ByteBudgets
from troth.node.services.base import Method, RequestContext
from troth.node.trust import NodeTrust
from troth.node.worker import StoreWorker

__all__ = ["FEED_PAGES_CACHED", "FEED_REUSE", "AuthorityService"]

FEED_REUSE: Final = 5
"""Seconds a signed feed page is served again before it is re-signed."""
FEED_PAGES_CACHED: Final = 64
"""Signed pages kept for reuse (by their first entry)."""


@dataclass(slots=True)
class _Walk:
    """A peer's feed sync: where its next page starts (-1: none), and the entries signed for
    it since `started` (its window, limits.FEED_WALK_WINDOW)."""

    next: int
    started: int
    walked: int


class AuthorityService:
    """The hosted authority, served to any authenticated identity."""

    name = "authority"
    oneway: Method | None = None

    def __init__(self, authority: Authority, trust: NodeTrust, worker: StoreWorker) -> None:
        self.authority = authority
        self.trust = trust
        self.worker = worker
        # signed pages: since -> ((the feed's length, the authority's changes), signed at,
        # page, the entry it ends before)
        self._pages: dict[int, tuple[tuple[int, int], int, bytes, int]] = {}
        # pages signed on a peer's request, per peer and for the node (storage thread only)
        self._signs = ByteBudgets(
            rate=limits.FEED_PAGE_SIGNS_PER_CALLER,
            burst=limits.FEED_PAGE_SIGNS_PER_CALLER_BURST,
            max_sources=limits.MAX_TRACE_RATE_SOURCES,
        )
        self._walks: dict[Identifier, _Walk] = {}  # each peer's sync (oldest first)
        self._node_signs = ByteBudgets(
            rate=limits.FEED_PAGE_SIGNS_PER_NODE,
            burst=2 * limits.FEED_PAGE_SIGNS_PER_NODE,
            max_sources=1,
        )
        anyone = AnyAuthenticated()
        self.methods: Mapping[str, Method] = {
            "enroll": Method(self.enroll, anyone),
            "refresh": Method(self.refresh, anyone),
            "revoke": Method(self.revoke, anyone),
            "rotated": Method(self.rotated, anyone),
            "feed": Method(self.feed, anyone),
        }

    async def enroll(self, request: Any, context: RequestContext) -> bytes:
        """Redeem a ticket: the new member's credential chain."""
        data = _request(request)
        return await self.worker.run(lambda: self.authority.enroll(data, now=context.now).encode())

    async def refresh(self, request: Any, context: RequestContext) -> bytes:
        """A member's fresh credential chain."""
        data = _request(request)
        return await self.worker.run(lambda: self.authority.refresh(data, now=context.now).encode())

    async def revoke(self, request: Any, context: RequestContext) -> int:
        """A delegator revokes a link: the feed entry's seq."""
        data = _request(request)
        return await self.worker.run(self._changing, self.authority.revoke_link, data, context.now)

    async def rotated(self, request: Any, context: RequestContext) -> int | None:
        """A member announces its rotated history: its supersession's seq, if any."""
        data = _request(request)
        return await self.worker.run(self._changing, self.authority.rotated, data, context.now)

    async def feed(self, arguments: Any, context: RequestContext) -> bytes:
        """A signed page of the feed from entry `since` (arguments: [since])."""
        try:
            (since,) = cbor.expect_array(arguments, "feed arguments [since]", 1)
            start = cbor.expect_int(since, "since")
        except DecodeError as exc:
            raise RemoteError(str(exc)) from None
        caller = context.caller
        peer = caller.identifier if isinstance(caller, PeerCaller) else None
        return await self.worker.run(self._page, start, context.now, peer)

    def _changing(self, change: Callable[..., Any], data: bytes, now: int) -> Any:
        result = change(data, now=now)
        self.trust.refresh_hosted(now)
        return result

    def _page(self, since: int, now: int, peer: Identifier | None = None) -> bytes:
        """A page, reused while the feed has not grown, the authority has not rotated and it is
        under FEED_REUSE s old, and signed anew for a peer only within its budget and the
        node's (limits.py: a peer cycling `since` values cannot make the node sign and read
        pages without end)."""
        version = (self.authority.store.revocation_tip()[0], self.authority.changes())
        cached = self._pages.get(since)
        if cached is not None and cached[0] == version and now - cached[1] < FEED_REUSE:
            page, end = cached[2], cached[3]
        else:
            if peer is not None and not (
                (
                    self._free_walk(peer, since, version[0], now)
                    or self._signs.take(peer, 1, now=now)
                )
                and self._node_signs.take(None, 1, now=now)
            ):
                raise RemoteError("busy: too many feed pages signed on request, ask again later")
            page, end = self.authority.feed_page(now=now, since=since)
            if len(self._pages) >= FEED_PAGES_CACHED:
                self._pages.clear()
            self._pages[since] = (version, now, page, end)
            if peer is not None:
                self._walk(peer, now).walked += end - since
        if peer is not None:
            self._walk(peer, now).next = end if end > since else -1  # the sync goes on there
        return page

    def _free_walk(self, peer: Identifier, since: int, length: int, now: int) -> bool:
        """Whether the page from `since` continues the peer's sync and is charged to the node
        only: a new node walks a long feed page by page, but each peer walks at most the
        feed's length in entries per FEED_WALK_WINDOW this way (a walk may start anywhere:
        one peer starting many would spend the node's whole budget)."""
        walk = self._walks.get(peer)
        if walk is None or walk.next != since:
            return False
        if now - walk.started >= limits.FEED_WALK_WINDOW:
            walk.started, walk.walked = now, 0
        return walk.walked < length

    def _walk(self, peer: Identifier, now: int) -> _Walk:
        walk = self._walks.get(peer)
        if walk is None:
            walk = self._walks[peer] = _Walk(-1, now, 0)
            if len(self._walks) > limits.MAX_TRACE_RATE_SOURCES:
                del self._walks[next(iter(self._walks))]  # the oldest sync
        return walk

    async def maintain(self, now: int) -> None:
        """Nothing to maintain (the runtime renews the held feed)."""

    def status(self) -> dict[str, Any]:
        """The hosted authority."""
        return {"identifier": str(self.authority.identifier)}


def _request(value: Any) -> bytes:
    try:
        return cbor.expect_bytes(value, "request")
    except DecodeError as exc:
        raise RemoteError(str(exc)) from None
