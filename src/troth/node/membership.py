"""A running node and the authorities it enrolled with (docs/protocols.md, "Nodes"):
enrolling with one (on this machine through troth.node.authorities, else over a secure channel
to the ticket's address), and keeping their revocation feeds and the node's member credentials
fresh each maintenance round. Functions of the runtime (as troth.node.feedsync's), called
through its methods of the same names: `NodeRuntime.enroll`, `refresh_feeds`,
`refresh_credentials`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from troth import enrollment
from troth.authority import Authority
from troth.authority.client import authority_refusal, refresh_request, ticket_authority
from troth.channel import ChannelState
from troth.credentials import VerifiedFeed
from troth.credentials.pending import newest_first, recorded_after
from troth.credentials.wallet import CredentialWallet, needs_refresh, revokes_a_link
from troth.encoding import cbor
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    DecodeError,
    IdentityError,
    RemoteError,
    TrothError,
)
from troth.identity import Identifier, UnverifiedHistory
from troth.limits import MAX_CONCURRENT_FEED_SYNCS
from troth.node.at_once import each_at_once
from troth.node.authorities import (
    FeedOutcome,
    enroll_locally,
    is_local,
    parse_ticket,
    refresh_locally,
    resume_locally,
    sync_local_feed,
    unusable,
)
from troth.node.channel_ends import ChannelEnd
from troth.node.services import call, service_address
from troth.node.syncdue import clear_marks, orphaned_marks
from troth.routing import format_route, parse_route
from troth.storage import HeldCredential, PendingEnrollmentRecord

if TYPE_CHECKING:
    from troth.node.runtime import NodeRuntime

__all__ = [
    "AUTHORITY",
    "REFRESH_MARGIN",
    "RESUMED_PER_ROUND",
    "RESUME_AFTER",
    "RESUME_BACKOFF",
    "RESUME_BACKOFF_MAX",
    "RESUME_FOR",
    "Resumption",
    "enroll",
    "refresh_credentials",
    "refresh_feeds",
    "resume_enrollments",
    "showing",
    "sync_trusted_feed",
    "unusable",
]

log = logging.getLogger("troth.node")
AUTHORITY: Final = service_address("authority")
REFRESH_MARGIN: Final = 600
"""A member credential is refreshed when it has this many seconds left."""
RESUME_AFTER: Final = 30
"""An interrupted enrollment is resumed by the node's maintenance once it is this many seconds
old (a younger one may be in flight: `troth enroll` through the node)."""
RESUMED_PER_ROUND: Final = 16
"""At most this many interrupted enrollments are sent again per maintenance round."""
RESUME_SCANNED_PER_ROUND: Final = 4 * RESUMED_PER_ROUND
"""Pending records looked at per round, going round them all from where the last round
stopped (review 39a, resume 1: the oldest sixteen, stuck, starved every newer one)."""
RESUME_BACKOFF: Final = 60
"""After an attempt that did not complete, a record waits this many seconds before the next,
doubled at each further one up to RESUME_BACKOFF_MAX (review 39a, resume 2)."""
RESUME_BACKOFF_MAX: Final = 3600
"""The longest wait between two attempts to resume one record."""
RESUME_FOR: Final = 7 * 24 * 3600
"""A record whose attempts have failed for this long (since the first failed one in this run
of the node) is no longer resumed by the maintenance: it stays for an operator (`troth enroll`
with its ticket, `troth credential refresh`; review 39a, resume 2)."""
MAX_RESUME_BACKOFFS: Final = 4096
"""Records whose backoff a node remembers (past it, those whose wait is over are forgotten)."""


@dataclass(slots=True)
class _Wait:
    """A record's attempts that did not complete: when the next may go, the wait before it,
    and when the first failed."""

    next_at: int
    delay: int
    since: int


@dataclass(slots=True)
class Resumption:
    """A running node's memory of its resumption of interrupted enrollments (not stored: a
    restart tries each once more): where the last round stopped among the records, and each
    record's wait after an attempt that did not complete."""

    cursor: tuple[int, bytes, bytes, str] | None = None
    waits: dict[tuple[bytes, bytes, bytes], _Wait] = field(default_factory=dict)

    @staticmethod
    def key(pending: PendingEnrollmentRecord) -> tuple[bytes, bytes, bytes]:
        """A record's key: identity, authority, its ticket's digest (another ticket: anew)."""
        ticket = hashlib.sha256(pending.ticket.encode()).digest()
        return pending.identifier, pending.authority, ticket

    def due(self, pending: PendingEnrollmentRecord, now: int) -> bool:
        """Whether `pending` is sent again this round: old enough that no `troth enroll` is
        still carrying it, its wait over, and not failing for RESUME_FOR already (counted from
        its first failed attempt in this run, not from its start: a node down for weeks still
        resumes what it left pending).

        The clock set back (docs/storage.md, "Recovery rules"): a record dated in the future
        (started while the clock ran ahead) is due RESUME_AFTER after this memory first saw
        it, not once the clock reaches its date (review 40b, resume 2); a wait ending further
        ahead than its own length (set while the clock ran ahead) is over (review 40b,
        resume 1). Either waited for the clock to catch up: a day, for a clock a day ahead."""
        key = self.key(pending)
        wait = self.waits.get(key)
        if now - pending.started_at < RESUME_AFTER:
            if pending.started_at <= now:
                return False
            if wait is None:  # dated in the future: from now on, as if it started now
                self._remember(key, _Wait(now + RESUME_AFTER, RESUME_AFTER, now), now)
                return False
        if wait is None:
            return True
        if wait.next_at - now > wait.delay:  # set while the clock ran ahead
            return True
        return wait.next_at <= now and now - wait.since <= RESUME_FOR

    def failed(self, pending: PendingEnrollmentRecord, now: int) -> None:
        """`pending` did not complete: wait longer before the next attempt."""
        key = self.key(pending)
        previous = self.waits.get(key)
        if previous is None:
            wait = _Wait(now + RESUME_BACKOFF, RESUME_BACKOFF, now)
        else:
            delay = min(max(2 * previous.delay, RESUME_BACKOFF), RESUME_BACKOFF_MAX)
            # the first failure's time, or now if the clock was set back before it
            wait = _Wait(now + delay, delay, min(previous.since, now))
        self._remember(key, wait, now)

    def _remember(self, key: tuple[bytes, bytes, bytes], wait: _Wait, now: int) -> None:
        """Keep `wait` for `key` (past MAX_RESUME_BACKOFFS, those whose wait is over are
        forgotten first)."""
        if len(self.waits) >= MAX_RESUME_BACKOFFS and key not in self.waits:
            self.waits = {k: v for k, v in self.waits.items() if v.next_at > now}
        self.waits[key] = wait

    def done(self, pending: PendingEnrollmentRecord) -> None:
        """`pending` completed (or is gone)."""
        self.waits.pop(self.key(pending), None)

    def not_held_back(
        self, wallet: CredentialWallet, chosen: list[PendingEnrollmentRecord], now: int
    ) -> list[PendingEnrollmentRecord]:
        """`chosen` (storage thread) but those with a newer record in flight
        (`_newer_in_flight`): sent once it is no longer, after it."""
        return [p for p in chosen if not self._newer_in_flight(wallet, p, now)]

    def _newer_in_flight(
        self, wallet: CredentialWallet, pending: PendingEnrollmentRecord, now: int
    ) -> bool:
        """Whether a record of `pending`'s identity and authority recorded after it (another
        ticket) is younger than RESUME_AFTER (dated in the future: until its wait from first
        seen is over): its `troth enroll` may still carry it, and it is resumed first once
        due, clearing `pending` as it completes. `pending` sent before it and completing left
        it pending (a newer record stays), sent too the next round: a second credential for
        one member, its ticket redeemed for nothing (review 61p, enrollment 1)."""
        for newer in recorded_after(wallet.store, pending):
            if newer.started_at <= now:
                if now - newer.started_at < RESUME_AFTER:
                    return True
                continue
            wait = self.waits.get(self.key(newer))
            if wait is None or wait.next_at > now:
                return True
        return False

    def choose(self, wallet: CredentialWallet, now: int) -> list[PendingEnrollmentRecord]:
        """This round's records (storage thread): up to RESUMED_PER_ROUND due ones among the
        next RESUME_SCANNED_PER_ROUND from where the last round stopped, round again from the
        oldest once past the newest."""
        page = wallet.interrupted_enrollments(RESUME_SCANNED_PER_ROUND, self.cursor)
        if not page and self.cursor is not None:
            self.cursor = None
            page = wallet.interrupted_enrollments(RESUME_SCANNED_PER_ROUND)
        chosen: list[PendingEnrollmentRecord] = []
        for pending in page:
            # its ticket too: records of one identity and authority, one per ticket, may
            # share a start (review 61l, enrollment 1)
            self.cursor = (
                pending.started_at,
                pending.identifier,
                pending.authority,
                pending.ticket,
            )
            if self.due(pending, now):
                chosen.append(pending)
                if len(chosen) == RESUMED_PER_ROUND:
                    break
        else:
            if len(page) < RESUME_SCANNED_PER_ROUND:  # the newest looked at: from the oldest next
                self.cursor = None
        return chosen


