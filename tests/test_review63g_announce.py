"""Review 63g, announce: the rotation announcements made concurrent (review 62t, feeds 3) keep
the order that matters (troth.node.announcements `Announcer.announce`).

Announce 1 (guard, not a finding): one after the other, `rotated` (the node renews the identity
it shows and closes every channel carrying its old history) ran once all of its own identity's
announcements ended, and before any announcement of an identity listed after it started; the
identities listed before it were announced before its own. The concurrent announcer keeps
each of these: an announcement of another identity over a channel `rotated` closes midway
fails (pending a round), one ahead of the own identity's might meet a channel its authority's
node refuses once it learned of the rotation; `rotated` later than its own announcements left
the node showing a superseded history meanwhile. Also kept: one row per announcement in the
order of the identities and authorities, `rotated` run when all of the own identity's failed
(as before) and not when it had none pending, at most `MAX_CONCURRENT_FEED_SYNCS` at once, and
an unexpected error (a bug) failing the step once the others ended, with `rotated` not run.

Shown without real time: each announcement is an awaitable the test controls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from troth import limits
from troth.credentials.wallet import Announcement
from troth.errors import Unreachable
from troth.identity import Identifier
from troth.node.announcements import Announcer

Event = tuple[str, ...]


class _Worker:
    async def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)


def _authority(i: int) -> Identifier:
    return Identifier(bytes([i + 1]) * 32)


class _World:
    """The announcer with its announcements stubbed: those in `hanging` wait for `release`,
    those in `fail` raise; what happened, in order (`start`/`end` of each, `rotated`)."""

    def __init__(
        self,
        pending: list[tuple[str, int, list[Identifier]]],
        *,
        hanging: set[tuple[str, Identifier]] = frozenset(),  # type: ignore[assignment]
        fail: dict[tuple[str, Identifier], BaseException] | None = None,
    ) -> None:
        self.hanging, self.fail = hanging, fail or {}
        self.release = asyncio.Event()
        self.events: list[Event] = []
        self.told: list[bool] = []
        self.running = self.most = 0

        def mark(name: str, authority: Identifier, changes: int, seq: int | None) -> Any:
            self.events.append(("marked", name, str(authority)))
            return Announcement(name, authority, changes, seq)

        async def rotated(told: bool) -> None:  # told: one succeeded (review 65j, rotated 1)
            self.events.append(("rotated",))
            self.told.append(told)

        self.announcer = Announcer(
            cast(Any, SimpleNamespace(wallet=SimpleNamespace(mark_announced=mark))),
            cast(Any, SimpleNamespace(hosted=None, routes={})),
            own="node",
            worker=cast(Any, _Worker()),
            clock=cast(Any, SimpleNamespace(now=lambda: 1_000_000)),
            router=cast(Any, None),
            channel_to=cast(Any, None),
            rotated=rotated,
        )
        self.announcer._unannounced = lambda ref: pending  # type: ignore[method-assign]
        self.announcer._announce = self._announce  # type: ignore[method-assign]

    async def _announce(self, ref: str, authority: Identifier) -> int | None:
        name = ref
        self.events.append(("start", name, str(authority)))
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            if (name, authority) in self.hanging:
                await self.release.wait()
            if (name, authority) in self.fail:
                raise self.fail[name, authority]
        finally:
            self.running -= 1
            self.events.append(("end", name, str(authority)))
        return 7

    def at(self, event: Event) -> int:
        return self.events.index(event)


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def test_rotated_runs_after_all_own_announcements_and_before_the_next_identitys() -> None:
    """Announce 1: `rotated` waits for the own identity's hanging announcement (while the
    healthy ones end meanwhile), and the identity after it starts only once `rotated` ran."""
    a, b, c = (_authority(i) for i in range(3))
    pending = [("alice", 1, [a, b]), ("node", 2, [a, b, c]), ("zoe", 1, [a, c])]
    world = _World(pending, hanging={("node", a), ("alice", b)})

    async def main() -> list[dict[str, Any]]:
        task = asyncio.create_task(world.announcer.announce())
        await _settle()
        # alice's hanging announcement holds back the own identity's (the order kept)
        assert sorted(world.events) == sorted(
            [
                ("start", "alice", str(a)),
                ("end", "alice", str(a)),
                ("marked", "alice", str(a)),
                ("start", "alice", str(b)),
            ]
        )
        world.release.set()  # alice's ends, then node's run: a hangs no more (released)
        return await task

    rows = asyncio.run(main())
    ev = world.events
    rotated = world.at(("rotated",))
    assert ev.count(("rotated",)) == 1
    for authority in (a, b, c):
        assert world.at(("marked", "node", str(authority))) < rotated
        assert world.at(("start", "node", str(authority))) > world.at(("marked", "alice", str(b)))
    for authority in (a, c):
        assert world.at(("start", "zoe", str(authority))) > rotated
    assert [(r["identity"], r["authority"]) for r in rows] == [
        (name, str(authority)) for name, _, authorities in pending for authority in authorities
    ]


def test_rotated_waits_for_a_hanging_own_announcement_while_the_others_end() -> None:
    """Announce 1: the own identity's healthy authorities are told while one hangs; `rotated`
    has not run while it hangs, and runs right after it ended."""
    a, b, c = (_authority(i) for i in range(3))
    world = _World([("node", 2, [a, b, c])], hanging={("node", a)})

    async def main() -> None:
        task = asyncio.create_task(world.announcer.announce())
        await _settle()
        assert ("marked", "node", str(b)) in world.events
        assert ("marked", "node", str(c)) in world.events
        assert ("rotated",) not in world.events
        world.release.set()
        await task

    asyncio.run(main())
    assert world.events[-2:] == [("marked", "node", str(a)), ("rotated",)]


def test_rotated_runs_when_every_own_announcement_failed_and_not_without_any() -> None:
    """Announce 1, as before: the own identity's announcements all failing (pending, with
    their error in the rows) still renew what the node shows; nothing of its own pending, no
    `rotated`."""
    a, b = _authority(0), _authority(1)
    fail: dict[tuple[str, Identifier], BaseException] = {
        ("node", a): Unreachable("no answer"),
        ("node", b): Unreachable("no route"),
    }
    world = _World([("node", 2, [a, b])], fail=fail)
    rows = asyncio.run(world.announcer.announce())
    assert [r.get("error") for r in rows] == ["no answer", "no route"]
    assert world.events[-1] == ("rotated",)

    quiet = _World([("node", 2, []), ("alice", 1, [a])])
    asyncio.run(quiet.announcer.announce())
    assert ("rotated",) not in quiet.events
    assert ("marked", "alice", str(a)) in quiet.events


def test_announcements_run_within_their_bound() -> None:
    """Announce 1: never more than `MAX_CONCURRENT_FEED_SYNCS` at once; all told in the end."""
    bound = limits.MAX_CONCURRENT_FEED_SYNCS
    authorities = [_authority(i) for i in range(bound + 3)]
    world = _World([("alice", 1, authorities)], hanging={("alice", x) for x in authorities})

    async def main() -> None:
        task = asyncio.create_task(world.announcer.announce())
        await _settle()
        assert world.running == bound  # the others wait for a place
        world.release.set()
        await task

    asyncio.run(main())
    assert world.most == bound
    assert sum(e[0] == "marked" for e in world.events) == len(authorities)


def test_a_bug_fails_the_step_once_the_others_ended_and_skips_rotated() -> None:
    """Announce 1, as before: an error that is no TrothError (a bug) fails the step (the round
    logs it) without `rotated`; the own identity's other announcements end (and are marked)
    first, abandoning none midway."""
    a, b = _authority(0), _authority(1)
    world = _World(
        [("node", 2, [a, b]), ("zoe", 1, [a])],
        hanging={("node", b)},
        fail={("node", a): RuntimeError("bug")},
    )

    async def main() -> None:
        task = asyncio.create_task(world.announcer.announce())
        await _settle()
        assert not task.done()  # the hanging one still runs
        world.release.set()
        with pytest.raises(RuntimeError, match="bug"):
            await task

    asyncio.run(main())
    assert ("marked", "node", str(b)) in world.events
    assert ("rotated",) not in world.events
    assert ("start", "zoe", str(a)) not in world.events
