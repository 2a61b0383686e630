"""Review 62t: a slow co-trusted authority must not starve the others' syncs.

Feeds 1: `membership.refresh_feeds` synced the trusted authorities' feeds one after the
other. A slow or unreachable one costs up to ~75 s of a round (connect 5 s + handshake 10 s +
`FEED_SYNC_SECONDS` 60 s): with 4 of them a round outlasted `FEED_STALENESS` (300 s), and the
members of every healthy authority were refused ("revocation feed is stale") part of the
time. Shown without real time: each authority's sync is an awaitable the test controls.

Feeds 2: `membership.refresh_credentials` had the same shape (a channel and a call, ~25 s,
per due credential of an unreachable authority, one after the other, all in the round that
keeps the feeds fresh). Feeds 3 (fixed by review 63g: troth.node.announcements, whose order
guarantees tests/test_review63g_announce.py holds): the rotation announcements too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from troth import limits
from troth.credentials.wallet import Announcement
from troth.errors import Unreachable
from troth.identity import Identifier
from troth.node import membership
from troth.node.announcements import Announcer

FEED_OF: Any = None  # what a stubbed sync returns (refresh_feeds keeps no result)


class _Worker:
    async def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)


def _authorities(count: int) -> list[Identifier]:
    return [Identifier(bytes([i + 1]) * 32) for i in range(count)]


def _runtime(authorities: list[Identifier]) -> Any:
    trust = SimpleNamespace(
        routes={a: f"tcp:192.0.2.{i + 1}:4000" for i, a in enumerate(authorities)},
        hosted=None,
        feeds={},
        routes_changed=lambda: False,
        refresh_hosted=lambda now, force=False: None,
    )
    clock = SimpleNamespace(now=lambda: 1_000_000)
    node = SimpleNamespace(
        wallet=SimpleNamespace(held=lambda name: [], known_changes=lambda authority: 1)
    )
    return SimpleNamespace(trust=trust, clock=clock, worker=_Worker(), node=node, name="n")


class _Syncs:
    """Each authority's sync, stubbed: the hanging ones wait for `release`, the others end at
    once; which started, which ended, and the most running at once."""

    def __init__(self, hanging: set[Identifier], fail: dict[Identifier, BaseException]) -> None:
        self.hanging, self.fail = hanging, fail
        self.release = asyncio.Event()
        self.started: list[Identifier] = []
        self.ended: list[Identifier] = []
        self.running = self.most = 0

    async def __call__(self, runtime: Any, authority: Identifier, *rest: Any) -> Any:
        self.started.append(authority)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            if authority in self.hanging:
                await self.release.wait()
            if authority in self.fail:
                raise self.fail[authority]
        finally:
            self.running -= 1
        self.ended.append(authority)
        return FEED_OF


async def _until(done: Callable[[], bool], task: Awaitable[Any]) -> bool:
    """Let the loop run (no real time) until `done()` or `task` ended; whether `done()`."""
    for _ in range(200):
        if done() or (isinstance(task, asyncio.Task) and task.done()):
            break
        await asyncio.sleep(0)
    return done()


def test_a_healthy_authoritys_feed_is_synced_while_four_others_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Feeds 1: five trusted authorities, the first four hanging (their syncs run until their
    timeouts): the fifth, healthy, is synced while they hang, not after them."""
    authorities = _authorities(5)
    *slow, healthy = authorities
    syncs = _Syncs(set(slow), {})
    monkeypatch.setattr(membership, "_sync_feed_at", syncs)

    async def main() -> None:
        task = asyncio.create_task(membership.refresh_feeds(_runtime(authorities)))
        synced = await _until(lambda: healthy in syncs.ended, task)
        hung = [a for a in slow if a not in syncs.ended]
        syncs.release.set()
        await task
        assert synced
        assert hung == slow
        assert sorted(syncs.ended, key=authorities.index) == authorities

    asyncio.run(main())