async def enroll(
    runtime: NodeRuntime,
    ticket_text: str,
    identity: str,
    key: str | None = None,
    *,
    over_copy: bool = False,
) -> Any:
    """Enroll local `identity` with the authority a ticket names: on this machine
    (`node:NAME`) through its node, else over a secure channel to the ticket's address
    (which must be that authority: pinned). Recoverable from a crash on either side
    (troth.enrollment): a repeat with the same ticket completes an interrupted one.
    `key`: the authority's pin confirmed out of band, `over_copy`: the operator's word over a
    conflicting stored copy, for this enrollment only (`check_ticket`): on this machine only
    (over the network judged without it, COPY_CONFLICT saying so: `over_copy_remote`), and
    only with `key` (ArgumentError without it, before anything: `check_over_copy`)."""
    enrollment.check_over_copy("enroll", over_copy, key)
    ticket, clock, wallet = parse_ticket(ticket_text), runtime.clock, runtime.node.wallet
    end: ChannelEnd | None = None
    if is_local(ticket.address):
        local = await runtime.worker.run(
            enroll_locally,
            runtime.node,
            ticket,
            identity,
            clock=clock,
            authority_pin=key,
            over_copy=over_copy,
        )
        result = local.to_json()
    else:
        authority = ticket_authority(ticket, now=runtime.clock.now())
        steps = enrollment.enrollment(  # without the flag: the channel to the authority never
            runtime.node.identities,  # takes its history over a conflicting copy, so the
            wallet,  # enrollment's own check refuses it before anything is recorded (review
            identity,  # 67y, remote 1; one check, no copy stored between two: review 68a,
            ticket,  # enroll 2)
            clock=clock,
            authority_pin=key,
        )
        try:
            request = await runtime.worker.run(enrollment.request_of, steps)
        except IdentityError as exc:
            refusal = enrollment.over_copy_remote(exc) if over_copy else exc
            if refusal is exc:
                raise
            raise refusal from None
        try:
            end = await runtime.channel_to(
                parse_route(ticket.address),
                also_trust=frozenset({authority}),
                expect=authority,
                claimed=True,  # a ticket's word: no pin on the address (review 43c, resume 1)
            )
            chain = await call(runtime.router, (end.enc, AUTHORITY), "enroll", request)
        except (AuthorityError, RemoteError) as exc:
            await runtime.worker.run(enrollment.refused, steps, exc)
            raise
        enrolled = await runtime.worker.run(
            enrollment.complete, steps, cbor.expect_bytes(chain, "chain")
        )
        await runtime._took_credential(end if identity == runtime.name else None)
        try:  # the enrollment committed: a failed feed sync is a warning, retried later
            feed = await runtime.sync_feed(authority, end)  # as a member: the channel shows it
            outcome = FeedOutcome(True, feed.count)
        except TrothError as exc:
            outcome = FeedOutcome(False, error=str(exc))
        return {**enrolled.to_json(), "feed": outcome.to_json()}
    await runtime._took_credential(None)
    return result


