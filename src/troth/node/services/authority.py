"""The authority service (`/service/authority`) of a node hosting an authority: enroll,
refresh, revoke, rotated and feed (docs/protocols.md, "Services").

Open to any authenticated identity: the authority verifies every request's signature and the
requester's rights itself (a newcomer enrolls with a ticket). Storage work runs off the event
loop; a revocation or supersession updates the node's held copy of its own feed at once, so the
next access decision sees it, and a revocation asks the other nodes running on this machine to
sync the feed (in the background: review 48c, revocation 3).

Feed pages (docs/protocols.md, "Services": `feed [since]`): a `since` outside the feed is
refused before anything is spent; the page at the feed's end (what every up-to-date node asks
for) is one shared page, re-signed at most every FEED_REUSE s (or when the feed grew, or a
page signed later is out: review 67o, feeds 1) and charged to no one; any other page signed on
request is charged to its caller's own budget and
to its class's pool: its members and the anchors draw on one
(`limits.FEED_PAGE_SIGNS_PER_NODE`), strangers to it (identities admitted to enroll, a
co-trusted authority's members) on another (`limits.FEED_PAGE_SIGNS_FOR_STRANGERS`), so no
number of identities that cost someone nothing can leave a member's sync answered "busy". A
member's delegates share its own budget and its sync allowance: the account is the member at
the root of the caller's chains from this authority (another authority's chains name accounts
of the caller's choosing: review 34b, feed pages 1); an anchor's is its own identifier,
whatever chains it shows (review 72d, pools 2). The members one ticket of many uses
enrolled (their delegates with them) are charged their ticket's share of the members' pool
too (`limits.FEED_PAGE_SIGNS_PER_TICKET`, a quarter of it), so one ticket's fleet leaves the
rest to everyone else (review 71p, pools 1). A page refused spends nothing, and reads the
member's share (a row) only when its own budget and the pool would sign it, once a second
(review 71u, wave3d 1).

Enroll and refresh requests (docs/credentials.md, "Request budgets"): each is charged to its
source's budget before anything is checked (`troth.authority.budgets`; review 56g, budgets 1):
a member's to the same account its pages are (a member showing no credential, its own: review
57e, storm 1), anyone else's to the network its channel came from (what the node's per-source
channel limits count by: an identity costs nothing); a local caller's to no one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from troth import limits
from troth.authority import Authority
from troth.authority.budgets import RequestBudgets
from troth.authority.revoking import delegates_of
from troth.encoding import cbor
from troth.errors import AuthorityError, AuthorityFailure, DecodeError, RemoteError, TrothError
from troth.identity import Identifier
from troth.node.access import AnyAuthenticated, Caller, PeerCaller
from troth.node.channel_ends import ChannelEnd
from troth.node.channel_sources import source_network_of
from troth.node.rates import ByteBudgets
from troth.node.services.base import Method, RequestContext
from troth.node.trust import NodeTrust
from troth.node.worker import StoreWorker

__all__ = ["FEED_PAGES_CACHED", "FEED_REUSE", "AuthorityService"]

log = logging.getLogger("troth.node")

FEED_REUSE: Final = 5
"""Seconds a signed feed page is served again before it is re-signed."""
FEED_PAGES_CACHED: Final = 64
"""Signed pages kept for reuse (by their first entry)."""


_Signed = tuple[tuple[int, int], int, bytes, int]
"""A signed page kept for reuse: (the feed's length, the authority's changes) it was signed
for, when it was signed, the page, the entry it ends before."""


@dataclass(slots=True)
class _Walk:
    """A caller's feed sync: where its next page starts (-1: none), and the entries signed for
    it since `started` (its window, limits.FEED_WALK_WINDOW)."""

    next: int
    started: int
    walked: int


def _budgets(rate: int, burst: int, sources: int) -> ByteBudgets:
    return ByteBudgets(rate=rate, burst=burst, max_sources=sources)


@dataclass(slots=True)
class _Class:
    """One class of callers (members and anchors, or strangers): the pool of page signings
    they share, each source's own budget, and each source's sync. Kept apart per class, so
    strangers neither spend the members' pool nor crowd their budgets or syncs out."""

    pool: ByteBudgets
    own: ByteBudgets = field(
        default_factory=lambda: _budgets(
            limits.FEED_PAGE_SIGNS_PER_CALLER,
            limits.FEED_PAGE_SIGNS_PER_CALLER_BURST,
            limits.MAX_FEED_SIGN_SOURCES,
        )
    )
    walks: dict[bytes, _Walk] = field(default_factory=dict)  # oldest first
    tickets: ByteBudgets = field(
        default_factory=lambda: _budgets(
            limits.FEED_PAGE_SIGNS_PER_TICKET,
            2 * limits.FEED_PAGE_SIGNS_PER_TICKET,
            limits.MAX_FEED_SIGN_SOURCES,
        )
    )
    """The share of the pool of each ticket of many uses whose members ask (review 71p)."""

    @classmethod
    def of(cls, rate: int) -> _Class:
        """A class whose pool signs `rate` pages per second (a burst of two seconds of it)."""
        return cls(_budgets(rate, 2 * rate, 1))

    def charge(
        self,
        source: bytes,
        since: int,
        length: int,
        now: int,
        ticket: Callable[[], bytes | None] = lambda: None,
    ) -> bool:
        """Spend one signing of `source`'s (unless the page continues its sync: `free_walk`),
        one of the pool's and one of its `ticket`'s share (the members of a ticket of many
        uses together: review 71p, pools 1); False, nothing spent, when one lacks it (or,
        raised, when `ticket` fails). `ticket` (a row read) is asked only for a page the
        other two would sign: asked first, every page they refused made the node read that
        row for nothing (review 71u, wave3d 1)."""
        free = self.free_walk(source, since, length, now)
        if not free and not self.own.take(source, 1, now=now):
            return False
        pooled = signed = False
        try:
            pooled = self.pool.take(None, 1, now=now)
            share = ticket() if pooled else None
            signed = pooled and (share is None or self.tickets.take(share, 1, now=now))
        finally:
            if not signed:
                if pooled:
                    self.pool.refund(None, 1, now=now)
                if not free:
                    self.own.refund(source, 1, now=now)
        return signed

    def free_walk(self, source: bytes, since: int, length: int, now: int) -> bool:
        """Whether the page from `since` continues the source's sync and is charged to the pool
        (and its ticket's share) only: a new node walks a long feed page by page, but each
        source walks at most the feed's length in entries per FEED_WALK_WINDOW this way (a
        walk may start anywhere: one source starting many would spend the whole pool)."""
        walk = self.walks.get(source)
        if walk is None or walk.next != since:
            return False
        if now - walk.started >= limits.FEED_WALK_WINDOW:
            walk.started, walk.walked = now, 0
        return walk.walked < length

    def walk(self, source: bytes, now: int) -> _Walk:
        """`source`'s sync (a new one forgets the oldest past MAX_FEED_SIGN_SOURCES): made for
        a page signed on request only, charged to `source` (review 72d, pools 1: made for any
        page, the feed's end asked by that many members, for nothing, forgot a member's sync in
        the middle of a long feed, and its next page was charged to its own budget)."""
        walk = self.walks.get(source)
        if walk is None:
            walk = self.walks[source] = _Walk(-1, now, 0)
            if len(self.walks) > limits.MAX_FEED_SIGN_SOURCES:
                del self.walks[next(iter(self.walks))]
        return walk