def test_feed_syncs_run_within_their_bound_and_fail_on_their_own(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Feeds 1, the bound: never more than `MAX_CONCURRENT_FEED_SYNCS` syncs at once, every
    authority synced in the end; one failing (Unreachable: its timeout) is logged as before
    and holds back no other."""
    bound = limits.MAX_CONCURRENT_FEED_SYNCS
    authorities = _authorities(bound + 3)
    failing = authorities[1]
    syncs = _Syncs(set(authorities[: bound + 2]), {failing: Unreachable("no answer")})
    monkeypatch.setattr(membership, "_sync_feed_at", syncs)

    async def main() -> None:
        task = asyncio.create_task(membership.refresh_feeds(_runtime(authorities)))
        await _until(lambda: len(syncs.started) >= bound, task)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(syncs.started) == bound  # the others wait for a place
        syncs.release.set()
        await task

    with caplog.at_level(logging.WARNING, logger="troth.node"):
        asyncio.run(main())
    assert syncs.most == bound
    assert sorted(syncs.started, key=authorities.index) == authorities
    assert set(syncs.ended) == set(authorities) - {failing}
    assert [r.getMessage() for r in caplog.records] == [f"feed of {failing}: no answer"]


def test_an_unexpected_failure_still_ends_the_step_after_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Feeds 1: an error that is no TrothError (a bug) still fails the step, as before (the
    round logs it), once the other authorities' syncs ended: it abandons none of them."""
    authorities = _authorities(3)
    syncs = _Syncs({authorities[2]}, {authorities[0]: RuntimeError("bug")})
    monkeypatch.setattr(membership, "_sync_feed_at", syncs)

    async def main() -> None:
        task = asyncio.create_task(membership.refresh_feeds(_runtime(authorities)))
        await _until(lambda: authorities[1] in syncs.ended, task)
        assert not task.done()  # the hanging one still runs
        syncs.release.set()
        with pytest.raises(RuntimeError, match="bug"):
            await task

    asyncio.run(main())
    assert syncs.ended == authorities[1:]


def test_a_healthy_authoritys_credential_is_refreshed_while_four_others_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Feeds 2: five authorities' credentials due, the first four unreachable (a channel and
    a call each until their timeouts): the fifth's is refreshed while they hang; each failure
    logged and counted as before."""
    authorities = _authorities(5)
    *slow, healthy = authorities
    syncs = _Syncs(set(slow), {slow[0]: Unreachable("no answer")})
    monkeypatch.setattr(membership, "_refresh_from", syncs)
    monkeypatch.setattr(membership, "needs_refresh", lambda *a, **k: True)

    async def main() -> int:
        runtime = _runtime(authorities)
        presented: list[str] = []

        async def renewed() -> Any:
            presented.append("renewed")
            return SimpleNamespace(history=b"", credentials=())

        runtime._renew_identity = renewed
        runtime.channels = SimpleNamespace(ends={})
        task = asyncio.create_task(membership.refresh_credentials(runtime))
        refreshed = await _until(lambda: healthy in syncs.ended, task)
        syncs.release.set()
        count = await task
        assert refreshed
        assert presented == ["renewed"]
        return count

    assert asyncio.run(main()) == 4


def test_a_healthy_authority_is_told_of_a_rotation_while_others_hang() -> None:
    """Feeds 3: the maintenance round's announcements of rotated histories (after the feeds
    and credentials, in the same round) go one after the other too: each identity's pending
    announcement to an unreachable authority costs a channel and a call (~25 s) a round,
    before any other's, for as long as it stays unreachable."""
    authorities = _authorities(5)
    *slow, healthy = authorities
    syncs = _Syncs(set(slow), {})

    async def main() -> None:
        marked: list[Identifier] = []

        def mark(name: str, authority: Identifier, changes: int, seq: int | None) -> Any:
            marked.append(authority)
            return Announcement(name, authority, changes, seq)

        announcer = Announcer(
            cast(Any, SimpleNamespace(wallet=SimpleNamespace(mark_announced=mark))),
            cast(Any, SimpleNamespace(hosted=None, routes={})),
            own="n",
            worker=cast(Any, _Worker()),
            clock=cast(Any, SimpleNamespace(now=lambda: 1_000_000)),
            router=cast(Any, None),
            channel_to=cast(Any, None),
            rotated=cast(Any, None),
        )
        pending = [("agent", 2, authorities)]
        announcer._unannounced = lambda ref: pending  # type: ignore[method-assign]
        announcer._announce = lambda ref, authority: syncs(None, authority)  # type: ignore[method-assign]
        task = asyncio.create_task(announcer.announce())
        told = await _until(lambda: healthy in marked, task)
        syncs.release.set()
        await task
        assert told

    asyncio.run(main())