async def resume_enrollments(runtime: NodeRuntime) -> int:
    """Send again the enrollments of local identities that a crash interrupted (the node
    killed after its request left, the answer lost: docs/storage.md, "Recovery rules"), each
    round, at most RESUMED_PER_ROUND of them once RESUME_AFTER seconds old, going round all
    of them (`Resumption.choose`): an authority on this machine through its node, another
    over a secure channel pinned to it, all at once (one that keeps its request waiting holds
    back no other: review 39a, resume 3), those naming one address and one authority through
    the first (not reached, the others wait as it does: review 40b, resume 4; review 41c,
    resume 1). Completed, the credential is held and the pending record cleared; refused for
    good, the record is deleted; else it stays, and is sent again after a wait doubled at
    each attempt (RESUME_BACKOFF up to RESUME_BACKOFF_MAX), until its attempts have failed
    for RESUME_FOR: then it is left for an operator (review 39a, resume 2: an address that
    never answers was contacted each round, for good). Review 38c, enroll 2: before, a
    restarted node left them all for an operator. A record whose ticket or address can never
    be used (stored by an earlier version: review 45e, address 2) is dropped, logged, and no
    one contacted. Returns how many completed."""
    wallet, clock, state = runtime.node.wallet, runtime.clock, runtime.resumption
    due = await runtime.worker.run(state.choose, wallet, clock.now())
    due = await runtime.worker.run(state.not_held_back, wallet, due, clock.now())
    due = [pending for pending in due if not await _dropped(runtime, pending)]
    local: dict[bytes, list[PendingEnrollmentRecord]] = {}
    # by route and authority: a record pinned to another authority at the address is not
    # the address's (review 41c, resume 1); the route as `channel_to` locks it, whatever its
    # spelling (review 41c, resume 2)
    remote: dict[tuple[str, bytes], list[PendingEnrollmentRecord]] = {}
    for pending in due:
        if is_local(pending.address):
            local.setdefault(pending.identifier, []).append(pending)
        else:
            key = (_route_key(pending.address), pending.authority)
            remote.setdefault(key, []).append(pending)
    for key, records in remote.items():  # newest first: one that completes clears its
        # authority's older records, not sent then (review 61l, enrollment 1)
        remote[key] = await runtime.worker.run(newest_first, wallet.store, records)
    outcomes = await asyncio.gather(
        *(_resume_local(runtime, records) for records in local.values()),
        *(_resume_at(runtime, records) for records in remote.values()),
        return_exceptions=True,  # one's failure abandons no other midway
    )
    completed = 0
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            log.error("resuming an enrollment failed", exc_info=outcome)
        else:
            completed += outcome
    if completed:
        await runtime._took_credential(None)
    return completed


