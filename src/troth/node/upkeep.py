"""A running node's upkeep: the maintenance round every MAINTENANCE_SECONDS (feeds, credentials,
rotations, peers, services, identity, interrupted enrollments), the watch on the hosted
authority's store, and re-reading the node's trust. Part of `NodeRuntime` (troth.node.runtime).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from troth.errors import TrothError
from troth.identity import Identifier
from troth.limits import HOSTED_FEED_FAILURES_LOGGED_EVERY, HOSTED_FEED_POLL, MAINTENANCE_SECONDS
from troth.node.channel_ends import ChannelEnd
from troth.node.key_renewal import due_for_new_key
from troth.node.membership import REFRESH_MARGIN
from troth.node.services import ServiceHost
from troth.node.services.calls import in_flight_through
from troth.node.services.node_policies import NodePolicies
from troth.node.shown_identity import ShownIdentity
from troth.node.trust import FEED_STALENESS
from troth.routing import Router

__all__ = ["HOSTED_FEED_POLL", "MAINTENANCE_SECONDS", "Upkeep"]

log = logging.getLogger("troth.node")


class Upkeep(ShownIdentity):
    """The maintenance round and the re-reading of trust (a part of `NodeRuntime`)."""

    host: ServiceHost
    router: Router
    policies: NodePolicies
    _rounds: asyncio.Lock
    """Held by the maintenance round running (`maintain`)."""
    credited: frozenset[Identifier]
    """The authorities the node's own identity holds credentials of (read with the trust):
    only their fork refusal on a link is read as one (`Links.judges`; review 64a2, forked 1)."""
    if TYPE_CHECKING:

        async def refresh_feeds(self) -> None: ...
        async def refresh_credentials(self, *, margin: int = REFRESH_MARGIN) -> int: ...
        async def announce_rotations(self, ref: str | None = None) -> list[dict[str, Any]]: ...
        async def resume_enrollments(self) -> int: ...
        def _sync_links(self) -> None: ...
        def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...

    async def _maintain(self) -> None:
        async with self._rounds:  # asked once a round under way ended (`start_running`'s: the
            behind = self._behind()  # node is then up to date; review 63g, upkeep 2)
        if behind:  # at once: the node is back only once these are (review 62m,
            await self.maintain()  # lifecycle 3: it refused their members for a round's wait)
        while True:
            await asyncio.sleep(MAINTENANCE_SECONDS)
            await self.maintain()

    def _behind(self) -> bool:
        """Whether the feed of an authority the node trusts elsewhere is missing, or stale
        before the first round would sync it (a node started after being down longer than a
        feed stays fresh: its credentials and announcements are due too)."""
        now, hosted = self.clock.now(), self.trust.hosted
        for authority in self.trust.routes:
            if hosted is not None and authority == hosted.identifier:
                continue
            feed = self.trust.feeds.get(authority)
            if feed is None or now - feed.issued_at > FEED_STALENESS - MAINTENANCE_SECONDS:
                return True
        return False

    async def maintain(self) -> None:
        """One maintenance round: feeds (and the vouchers of authorities they show lied),
        credentials, rotations, peers, identity, retired keys, services, then interrupted
        enrollments. Never two at once: one asked for while another runs waits for it (at
        start, `start_running`'s round and the upkeep's first, the node behind, ran at once,
        every step twice at the same time: review 63g, upkeep 2)."""
        async with self._rounds:
            await self._round()

    async def _round(self) -> None:
        # each step on its own: a failing refresh must never stop the re-checks of peers;
        # resuming enrollments last: a ticket's address that keeps its request waiting holds
        # back none of the others (review 39a, resume 3)
        steps: list[Callable[[], Coroutine[Any, Any, Any]]] = [
            self.refresh_feeds,
            self._forget_refuted,
            self.refresh_credentials,
            self.announce_rotations,
            self.channels.check_peers,
            self._renew_identity,
            self._replace_expiring_keys,  # after the renewal: the key the new channels show
            self._forget_retired_keys,
            self._maintain_services,
            self.resume_enrollments,
        ]
        for step in steps:
            try:
                await step()
            except Exception:  # logged, retried next round
                log.exception("maintenance: %s failed", getattr(step, "__name__", step))

    async def _replace_expiring_keys(self) -> None:
        """Close the channels showing a channel key whose attestation expires soon and was
        renewed since, each at its own time (troth.node.key_renewal): their links reconnect
        with the renewed key before a peer refuses the old one (review 68t, expiry 1). One
        with a request in flight waits for a round it has none, until its last time (review
        68v, renewal 1)."""
        me = self._me_cache
        if me is None:  # the renewal failed (its store): a new channel would fail as well
            return
        renewed = frozenset({me.identity.attestation})
        router = self.router

        def busy(end: ChannelEnd) -> bool:  # a request in flight over it, either way
            return bool(end.requests) or in_flight_through(router, end.enc) > 0

        now = self.clock.now()
        due = due_for_new_key(self.channels.ends.values(), now, renewed=renewed, busy=busy)
        if due:
            log.info("maintenance: %d channels closed to show the renewed channel key", len(due))
        for end in due:  # a task each, as `_rotated` closes its channels
            self._spawn(end.close())

    async def _forget_refuted(self) -> None:
        """Forget the vouchers of the authorities that named a made-up change another process
        recorded (`Vouchers.forget_refuted`: review 26b, refuted 2), or that a feed synced since
        names."""
        await self.worker.run(self.trust.vouchers.forget_refuted)

    async def _forget_retired_keys(self) -> None:
        """Delete the retired keys a process killed after its rotation's commit left recorded
        in a vault outside the database (a token's: review 47f, rotate 1), and the replaced
        channel keys past their grace (review 69t, chkeys 1), at the node's clock."""
        forgotten = await self.worker.run(self.node.identities.forget_retired, now=self.clock.now())
        if forgotten:
            log.info("maintenance: %d retired keys deleted from the vault", forgotten)

    async def _maintain_services(self) -> None:
        """Each service's maintenance on its own: one failing (node.db busy) holds back none
        of the others, this round or the next (review 62m, lifecycle 2: the relay after it
        re-decided no owner, freed no name)."""
        now = self.clock.now()
        if "policy" not in self.host.services:  # else the policy service does it, distributing
            # the bundles stored since (a push that never told this node: review 34d, crash 1)
            try:
                await self.worker.run(lambda: self.policies.reload(now=now))
            except Exception:  # logged, retried next round
                log.exception("maintenance: the policy bundles failed")
        for service in list(self.host.services.values()):
            try:
                await service.maintain(now)
            except Exception:  # logged, retried next round
                log.exception("maintenance: service %s failed", service.name)

    async def _watch_hosted(self) -> None:
        failing = 0  # polls failed in a row: the first said, then one in so many (review 62s,
        # upkeep 3: a lasting failure logged a traceback every second)
        while True:
            await asyncio.sleep(HOSTED_FEED_POLL)
            try:
                await self.worker.run(self.trust.refresh_hosted, self.clock.now())
            except Exception as exc:  # any: re-read at the next poll (review 62m, lifecycle 1:
                # the watch ended for good, a revocation made here waited for the maintenance
                # round's re-read)
                failing += 1
                if (failing - 1) % HOSTED_FEED_FAILURES_LOGGED_EVERY == 0:
                    row = "" if failing == 1 else f" ({failing} polls failed in a row)"
                    if isinstance(exc, TrothError):
                        log.warning("hosted feed: %s%s", exc, row)
                    else:
                        log.exception("hosted feed%s", row)
            else:
                if failing:
                    log.info("hosted feed: read again after %d polls failed", failing)
                failing = 0

    async def reload(self) -> None:
        """Re-read what the node's store says this node trusts and holds (after another
        process, or code outside the runtime, enrolled, trusted or stored credentials)."""
        await self.worker.run(self._reload_trust, self.clock.now())
        self._sync_links()
        await self._renew_identity()

    def _reload_trust(self, now: int) -> None:
        """Re-read the node's trust, and the policy bundles of the authorities it trusts."""
        self.trust.reload(now)
        self.policies.trust(self.trust.anchors, now=now)
        held = self.node.wallet.held(self.name)
        self.credited = frozenset(Identifier(h.authority) for h in held)

    def _credits(self, authority: Identifier) -> bool:
        """Whether `authority` is one the node's identity holds a credential of (`credited`)."""
        return authority in self.credited

    def _cedar_governs(self, service: str, authority: Identifier) -> bool:
        """Whether Cedar decides `service` for `authority`'s chains here: its own bundle or
        the hosted authority's declares it (`NodePolicies.governs`; review 36c, services 1)."""
        hosted = self.trust.hosted
        return self.policies.governs(
            service, authority, hosted=None if hosted is None else hosted.identifier
        )
