"""Links: the nodes this node keeps a secure channel to, and how it gets them back on its own
(docs/protocols.md, "Reconnecting").

A link is a route to another node (`/tcp/hub:4000`) and what this node needs there: the relay
names it created there, and the authority whose feed, credential refreshes and rotation
announcements go there. When the link's channel closes (its connection closed, or the
keepalive found it silent), the link reconnects with exponential backoff and full jitter,
pinned to the identity expected there (`Link.pin`: its authority's, else the one that answered
there first), and restores what it needs there (the runtime's `restore`: the relays, the feed,
then pending refreshes and announcements).

    idle --opened--> connected --lost--> reconnecting --due--> connecting
    connecting --restored--> connected
    connecting --failed--> reconnecting (attempts + 1)
    reconnecting --opened (by anyone)--> connecting (at once)

Backoff: before attempt n (from 0) the link waits uniform(0, min(max_delay, base * 2**n))
seconds ("full jitter"): 0.5 s base, 10 s cap by default, so a link whose node answers again
is back within about 10 s plus one handshake, and many nodes that lost the same hub do not
come back at the same instant. A channel lost sooner than `max_delay` after its link connected
counts as a failed attempt too (`Link.flaps`, reset once a channel stays up that long), so a
peer that closes every channel as soon as the link has it back meets the same growing waits
(review 28a, links 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from troth.identity import Identifier
from troth.node.channel_ends import ChannelEnd
from troth.node.forked_refusal import fork_explained, refused_as_fork
from troth.transport.settings import settings_from_environment

__all__ = [
    "RECONNECT_BASE",
    "RECONNECT_ENVIRONMENT_PREFIX",
    "RECONNECT_MAX_DELAY",
    "Backoff",
    "Link",
    "LinkRow",
    "LinkState",
    "LinkStep",
    "Links",
    "next_link_state",
]

log = logging.getLogger("troth.node.links")
RECONNECT_BASE: Final = 0.5
"""Seconds: the backoff's first ceiling (attempt 0 waits up to this long)."""
RECONNECT_MAX_DELAY: Final = 10.0
"""Seconds: the backoff's cap (no attempt waits longer)."""
RECONNECT_ENVIRONMENT_PREFIX: Final = "TROTH_RECONNECT_"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter (seconds)."""

    base: float = RECONNECT_BASE
    max_delay: float = RECONNECT_MAX_DELAY

    def __post_init__(self) -> None:
        if not (0 < self.base < math.inf and 0 < self.max_delay < math.inf):  # NaN too: a
            # NaN wait ends at once (review 28a, settings 1)
            raise ValueError("backoff: base and max_delay must be positive numbers of seconds")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Backoff:
        """The defaults, with `TROTH_RECONNECT_BASE` / `TROTH_RECONNECT_MAX_DELAY` set in the
        environment (ConfigError for an unknown name or a bad value)."""
        return settings_from_environment(cls, RECONNECT_ENVIRONMENT_PREFIX, environ)

    def ceiling(self, attempt: int) -> float:
        """The longest wait before attempt `attempt` (0 for the first)."""
        return min(self.max_delay, self.base * 2.0 ** min(max(attempt, 0), 60))

    def delay(self, attempt: int, random: Callable[[], float]) -> float:
        """The wait before attempt `attempt`: uniform in [0, ceiling) for `random()` in [0, 1)."""
        return self.ceiling(attempt) * random()


class LinkState(enum.Enum):
    """Where a link is."""

    IDLE = "idle"  # nothing lost yet: no channel open (a channel is opened when needed)
    CONNECTED = "connected"  # its channel is open and what it needs there is in place
    RECONNECTING = "reconnecting"  # its channel was lost: waiting for the next attempt
    CONNECTING = "connecting"  # an attempt is under way

    __hash__ = object.__hash__


class LinkStep(enum.Enum):
    """What moves a link on."""

    OPENED = "a channel to the route opened"
    LOST = "its channel closed"
    DUE = "the backoff delay passed"
    RESTORED = "an attempt restored the channel and what the link needs"
    FAILED = "an attempt failed"

    __hash__ = object.__hash__


_L = LinkState
_TRANSITIONS: Final[dict[tuple[LinkState, LinkStep], LinkState]] = {
    (_L.IDLE, LinkStep.OPENED): _L.CONNECTED,
    (_L.IDLE, LinkStep.DUE): _L.CONNECTING,  # a restarted node's kept relays (`Links.resume`)
    (_L.CONNECTED, LinkStep.OPENED): _L.CONNECTED,
    (_L.CONNECTED, LinkStep.LOST): _L.RECONNECTING,
    (_L.RECONNECTING, LinkStep.OPENED): _L.CONNECTING,
    (_L.RECONNECTING, LinkStep.DUE): _L.CONNECTING,
    (_L.CONNECTING, LinkStep.OPENED): _L.CONNECTING,
    (_L.CONNECTING, LinkStep.LOST): _L.CONNECTING,
    (_L.CONNECTING, LinkStep.RESTORED): _L.CONNECTED,
    (_L.CONNECTING, LinkStep.FAILED): _L.RECONNECTING,
}


def next_link_state(state: LinkState, step: LinkStep) -> LinkState:
    """The state after `step`; a step a state does not take leaves it as it is (a channel
    lost while the link is idle or reconnecting changes nothing)."""
    return _TRANSITIONS.get((state, step), state)


@dataclass(slots=True)
class Link:
    """One link: its route, what this node needs there, and where it is."""

    route: str
    relays: set[str] = field(default_factory=set)
    """The relay names this node created there (created again after a reconnect)."""
    authority: Identifier | None = None
    """The authority reached there (its feed is synced again after a reconnect)."""
    peer: Identifier | None = None
    """Who answered there last (the link's own channel: never another than `pin`)."""
    end: ChannelEnd | None = None
    state: LinkState = LinkState.IDLE
    attempts: int = 0
    """Attempts that failed since the channel was lost."""
    retry_at: float | None = None
    """When the next attempt starts (time.monotonic), while reconnecting."""
    error: str | None = None
    """Why the last attempt failed."""
    forked: bool = False
    """The last attempt failed as the authority the link reaches (`authority`; no other peer:
    review 64y, forked 1) refused this node's history as a fork of the copy it stored
    (troth.node.forked_refusal: no attempt can change that)."""
    flaps: int = 0
    """Channels lost in a row sooner than the backoff's `max_delay` after the link connected
    (docs/protocols.md, "Reconnecting"): each counts as a failed attempt in the waits before
    the next attempts, so a peer that closes every channel as soon as the link has it meets
    a growing backoff (review 28a, links 1). Reset once a channel stays up that long."""
    connected_at: float | None = None
    """When the link last became connected (time.monotonic)."""
    lost_while_connecting: bool = False
    """The link's channel closed while the attempt under way restored what it needs: the
    attempt fails, whatever channel the link holds when it ends (one another caller opened
    there meanwhile never heard of the relays the attempt created: review 65x, links 1)."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pin(self) -> Identifier | None:
        """The identity expected at the route (its attempts' `expect`): the authority reached
        there, from the link's creation (a restarted node's link has no `peer` yet, and the
        first channel anyone opened there, answered by whoever held the address, pinned it:
        review 25, relays 2); else, for a link only to relays, the identity that answered
        there first (the node has no other word on who is there)."""
        return self.authority or self.peer

    def step(self, step: LinkStep) -> None:
        """Move on by `step` (the one transition table: `next_link_state`)."""
        state = next_link_state(self.state, step)
        if state is LinkState.CONNECTED and self.state is not LinkState.CONNECTED:
            self.connected_at = time.monotonic()
        self.state = state


@dataclass(frozen=True, slots=True)
class LinkRow:
    """What `node status` shows of one link."""

    route: str
    state: LinkState
    peer: str | None
    relays: tuple[str, ...]
    authority: str | None
    attempts: int
    retry_in_ms: int | None
    """Milliseconds until the next attempt, while reconnecting (the control protocol's CBOR
    carries no floats)."""
    error: str | None
    flaps: int = 0
    """Channels lost at once after the link connected, since one last stayed up (`Link.flaps`:
    they grow the backoff as failed attempts do)."""
    forked: bool = False
    """The last attempt was refused as a fork of this node's history (`Link.forked`)."""

    def to_json(self) -> dict[str, Any]:
        """The row as JSON (the state as its text)."""
        return {
            "route": self.route,
            "state": self.state.value,
            "peer": self.peer,
            "relays": list(self.relays),
            "authority": self.authority,
            "attempts": self.attempts,
            "retry_in_ms": self.retry_in_ms,
            "error": self.error,
            "flaps": self.flaps,
            "forked": self.forked,
        }

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> LinkRow:
        """A row from its JSON (what `node status` answers over the control socket)."""
        return cls(
            str(row["route"]),
            LinkState(row["state"]),
            row.get("peer"),
            tuple(row.get("relays") or ()),
            row.get("authority"),
            int(row.get("attempts") or 0),
            row.get("retry_in_ms"),
            row.get("error"),
            int(row.get("flaps") or 0),
            bool(row.get("forked")),
        )

    def describe(self) -> str:
        """One line for people: `/tcp/hub:4000 reconnecting in 2.3 s (attempt 3: ...)`."""
        needs = [f"relay {name}" for name in self.relays]
        if self.authority is not None:
            needs.append(f"feed of {self.authority[:12]}…")
        state = self.state.value
        if self.state is LinkState.RECONNECTING and self.retry_in_ms is not None:
            state = f"reconnecting in {self.retry_in_ms / 1000:.1f} s (attempt {self.attempts + 1}"
            state += f"; last: {self.error})" if self.error else ")"
        line = f"{self.route} {state}" + (f" [{', '.join(needs)}]" if needs else "")
        if self.flaps:  # quick losses grow the backoff as failed attempts do (review 30)
            line += f" (lost at once {self.flaps} time{'' if self.flaps == 1 else 's'})"
        return line


class Links:
    """The node's links and their reconnect tasks (asyncio). `restore(link)` reopens a link's
    channel and what it needs there (raises when it cannot)."""

    def __init__(
        self,
        restore: Callable[[Link], Awaitable[None]],
        *,
        backoff: Backoff | None = None,
        random: Callable[[], float] | None = None,
        judges: Callable[[Identifier], bool] | None = None,
    ) -> None:
        self.restore = restore
        self.judges = judges
        """Whether an authority's fork refusal is its word on this node's identity: one the
        identity holds a credential of (review 64a2, forked 1: a co-trusted authority, whose
        feed the node only syncs, told the owner to give up her identity). None: any a link
        reaches (`Links` outside a runtime)."""
        self.backoff = backoff or Backoff()
        self.random = random or _random.random
        self.links: dict[str, Link] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopped = False

    def link(self, route: str) -> Link:
        """The link to `route` (its text form), created idle if new."""
        found = self.links.get(route)
        if found is None:
            found = self.links[route] = Link(route)
        return found

    def pin(self, route: str) -> Identifier | None:
        """The identity the link to `route` expects there (None: no link, or no pin yet)."""
        link = self.links.get(route)
        return None if link is None else link.pin

    def opened(self, route: str, end: ChannelEnd) -> None:
        """A channel to `route` opened (by the link's attempt or by anyone else); one that
        has closed already counts as opened and lost (the link reconnects)."""
        link = self.links.get(route)
        if link is None:
            return
        peer, pin = end.peer.identifier if end.peer is not None else None, link.pin
        if pin is not None and peer is not None and peer != pin:
            # a channel opened there without the link's pin (`message send`) and answered by
            # another identity: not the link's, nor its new pin (review 23b, relays 3)
            log.warning("link %s: %s answered a channel there, not %s", route, peer, pin)
            return
        link.end = end
        if peer is not None:
            link.peer = peer
        if link.state is LinkState.RECONNECTING:
            link.wake.set()  # what the link needs is restored over it now
        link.step(LinkStep.OPENED)
        if end.channel.closed:  # it closed before its opener resumed (an answer and the
            # peer's CLOSE in one read): its closed hook found no link holding it, and none
            # would again; lost at once, the link reconnects (review 27b, links 1)
            self.closed(end)

    def closed(self, end: ChannelEnd) -> None:
        """A channel end closed (the channel manager's hook): a link whose channel it was
        starts reconnecting."""
        for link in self.links.values():
            if link.end is not end:
                continue
            link.end = None
            if link.state is LinkState.CONNECTING:
                link.lost_while_connecting = True
            if link.state is LinkState.CONNECTED and not self._stopped:
                log.warning("link %s lost (%s): reconnecting", link.route, end.name)
                since = link.connected_at
                if since is not None and time.monotonic() - since < self.backoff.max_delay:
                    link.flaps += 1  # lost as soon as it was back: the backoff grows
                else:
                    link.flaps = 0
                link.step(LinkStep.LOST)
                link.attempts, link.error, link.forked = 0, None, False
                self._start(link)

    def resume(self, route: str) -> None:
        """Have the idle link to `route` connect now (a restarted node's link holding relay
        names it kept: troth.node.own_relays), retried with the backoff like a lost one."""
        link = self.links.get(route)
        if link is None or link.state is not LinkState.IDLE or self._stopped:
            return
        link.step(LinkStep.DUE)
        self._start(link)

    def forget_unneeded(self) -> list[str]:
        """Forget the links this node needs nothing at any more (no relay there, no authority
        reached there: its route moved, `NodeRuntime._sync_links`), their reconnecting
        stopped; their routes. Such a link reconnected to the old address for good, every
        attempt a warning and a failed row in `node status` (review 65x, links 2)."""
        gone = [r for r, link in self.links.items() if not link.relays and link.authority is None]
        for route in gone:
            del self.links[route]
            task = self._tasks.pop(route, None)
            if task is not None:
                task.cancel()
        return gone

    def _start(self, link: Link) -> None:
        running = self._tasks.get(link.route)
        if running is not None and not running.done():
            return
        task = asyncio.get_running_loop().create_task(self._reconnect(link))
        self._tasks[link.route] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._tasks.get(link.route) is done:
                del self._tasks[link.route]

        task.add_done_callback(forget)

    async def _reconnect(self, link: Link) -> None:
        while True:
            if link.state is LinkState.RECONNECTING:
                # a channel lost soon after the link connected counts as a failed attempt
                # (review 28a, links 1)
                delay = self.backoff.delay(link.attempts + link.flaps, self.random)
                link.retry_at = time.monotonic() + delay
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await link.wake.wait()
                link.wake.clear()
                link.retry_at = None
                link.step(LinkStep.DUE)
            link.lost_while_connecting = False
            try:
                await self.restore(link)
                if link.end is None or link.lost_while_connecting:
                    raise ConnectionError("the channel closed again while it was restored")
            except Exception as exc:  # any failure: logged, retried after the backoff
                link.attempts += 1
                # review 64u, rotation 1: named, and what to do; only the word of the authority
                # the link reaches (its pin), not any peer's (review 64y, forked 1)
                # (review 64y, forked 1), and an authority of the node's identity (review 64a2,
                # forked 1: not a co-trusted one's)
                link.forked = self._judged_by(link.authority) and refused_as_fork(exc)
                link.error = (
                    fork_explained(exc, "IDENTITY")
                    if link.forked
                    else str(exc) or type(exc).__name__
                )
                link.step(LinkStep.FAILED)
                delay = self.backoff.ceiling(link.attempts + link.flaps)
                log.warning(
                    "link %s: attempt %d failed: %s (next within %.1f s)",
                    link.route,
                    link.attempts,
                    link.error,
                    delay,
                )
                continue
            link.step(LinkStep.RESTORED)
            log.info("link %s back after %d failed attempts", link.route, link.attempts)
            link.attempts, link.error, link.forked = 0, None, False
            return

    def _judged_by(self, authority: Identifier | None) -> bool:
        """Whether `authority`'s fork refusal is read as one (`judges`)."""
        if authority is None:
            return False
        return self.judges is None or self.judges(authority)

    def rows(self) -> list[LinkRow]:
        """One row per link, by route."""
        now = time.monotonic()
        return [
            LinkRow(
                link.route,
                link.state,
                None if link.peer is None else str(link.peer),
                tuple(sorted(link.relays)),
                None if link.authority is None else str(link.authority),
                link.attempts,
                None if link.retry_at is None else max(0, round((link.retry_at - now) * 1000)),
                link.error,
                link.flaps,
                link.forked,
            )
            for _, link in sorted(self.links.items())
        ]

    async def stop(self) -> None:
        """Stop reconnecting (before the node closes its channels)."""
        self._stopped = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        # their ends awaited, a cancellation of this stop going on to its caller (review 63v,
        # stop 4: swallowed, a bounded stop could not cut it short)
        await asyncio.gather(*tasks, return_exceptions=True)