async def _dropped(runtime: NodeRuntime, pending: PendingEnrollmentRecord) -> bool:
    """Whether `pending` was dropped (forgotten and logged) as `unusable`."""
    why = unusable(pending)
    if why is None:
        return False
    await runtime.worker.run(runtime.node.wallet.forget_enrollment, pending)
    runtime.resumption.done(pending)
    log.warning(
        "enrollment of T%s with T%s dropped: it can never complete (%s)",
        pending.identifier.hex(),
        pending.authority.hex(),
        why,
    )
    return True


def _route_key(address: str) -> str:
    """`address` as a channel to it is locked by (`NodeRuntime.channel_to`: the parsed route,
    formatted); its text when it does not parse (its resumption fails on its own)."""
    try:
        return format_route(parse_route(address))
    except (TrothError, ValueError):
        return address


async def _resume_local(runtime: NodeRuntime, records: list[PendingEnrollmentRecord]) -> int:
    """Resume one identity's enrollments with authorities on this machine chosen this round
    (`records`: not its others, backed off or given up: review 40b, resume 3); how many
    completed."""
    identity, clock, state = "T" + records[0].identifier.hex(), runtime.clock, runtime.resumption
    chosen = frozenset((pending.authority, pending.ticket) for pending in records)
    try:
        resumed, _remote, failed = await runtime.worker.run(
            functools.partial(resume_locally, only=chosen),
            runtime.node,
            identity,
            clock=clock,
        )
    except TrothError as exc:
        log.warning("enrollment of %s: %s", identity, exc)
        for pending in records:
            state.failed(pending, clock.now())
        return 0
    refused = {(pending.authority, pending.ticket) for pending, _exc in failed}
    for pending, error in failed:
        log.warning("enrollment of %s with %s: %s", identity, Identifier(pending.authority), error)
    for pending in records:
        if (pending.authority, pending.ticket) in refused:
            state.failed(pending, clock.now())
        else:
            state.done(pending)
    return len(resumed)


