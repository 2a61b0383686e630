"""Rotation announcements (docs/protocols.md, "Nodes"): after a local identity
rotates, its new history goes to every authority it holds credentials from that has not seen it
yet — the hosted authority in process, one on this machine through its node, any other over a
secure channel to its node (pinned to the authority). What fails stays pending in the wallet
for the node's next maintenance round.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from troth.authority import Authority
from troth.authority.client import rotated_request
from troth.clock import Clock
from troth.credentials.wallet import Announcement
from troth.encoding import cbor
from troth.errors import Busy, ChannelError, Denied, NotFound, RemoteError, TrothError
from troth.identity import Identifier
from troth.limits import MAX_CONCURRENT_FEED_SYNCS
from troth.node.at_once import each_at_once
from troth.node.authorities import announce_locally, is_local, rotated_here
from troth.node.channel_ends import ChannelEnd
from troth.node.forked_refusal import fork_explained, refused_as_fork
from troth.node.node import Node
from troth.node.services import call, service_address
from troth.node.trust import NodeTrust
from troth.node.worker import StoreWorker
from troth.routing import Route, Router, parse_route

__all__ = ["Announcer"]

AUTHORITY = service_address("authority")
log = logging.getLogger("troth.node")


class ChannelTo(Protocol):
    """How the node opens (or reuses) a channel to the node of an authority."""

    def __call__(self, route: Route, *, expect: Identifier) -> Awaitable[ChannelEnd]: ...


class ChannelAs(Protocol):
    """How the node opens a channel of its own showing local identity `name`'s history."""

    def __call__(
        self, name: str, route: Route, *, expect: Identifier | None = None
    ) -> Awaitable[ChannelEnd]: ...