@dataclass(frozen=True, slots=True)
class _Payer:
    """Whom a page signed on request is charged to: `source` (a member's account, shared with
    its delegates; a stranger's identifier) within its class of callers, and `member`, the
    member of this authority it pays for (itself, or its delegates' delegator; None for an
    anchor or a stranger), whose ticket's share it spends too (`_ticket`)."""

    source: bytes
    callers: _Class
    member: Identifier | None = None


class AuthorityService:
    """The hosted authority, served to any authenticated identity."""

    name = "authority"
    oneway: Method | None = None

    def __init__(
        self,
        authority: Authority,
        trust: NodeTrust,
        worker: StoreWorker,
        find_channel: Callable[[str], ChannelEnd | None] = lambda _: None,
    ) -> None:
        self.authority = authority
        self.trust = trust
        self.worker = worker
        self.find_channel = find_channel
        self.budgets = RequestBudgets()  # enroll and refresh requests, by source
        # signed pages: since -> ((the feed's length, the authority's changes), signed at,
        # page, the entry it ends before); the page at the feed's end is kept apart (`_tip`)
        self._pages: dict[int, _Signed] = {}
        self._tip: _Signed | None = None
        # when the newest page was signed (the one at the feed's end too: one signed before
        # the clock was set back is held by members; review 67u, feeds 1): no page signed
        # before it is served again (`_current`; review 67o, feeds 1). Unknown at a start:
        # taken as the skew past the first page asked for (`_page`; review 68e, floor 1)
        self._newest: int | None = None
        # pages signed on request, by class of caller (storage thread only)
        self._members = _Class.of(limits.FEED_PAGE_SIGNS_PER_NODE)
        self._strangers = _Class.of(limits.FEED_PAGE_SIGNS_FOR_STRANGERS)
        # the members' shares read this second (`_ticket`; storage thread only)
        self._holders: dict[Identifier, bytes | None] = {}
        self._holders_at = 0
        self._telling = False  # `tell_local_nodes`: a thread tells, and tells again after
        self._tell_again = False
        self._tell_lock = threading.Lock()
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
        await self._charge(context)
        return await self.worker.run(lambda: self.authority.enroll(data, now=context.now).encode())

    async def refresh(self, request: Any, context: RequestContext) -> bytes:
        """A member's fresh credential chain."""
        data = _request(request)
        await self._charge(context)
        return await self.worker.run(lambda: self.authority.refresh(data, now=context.now).encode())

    async def revoke(self, request: Any, context: RequestContext) -> int:
        """A delegator revokes a link: the feed entry's seq."""
        data = _request(request)
        await self._charge(context)  # each checked in full: review 58e, budgets 2
        seq: int = await self.worker.run(
            self._changing, self.authority.revoke_link, data, context.now
        )
        self.tell_local_nodes()
        return seq

    async def rotated(self, request: Any, context: RequestContext) -> int | None:
        """A member announces its rotated history: its supersession's seq, if any."""
        data = _request(request)
        await self._charge(context, rotation=True)
        seq: int | None = await self.worker.run(
            self._changing, self.authority.rotated, data, context.now
        )
        if seq is not None:  # a supersession, as a revocation (review 68u, notify 2)
            self.tell_local_nodes()
        return seq

    async def feed(self, arguments: Any, context: RequestContext) -> bytes:
        """A signed page of the feed from entry `since` (arguments: [since])."""
        try:
            (since,) = cbor.expect_array(arguments, "feed arguments [since]", 1)
            start = cbor.expect_int(since, "since")
        except DecodeError as exc:
            raise RemoteError(str(exc)) from None
        payer = self._payer(context.caller, context.now)
        return await self.worker.run(self._page, start, context.now, payer)

    async def _charge(self, context: RequestContext, *, rotation: bool = False) -> None:
        """Spend one enroll, refresh, revoke or rotated request of the caller's source
        (`RequestBudgets`; revoke and rotated requests were free: review 58e, budgets 2):
        a member's account (or an anchor's), as `_payer` names it; a caller showing no
        credential of this authority that is one of its members (stored now: a removed member
        is not), its own; anyone else's, the network its channel came from; a local caller's,
        nothing. RATE_LIMITED past it. A member whose credentials this authority's rotation
        superseded shows none, and was charged to its network's budget, shared with every
        stranger there: past its burst the members of one site were refused their fresh
        credentials, and a stranger there could spend it to keep them all from refreshing
        (review 57e, storm 1). A member's `rotation` (rotated) requests are charged to its
        account under the history its channel shows: a thief of the key a member rotated away
        from spends the account of that history only, and cannot keep the rotation unannounced
        (review 58g, budgets 1)."""
        caller = context.caller
        payer = self._payer(caller, context.now)
        if payer is None or not isinstance(caller, PeerCaller):
            return
        member = payer.callers is self._members
        if member:
            source: Hashable = payer.source
        elif await self.worker.run(self._is_member, caller.identifier.digest):
            source, member = caller.identifier.digest, True  # its account, as `_payer`'s
        else:
            end = self.find_channel(caller.channel)  # gone: one shared source
            source = "gone" if end is None else source_network_of(end.source_key)
        if rotation and member and source == caller.identifier.digest:
            source = (source, caller.peer.identity.change_count)  # review 58g, budgets 1
        self.budgets.charge(source, member=member, now=context.now)

    def _is_member(self, identifier: bytes) -> bool:
        """Whether `identifier` is one of this authority's members (storage thread)."""
        return self.authority.store.get_member(identifier) is not None

    def _payer(self, caller: Caller, now: int) -> _Payer | None:
        """Whom `caller`'s pages are charged to (None: a local caller, never charged). A member
        of this authority (a credential of its that verifies now) pays from its own account, a
        delegate from the one its member's delegates share (`delegates_of` the member at the
        root of its credentials), an anchor from its own (never a chain's root: review 72d,
        pools 2); anyone
        else is a stranger to this feed, a co-trusted authority's member too: that authority
        mints members for free, and they would spend the pool this authority's own members
        sync from (read on the event loop: the standing reads memory only)."""
        if not isinstance(caller, PeerCaller):
            return None
        standing = self.trust.standing(caller.peer, now)
        mine = self.authority.identifier
        # the members at the roots of this authority's chains only: a co-trusted authority's
        # chain (it mints members for free) names an account of the caller's choosing, so a
        # member's delegates each had one (review 34b, feed pages 1)
        own = [c.links[0].subject for c in standing.credentials if c.authority == mine]
        if standing.problem is None and own:
            # a delegate pays from the account its member's delegates share, never the member's
            # own: a delegate (an agent handed one attribute) sending refresh requests kept its
            # delegator from refreshing, RATE_LIMITED (review 58e, budgets 1)
            if caller.identifier in own:
                return _Payer(caller.identifier.digest, self._members, caller.identifier)
            root = min(own, key=lambda subject: subject.digest)
            return _Payer(delegates_of(root).digest, self._members, root)
        if standing.problem is None and standing.is_anchor:
            # its own: its chains' roots (another trusted authority's members delegating to
            # it; one of its own authority ending at itself is a cycle, refused) were each a
            # fresh budget of the members' pool (review 72d, pools 2)
            return _Payer(caller.identifier.digest, self._members)
        return _Payer(caller.identifier.digest, self._strangers)

    def tell_local_nodes(self) -> None:
        """Ask the nodes running on this machine to sync the feed now, in the background
        (`troth.node.traces.tell_local_nodes`; review 48c, revocation 3: a revocation taken
        over the network reached them only at their next round; review 68u, notify 1 and 2: a
        rotation's supersession too). On a thread of its own (a
        daemon thread: a stopping node waits for no telling), not holding the answer nor the
        storage worker: their syncs over TCP ask this node for pages. One telling at a time;
        revocations meanwhile tell once more after it. A thread that does not start (the
        process out of threads or memory; the interpreter exiting) is logged, and the next
        revocation tells: it was raised after the commit, and left a telling "running" that
        told no node here again (review 70m, telling2 2; for a MemoryError still: 70r,
        wave2a 2)."""
        with self._tell_lock:
            if self._telling:
                self._tell_again = True
                return
            self._telling = True
        try:
            threading.Thread(target=self._tell, name="troth-tell-local-nodes", daemon=True).start()
        except BaseException as exc:  # (a MemoryError too: review 70r, wave2a 2)
            with self._tell_lock:
                self._telling = self._tell_again = False
            if not isinstance(exc, Exception):
                raise
            log.warning("the nodes running here were not told of the revocation: %r", exc)

    def _tell(self) -> None:
        from troth.node.traces import tell_local_nodes  # (it imports the trace log)

        while True:
            try:
                tell_local_nodes(self.trust.node, self.authority.identifier)
            except Exception:  # logged: it does not stop the tellings after it
                log.exception("telling the nodes running here of a revocation")
            with self._tell_lock:
                if not self._tell_again:
                    self._telling = False
                    return
                self._tell_again = False

    def _changing(self, change: Callable[..., Any], data: bytes, now: int) -> Any:
        result = change(data, now=now)
        self.trust.refresh_hosted(now)
        return result

    def _page(self, since: int, now: int, payer: _Payer | None = None) -> bytes:
        """A page: refused for a `since` outside the feed before anything is spent; at the
        feed's end, the shared page (`_tip_page`); else reused while the feed has not grown,
        the authority has not rotated and it is under FEED_REUSE s old, and signed anew for a
        peer only within its own budget and its class's pool (troth.limits: a peer cycling
        `since` values cannot make the node sign and read pages without end). A page signed
        for the peer starts or goes on with its sync (`_Class.walk`); any other moves on the
        one it has, and starts none (review 72d, pools 1)."""
        self.authority.check_not_held()  # no page, cached or not (review 65o, feed 2)
        if self._newest is None:  # a page signed before this start, by a clock up to the
            # skew ahead of this one (a restart with the clock set back), may be held: none
            # signed in an earlier second is served again until the clock passes it (review
            # 68e, floor 1: a page cached since the start rolled its holder back)
            self._newest = now + limits.MAX_CLOCK_SKEW_SECONDS
        latest = self.authority.store.revocation_tip()[0]
        if not 0 <= since <= latest:  # what feed_page refuses, refused before any budget
            raise AuthorityError(AuthorityFailure.REQUEST_INVALID, f"the feed has {latest} entries")
        version = (latest, self.authority.changes())
        cached = self._pages.get(since)
        if since == latest:
            page, end = self._tip_page(version, now)
        elif cached is not None and self._current(cached, version, now):
            page, end = cached[2], cached[3]
        else:
            if payer is not None and not payer.callers.charge(
                payer.source, since, latest, now, lambda: self._ticket(payer, now)
            ):
                raise RemoteError("busy: too many feed pages signed on request, ask again later")
            page, end = self.authority.feed_page(now=now, since=since)
            self._newest = max(self._newest or 0, now)
            if len(self._pages) >= FEED_PAGES_CACHED:
                self._pages.clear()
            self._pages[since] = (version, now, page, end)
            if payer is not None:
                payer.callers.walk(payer.source, now).walked += end - since
        # a page signed for no one (the feed's end, one served again) moves the source's sync
        # on, and starts none: free, each pushed out a member's sync mid-feed (72d, pools 1)
        walk = None if payer is None else payer.callers.walks.get(payer.source)
        if walk is not None:
            walk.next = end if end > since else -1
        return page

    def _ticket(self, payer: _Payer, now: int) -> bytes | None:
        """The share `payer`'s page is charged to besides its own budget: its member's quota
        holder when that is the ticket of many uses that enrolled it (`quota_holder`, shared by
        all that ticket's members and their delegates: review 71p, pools 1, each of them drew
        on the pool as a member of its own); None for a single-use ticket's member (its own
        budget only, as before), an anchor or a stranger (storage thread: one row read, kept
        for the second: a fleet refused for its share spends nothing, and would ask again at
        no cost of its own; review 71u, wave3d 1)."""
        member = payer.member
        if member is None:
            return None
        if self._holders_at != now or len(self._holders) >= limits.MAX_FEED_SIGN_SOURCES:
            self._holders.clear()
            self._holders_at = now
        if member not in self._holders:
            holder = self.authority.quota_holder(member)
            self._holders[member] = None if holder == member else holder.digest
        return self._holders[member]

    def _tip_page(self, version: tuple[int, int], now: int) -> tuple[bytes, int]:
        """The page from the feed's end (no entries: "up to date", as of its signing), shared
        by every caller and charged to none: re-signed only when the feed grew, the authority
        rotated or it is FEED_REUSE s old, so asking for it costs at most one signature per
        FEED_REUSE s however many ask (one a second in the skew window after a start, while
        pages signed before it are unknown: review 68e, floor 1)."""
        tip = self._tip
        if tip is None or not self._current(tip, version, now):
            page, end = self.authority.feed_page(now=now, since=version[0])
            tip = self._tip = (version, now, page, end)
            self._newest = max(self._newest or 0, now)  # counted too (review 67u, feeds 1)
        return tip[2], tip[3]

    def _current(self, signed: _Signed, version: tuple[int, int], now: int) -> bool:
        """Whether page `signed` may be served again at `now`: of the feed's `version`, under
        FEED_REUSE s old, and signed no earlier than the newest page signed (a member holding
        that one refused an older as a rollback, `FEED_ROLLBACK`: review 67o, feeds 1; the one
        at the feed's end too, signed before the clock was set back: review 67u, feeds 1; a
        clock set back since makes none newer than what is signed now), and not dated more
        than the skew after `now` (a member refuses it, "issued in the future": one signed
        while the clock ran ahead was served until the clock caught up with it, review 67u,
        feeds 2). After a start, until the clock passes the skew after the first page asked
        for, only a page signed in this second is (the pages signed before the start, when the
        clock may have read later, are unknown: review 68e, floor 1)."""
        made_for, signed_at = signed[0], signed[1]
        return (
            made_for == version
            and -limits.MAX_CLOCK_SKEW_SECONDS < now - signed_at < FEED_REUSE
            and signed_at >= min(self._newest or 0, now)
        )

    async def maintain(self, now: int) -> None:
        """Forget the tickets past their expiry, so that a clock set back later revives none
        (review 55c, tickets 1; the runtime renews the held feed). A failure (node.db busy) is
        logged and tried again next round: it holds back no other service's maintenance."""
        try:
            await self.worker.run(lambda: self.authority.forget_expired_tickets(now=now))
        except TrothError as exc:
            log.warning("forgetting the expired tickets: %s", exc)

    def status(self) -> dict[str, Any]:
        """The hosted authority."""
        return {"identifier": str(self.authority.identifier)}


def _request(value: Any) -> bytes:
    try:
        return cbor.expect_bytes(value, "request")
    except DecodeError as exc:
        raise RemoteError(str(exc)) from None