async def _resume_at(runtime: NodeRuntime, records: list[PendingEnrollmentRecord]) -> int:
    """Resume the records naming one address and one authority: the first alone, then, the
    address reached, the others, each identity's one after the other (newest first: review
    61p, enrollment 2), the identities at once; not reached, the others wait as the first
    does, not contacted (a channel to one route is opened under its lock: each would have waited for
    the one before it to fail, each its own connect or handshake timeout; review 40b, resume
    4). A record pinned to another authority at the address is not of the group (review 41c,
    resume 1: a hostile ticket naming another authority's address, the oldest record there,
    failed its handshake at each round and held back every record of that authority,
    uncontacted, until given up). How many completed."""
    first = await _resume_remote(runtime, records[0])
    if first is None:
        state, now = runtime.resumption, runtime.clock.now()
        for pending in records[1:]:
            state.failed(pending, now)
        return 0
    # each identity's one after the other, newest first: one completing clears those after it,
    # then not sent (two sent at once both completed: review 61p, enrollment 2)
    by_identity: dict[bytes, list[PendingEnrollmentRecord]] = {}
    for pending in records[1:]:
        by_identity.setdefault(pending.identifier, []).append(pending)
    rest = await asyncio.gather(
        *(_one_at_a_time(runtime, group) for group in by_identity.values()),
        return_exceptions=True,
    )
    for outcome in rest:
        if isinstance(outcome, BaseException):
            log.error("resuming an enrollment failed", exc_info=outcome)
    return first + sum(r for r in rest if isinstance(r, int))


async def _one_at_a_time(runtime: NodeRuntime, records: list[PendingEnrollmentRecord]) -> int:
    """Resume `records` (one identity's, one address and authority) in their order; how many
    completed (a record cleared by the one before it is skipped: `_resume_remote`). One not
    answered (its outcome unknown: the authority may have committed it) holds back those after
    it, which wait as it does: an older one completing clears no newer, which would be sent
    again and complete too, a second credential (review 61r, enrollment 1)."""
    completed = 0
    for i, pending in enumerate(records):
        outcome = await _resume_remote(runtime, pending)
        if outcome is None:
            now = runtime.clock.now()
            for later in records[i + 1 :]:
                runtime.resumption.failed(later, now)
            break
        completed += outcome
    return completed


async def _resume_remote(runtime: NodeRuntime, pending: PendingEnrollmentRecord) -> int | None:
    """Resume one enrollment over a secure channel pinned to its authority (the trust the
    original `troth enroll` gave it: that authority alone, admitted as an anchor for this
    channel); 1 if it completed, 0 if not, None if its address was not reached (no channel,
    or no answer to the call)."""
    identity, clock, state = "T" + pending.identifier.hex(), runtime.clock, runtime.resumption
    wallet = runtime.node.wallet
    unreached = False
    if pending not in await runtime.worker.run(wallet.pending_enrollments, identity):
        state.done(pending)  # cleared meanwhile: a newer ticket's enrollment completed
        return 0
    try:
        authority = Identifier(pending.authority)
        steps = enrollment.resumption(runtime.node.identities, wallet, pending, clock=clock)
        request = await runtime.worker.run(enrollment.request_of, steps)
        try:
            end = await runtime.channel_to(
                parse_route(pending.address),
                also_trust=frozenset({authority}),
                expect=authority,
                claimed=True,  # a ticket's word: no pin on the address (review 43c, resume 1)
            )
            chain = await call(runtime.router, (end.enc, AUTHORITY), "enroll", request)
        except (AuthorityError, RemoteError) as exc:  # answered: a refusal
            await runtime.worker.run(enrollment.refused, steps, exc)
            raise
        except TrothError:  # no channel, or no answer to the call
            unreached = True
            raise
        await runtime.worker.run(enrollment.complete, steps, cbor.expect_bytes(chain, "chain"))
    except TrothError as exc:  # kept (unless refused for good): tried again after a wait
        log.warning("enrollment of %s: %s", identity, exc)
        state.failed(pending, clock.now())
        return None if unreached else 0
    state.done(pending)
    return 1