class Announcer:
    """Announces the rotated histories of a node's local identities (module docstring).
    `rotated` runs once the node's own identity's (`own`) announcements ended (told: whether
    one of them succeeded); `tell_hosted` once the hosted authority took a supersession."""

    def __init__(
        self,
        node: Node,
        trust: NodeTrust,
        *,
        own: str,
        worker: StoreWorker,
        clock: Clock,
        router: Router,
        channel_to: ChannelTo,
        rotated: Callable[[bool], Awaitable[None]],
        channel_as: ChannelAs | None = None,
        tell_hosted: Callable[[], None] | None = None,
    ) -> None:
        self.node = node
        self.trust = trust
        self.own = own
        self.worker = worker
        self.clock = clock
        self.router = router
        self._channel_to = channel_to
        self._rotated = rotated
        self._channel_as = channel_as
        self._tell_hosted = tell_hosted
        """Asks the nodes running here to sync the hosted authority's feed, in the background
        (`AuthorityService.tell_local_nodes`)."""
        self.told_here: Callable[[Authority], None] | None = None
        """Tells the runtimes served in this process of a supersession an authority on this
        machine took, with it open (troth._api.network sets it: `sync_runtimes_here`): told by
        nobody, one served here refused that authority's members from its next poll of the
        marks until its sync ended (review 69p, flake 1)."""
        self._one = asyncio.Lock()
        """Held by the `announce` running (review 63o, lifecycle 2)."""
        self._forked: dict[tuple[str, Identifier], str] = {}
        """The identity (its identifier) whose history the authority refused as a fork at the
        last announcement of (local identity, authority); gone once one succeeds. At most one
        per pending announcement (review 65a, forked 2: `troth identity show` reads it)."""
        self._to_tell: set[Identifier] = set()
        """The authorities here whose feed the daemons running here are still to be asked to
        sync (`_tell_here`), and whether a telling runs (one at a time: review 70d, telling 1)."""
        self._telling = False
        self._telling_lock = threading.Lock()

    def refused_as_fork(self) -> list[dict[str, str]]:
        """The identities (identifiers) whose last announcement an authority refused as a fork
        of their history, each with that authority (`node status`: `refused_as_fork`)."""
        return [
            {"identity": refused, "authority": str(authority)}
            for (_, authority), refused in sorted(self._forked.items(), key=str)
        ]

    async def announce(self, ref: str | None = None) -> list[dict[str, Any]]:
        """Announce rotated histories (`ref`'s, else every local identity's) to the authorities
        they hold credentials from that have not seen them yet; one row per announcement (an
        `error` for one that stays pending), in the order of the identities and authorities.

        At once, `limits.MAX_CONCURRENT_FEED_SYNCS` at a time, as the round syncs the feeds:
        one after the other, each pending announcement to an unreachable authority held back
        every other's by a channel and a call (~25 s; review 62t, feeds 3). The order that
        matters is kept: the node's own identity's announcements start once those of the
        identities listed before it ended, and `rotated` runs once all of its own ended
        (failed or not), before any announcement of an identity listed after it starts (they
        go over channels that `rotated` closes: review 63g, announce).

        One at a time: the maintenance round, the catch-up after a reconnect and `troth
        identity rotate` with the node running ran theirs at once, each pending announcement
        sent twice at the same time, and `rotated` run twice, once while the other's own
        announcement was under way over a channel it closed (review 63o, lifecycle 2); the one
        asked for next reads what is still pending once the one running ended."""
        async with self._one:
            return await self._announce_pending(ref)

    async def _announce_pending(self, ref: str | None) -> list[dict[str, Any]]:
        pending = await self.worker.run(self._unannounced, ref)
        self._forget_told(ref, pending)
        results: list[dict[str, Any]] = []
        before: list[Callable[[], Awaitable[dict[str, Any]]]] = []
        for name, changes, authorities in pending:
            calls = [functools.partial(self._tell, name, changes, a) for a in authorities]
            if name != self.own or not authorities:
                before.extend(calls)
                continue
            results += await each_at_once(before, MAX_CONCURRENT_FEED_SYNCS)
            own = await each_at_once(calls, MAX_CONCURRENT_FEED_SYNCS)
            results += own
            await self._rotated(any(row["announced"] for row in own))  # told one (65j, rotated 1)
            before = []
        results += await each_at_once(before, MAX_CONCURRENT_FEED_SYNCS)
        return results

    def _forget_told(
        self, ref: str | None, pending: list[tuple[str, int, list[Identifier]]]
    ) -> None:
        """Drop the fork refusals of the announcements no longer pending (`ref`'s, else every
        one not read pending now: one recorded under another spelling of an identity, its
        identifier, is recorded again under its name if still refused). Each was kept until an
        announcement under its spelling succeeded: listed twice, or for the node's life once
        nothing was pending there (review 65j, forked 3)."""
        still = {(name, authority) for name, _, authorities in pending for authority in authorities}
        for key in list(self._forked):
            if (ref is None or key[0] == ref) and key not in still:
                del self._forked[key]

    async def _tell(self, name: str, changes: int, authority: Identifier) -> dict[str, Any]:
        """Announce `name`'s history to `authority`: its row (an `error`: it stays pending)."""
        try:
            seq = await self._announce(name, authority)
            done = await self.worker.run(
                self.node.wallet.mark_announced, name, authority, changes, seq
            )
            self._forked.pop((name, authority), None)
        except TrothError as exc:
            if refused_as_fork(exc):  # review 64u, rotation 3: no round can change it
                # a close: the channels it goes over show the node's own history, whoever's
                # `name` is, and that is the one refused (review 64y, forked 2); an answer to
                # the `rotated` request: `name`'s own history (review 65a, forked 1)
                channel = isinstance(exc, ChannelError)
                whose = self.own if channel else name
                record = await self.worker.run(self.node.identities.find, whose)
                refused = str(Identifier(record.identifier))
                error = fork_explained(exc, refused)
                if whose != name:
                    error = f"the node's own identity {refused} (its channel) was refused: {error}"
                self._forked[(name, authority)] = refused
                return Announcement(name, authority, changes, error=error, forked=True).to_json()
            done = Announcement(name, authority, changes, error=str(exc))
        return done.to_json()

    def _unannounced(self, ref: str | None) -> list[tuple[str, int, list[Identifier]]]:
        identities, wallet = self.node.identities, self.node.wallet
        refs = (
            [ref]
            if ref is not None
            else [r.name or str(Identifier(r.identifier)) for r in identities.list_local()]
        )
        return [(name, *wallet.unannounced(name)) for name in refs]

    async def _announce(self, ref: str, authority: Identifier) -> int | None:
        now = self.clock.now()
        hosted = self.trust.hosted
        if hosted is not None and authority == hosted.identifier:
            return await self.worker.run(self._announce_hosted, hosted, ref, now)
        address = self.trust.routes.get(authority)
        if address is None:
            raise NotFound(f"no route to authority {authority}")
        if is_local(address):
            took: int | None = await self.worker.run(
                announce_locally,
                self.node,
                ref,
                authority,
                address=address,
                now=now,
                told=self.told_here,
            )
            if took is not None:
                self._tell_here(authority)
            return took
        request = await self.worker.run(
            rotated_request, self.node.identities, ref, authority, now=now
        )
        route = parse_route(address)
        end = await self._channel_to(route, expect=authority)
        try:
            seq = await call(self.router, (end.enc, AUTHORITY), "rotated", request)
        except (Denied, RemoteError) as exc:  # refused, not unreachable
            channel_as = self._channel_as
            if isinstance(exc, Busy) or ref != self.own or channel_as is None:
                raise
            end = await channel_as(ref, route, expect=authority)
            seq = await self._over_rotated(end, request)
        return None if seq is None else cbor.expect_int(seq, "seq")

    async def _over_rotated(self, end: ChannelEnd, request: bytes) -> Any:
        """Announce the node's own rotation again over a channel of its own showing the rotated
        history: the shared channel still shows the history before it (`rotated` renews it
        once the announcements ended), which an authority whose feed names another rotation
        (a thief's, announced first) refuses as "superseded ... fewer changes", as if this
        node missed a rotation; the rotated history gets the authority's own word, a fork
        refused (review 64u, rotation 2). `end`: that channel, closed after."""
        try:
            return await call(self.router, (end.enc, AUTHORITY), "rotated", request)
        finally:
            await end.close()

    def _tell_here(self, authority: Identifier) -> None:
        """Ask the daemons running the other nodes here to sync `authority`'s feed, on a
        thread of its own (a daemon thread, as the authority service's telling): asked on the
        storage thread, each daemon not answering held every storage call of this node 30 s
        (review 69d, notify 3). One telling at a time: the authorities announced meanwhile are
        told once more after it, together (`tell_nodes_here`); a thread per announcement ran
        n tellings at once for n identities rotated, each with up to MAX_NODES_TOLD_AT_ONCE
        threads waiting on the silent daemons, each daemon asked n times (review 70d,
        telling 1)."""
        with self._telling_lock:
            self._to_tell.add(authority)
            if self._telling:
                return
            self._telling = True
        try:
            threading.Thread(
                target=self._tell_pending, name="troth-tell-local-nodes", daemon=True
            ).start()
        except BaseException as exc:
            # out of threads or memory, or the interpreter exiting: `authority` stays to tell,
            # with the next announcement's (raised, it failed a round whose announcement was
            # taken: review 70m, telling2 2; the flag stayed set for a MemoryError: 70r,
            # wave2a 2)
            with self._telling_lock:
                self._telling = False
            if not isinstance(exc, Exception):
                raise
            log.warning("the nodes running here were not told of a rotation: %r", exc)

    def _tell_pending(self) -> None:
        from troth.node.traces import tell_nodes_here  # (it imports the trace log)

        while True:
            with self._telling_lock:
                authorities = sorted(self._to_tell, key=lambda each: each.digest)
                self._to_tell.clear()
                if not authorities:
                    self._telling = False
                    return
            try:
                tell_nodes_here(self.node, authorities)
            except Exception:  # logged: the tellings after it go on
                log.exception("telling the nodes running here of a rotation")
            except BaseException:  # (a later announcement starts a telling again)
                with self._telling_lock:
                    self._telling = False
                raise

    def _announce_hosted(self, hosted: Authority, ref: str, now: int) -> int | None:
        """To the authority this node hosts: the other nodes here marked due a sync of its
        feed first, and those running told after (`tell_hosted`), as `announce_locally` does
        (review 68u, notify 1: none was, and they kept the feed the rotation superseded), and
        the nodes served in this process synced (`told_here`; review 69u, wave3 2: told by
        nobody, they refused its members from their next poll of the marks until their sync)."""
        seq = rotated_here(self.node, hosted, ref, now=now)
        self.trust.refresh_hosted(now)
        if seq is not None and self.told_here is not None:
            self.told_here(hosted)
        if seq is not None and self._tell_hosted is not None:
            self._tell_hosted()
        return seq