async def refresh_feeds(runtime: NodeRuntime) -> None:
    """Feeds: the hosted one re-read, a local one synced from its node, a remote one over
    a channel (trust re-read first when another process changed it, e.g. an enrollment); the
    others' at once, up to `MAX_CONCURRENT_FEED_SYNCS` at a time, each within its own timeouts
    (review 62t, feeds 1: one after the other, four slow authorities outlasted FEED_STALENESS
    and every other's members were refused)."""
    now = runtime.clock.now()
    if await runtime.worker.run(runtime.trust.routes_changed):
        await runtime.reload()
    await runtime.worker.run(runtime.trust.refresh_hosted, now, force=True)
    hosted = runtime.trust.hosted

    async def sync(authority: Identifier, address: str) -> None:
        try:
            await _sync_feed_at(runtime, authority, address, now)
        except TrothError as exc:
            log.warning("feed of %s: %s", authority, exc)

    await each_at_once(
        [
            functools.partial(sync, authority, address)
            for authority, address in runtime.trust.routes.items()
            if hosted is None or authority != hosted.identifier
        ],
        MAX_CONCURRENT_FEED_SYNCS,
    )


async def sync_trusted_feed(runtime: NodeRuntime, authority: Identifier) -> int | None:
    """Sync the feed of `authority` now, as the maintenance round does (trust re-read first
    when another process changed it; the hosted one re-read): its entry count, None when the
    node does not trust it or holds no feed of it (its hosted authority held). What a
    revocation made on this machine asks every node running here (control op `feed.sync`:
    review 48c, revocation 2: they admitted what was revoked until their next round)."""
    now = runtime.clock.now()
    if await runtime.worker.run(runtime.trust.routes_changed):
        await runtime.reload()
    hosted = runtime.trust.hosted
    if hosted is not None and authority == hosted.identifier:
        await runtime.worker.run(runtime.trust.refresh_hosted, now)
        held = runtime.trust.feeds.get(authority)  # none while a hold is on it (review 65z,
        return None if held is None else held.count  # hold 3: a KeyError answered the sync)
    address = runtime.trust.routes.get(authority)
    if address is None:
        return None
    return (await _sync_feed_at(runtime, authority, address, now)).count


async def _sync_feed_at(
    runtime: NodeRuntime, authority: Identifier, address: str, now: int
) -> VerifiedFeed:
    """Sync `authority`'s feed from `address`: its node on this machine, or over a channel."""
    if is_local(address):
        node = runtime.node
        # as a sync over a channel (troth.node.feedsync): the marks of revocations made here
        # that no revocation under way holds go once it completed, and the node's decisions
        # read the marks standing (review 48w, duepeer 1)
        orphaned = await runtime.worker.run(orphaned_marks, node, authority)
        feed = await runtime.worker.run(sync_local_feed, node, authority, address=address, now=now)
        runtime.trust.set_feed(authority, feed)
        if orphaned:
            await runtime.worker.run(clear_marks, node, authority, orphaned)
        await runtime.worker.run(runtime.trust.read_due)
        return feed
    end = await runtime.channel_to(parse_route(address), expect=authority)
    return await runtime.sync_feed(authority, end)


async def refresh_credentials(runtime: NodeRuntime, *, margin: int = REFRESH_MARGIN) -> int:
    """Refresh credentials expiring within `margin` seconds or issued before their authority
    rotated (at once, as `refresh_feeds` syncs feeds); present the fresh ones on open channels
    (in-band), and on those completing their handshake once they open. Returns how many."""
    now = runtime.clock.now()
    held = await runtime.worker.run(runtime.node.wallet.held, runtime.name)
    due: list[tuple[Identifier, str]] = []
    for authority, address in list(runtime.trust.routes.items()):
        known = await runtime.worker.run(runtime.node.wallet.known_changes, authority)
        feed = runtime.trust.feeds.get(authority)  # a revoked one is due (review 35a, due 1)
        if needs_refresh(held, authority, known, now, margin, feed=feed):
            due.append((authority, address))

    async def refresh(authority: Identifier, address: str) -> int:
        try:  # one authority's failure holds back no other's (review 22, finding 6)
            await _refresh_from(runtime, authority, address, now)
        except TrothError as exc:
            said = await runtime.worker.run(_refusal, runtime, authority, exc, held)
            log.warning("credential of %s: %s", authority, said)
            return 0
        return 1

    # at once: an unreachable one delays no other's (review 62t, feeds 2)
    calls = [functools.partial(refresh, authority, address) for authority, address in due]
    refreshed = sum(await each_at_once(calls, MAX_CONCURRENT_FEED_SYNCS))
    if refreshed:  # on each open channel in a task of its own: a peer that does not read
        me = await runtime._renew_identity()  # holds back no other
        shows = showing(me.history)
        for end in list(runtime.channels.ends.values()):
            # only on the channels opened as the node: a peer verifies the chains as the
            # identity the channel shows, and closed one opened as another local identity
            # (`channel_as`) at each refresh (review 34b, in-band 1)
            # and those still completing their handshake, once open: the credentials they
            # carried are the replaced ones (review 65k, refresh 1: a channel awaiting its
            # ACCEPTED held them for its life)
            state = end.channel.state
            if state is not ChannelState.CLOSED and shows(end):
                opening = state is not ChannelState.OPEN
                runtime._spawn(_present(end, me.credentials, once_open=opening))
    return refreshed


def showing(history: bytes) -> Callable[[ChannelEnd], bool]:
    """Whether a channel end shows the identity whose (current) history is `history` (decoded
    once, for every end asked about)."""
    try:
        digest: bytes | None = UnverifiedHistory.decode(history).identifier_digest
    except DecodeError:
        digest = None

    def shows(end: ChannelEnd) -> bool:
        try:
            return UnverifiedHistory.decode(end.channel.me.history).identifier_digest == digest
        except DecodeError:
            return False

    return shows


async def _refresh_from(
    runtime: NodeRuntime, authority: Identifier, address: str, now: int
) -> None:
    hosted, wallet = runtime.trust.hosted, runtime.node.wallet
    if hosted is not None and authority == hosted.identifier:
        await runtime.worker.run(_refresh_hosted_member, runtime, hosted, now)
    elif is_local(address):
        await runtime.worker.run(
            refresh_locally,
            runtime.node,
            runtime.name,
            authority,
            address=address,
            clock=runtime.clock,
        )
    else:
        request = await runtime.worker.run(
            refresh_request, runtime.node.identities, runtime.name, authority, now=now
        )
        end = await runtime.channel_to(parse_route(address), expect=authority)
        answer = await call(runtime.router, (end.enc, AUTHORITY), "refresh", request)
        await runtime.worker.run(  # held only as `authority`'s (review 34b, refresh 1)
            wallet.hold,
            runtime.name,
            cbor.expect_bytes(answer, "chain"),
            now=now,
            authority=authority,
        )


def _refusal(
    runtime: NodeRuntime, authority: Identifier, exc: TrothError, held: list[HeldCredential]
) -> str:
    """What a refused refresh says: the authority's answer, unless it answered that the node's
    identity is no member and the feed the node holds of it says why: the identity revoked for
    good, or every credential it issued the identity revoked (removed). A revoked node said
    it was "not a member of this authority", as one never enrolled does (review 63u,
    refresh 2). The answer itself tells no more than before: the reason is the public feed's."""
    refusal = authority_refusal(exc)  # in process, or over a channel (`failure_response`)
    refused = refusal is not None and refusal.reason is AuthorityFailure.NOT_A_MEMBER
    feed = runtime.trust.feeds.get(authority)
    if not refused or feed is None:
        return str(exc)
    try:  # (the answer as it was, rather than no word of this refresh at all)
        me = Identifier(runtime.node.wallet.identities.find(runtime.name).identifier)
    except TrothError:
        return str(exc)
    if feed.identity_revoked(me.digest):
        return f"revoked: its feed revokes {me} for good, and it issues it no credential"
    mine = [h for h in held if h.authority == authority.digest]
    if mine and all(revokes_a_link(h.chain, lambda _: feed) for h in mine):
        return f"revoked: {me} is no longer its member, and its feed revokes its credentials"
    return str(exc)


def _refresh_hosted_member(runtime: NodeRuntime, hosted: Authority, now: int) -> None:
    request = refresh_request(runtime.node.identities, runtime.name, hosted.identifier, now=now)
    chain = hosted.refresh(request, now=now).encode()
    runtime.node.wallet.hold(runtime.name, chain, now=now, authority=hosted.identifier)


async def _present(
    end: ChannelEnd, credentials: tuple[bytes, ...], *, once_open: bool = False
) -> None:
    """Show `credentials` on channel `end` (in-band refresh; a channel gone, or whose handshake
    fails, is no error), `once_open`: when its handshake completes (it fails, or the channel
    closes, at its handshake timeout at the latest)."""
    with contextlib.suppress(TrothError):
        if once_open:
            await asyncio.shield(end.established)
        await end.present(credentials)
