"""Review 63o, lifecycle: review 63g's fixes of a node's start and stop (troth.node.runtime,
troth.node.announcements, troth._api.network), attacked.

Lifecycle 1: `NodeRuntime.start` closes a service whose start failed or was cancelled midway
(review 63g, upkeep 1), awaiting its `close` in the cancelled task itself. Cancelled again
while that close runs (a `connect` block cancelled twice, a TaskGroup and a timeout, SIGTERM
then SIGINT), the close ended midway: the broker's thread, recovery and upstream ran on after
the node stopped and node.db closed, which is what upkeep 1 fixed (review 63g, api 2 fixed the
same for the stop `start_running` runs). The close runs to its end now, the CancelledError
after it (`troth.node.to_the_end.to_its_end`).

Lifecycle 2: the rotation announcements run at once (review 63g, announce) with `rotated` after all
of the node's own identity's, and before any of an identity listed after it. But `announce` runs
from three places that run beside each other: the maintenance round, the catch-up after a link
reconnected (`_catch_up`), and `troth identity rotate` with the node running: two of them at once
sent every pending announcement twice at the same time, and ran `rotated` (the node's identity
renewed, every channel carrying its old history closed) while the other's own announcement was still
under way over such a channel (it failed, pending a round), and twice. `Announcer.announce` runs one
at a time now.

Lifecycle 3: `to_its_end` raised a stop's error when its caller was cancelled before the stop
failed, but a bare CancelledError when the caller was cancelled in the step the stop failed:
the error was left in the stop's task, unretrieved (a "never retrieved" line at best). The
stop's error goes on in both cases now.

Lifecycle 4: review 63g (upkeep 2) made the maintenance rounds run one at a time, but the
catch-up after a link reconnected (`NodeRuntime._catch_up`: the credentials refreshed, the
rotations announced) still ran beside a round: each credential due was asked of its authority
twice at the same time. It takes its turn with the rounds now.

Lifecycle 5: review 63g (upkeep 3) made each service's close its own in `NodeRuntime.stop`,
but the stages after them were not: the trace client's close failing ended the stop there,
the links, channels, TCP listener and storage thread left running, and the serve block let
the handle go (a second serve beside them). Each stage runs now, the first error raised once
all ran.

Shown without real time: the services and the announcements are awaitables the test controls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

import troth
from tests.support.public_api import acme_and_agents
from troth.credentials.wallet import Announcement
from troth.errors import StorageError
from troth.identity import Identifier
from troth.node import daemon, runtime
from troth.node.announcements import Announcer
from troth.node.composition import compose as composed
from troth.node.node import init_node
from troth.node.runtime import NodeRuntime
from troth.node.services.trace import NodeTraces
from troth.node.to_the_end import to_its_end


class _SlowClose:
    """A service with a lifecycle whose start waits for ever and whose close (the broker's:
    its upstream, then its thread) waits for `release` midway; what happened to it."""

    name = "stub"

    def __init__(self) -> None:
        self.events: list[str] = []
        self.started = asyncio.Event()
        self.closing = asyncio.Event()
        self.release = asyncio.Event()

    async def start(self) -> None:
        self.started.set()
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.events.append("closing")
        self.closing.set()
        await self.release.wait()
        self.events.append("closed")  # (the broker: its thread shut down here)


def test_a_failed_starts_close_cancelled_again_runs_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lifecycle 1: the node's start cancelled while a service starts, then again while that
    service closes: the close ends all the same, the CancelledError after it."""
    init_node("n", home=tmp_path)
    stub = _SlowClose()

    def compose(*args: Any, **kwargs: Any) -> list[Any]:
        return [*composed(*args, **kwargs), stub]

    monkeypatch.setattr(runtime, "compose", compose)

    async def main() -> None:
        serving = asyncio.create_task(daemon.serve(tmp_path, "n", None))
        await asyncio.wait_for(stub.started.wait(), 5)
        serving.cancel()
        await asyncio.wait_for(stub.closing.wait(), 5)
        serving.cancel()  # again, while the close runs
        for _ in range(5):
            await asyncio.sleep(0)
        stub.release.set()
        with pytest.raises(asyncio.CancelledError):
            await serving

    asyncio.run(main())
    assert stub.events == ["closing", "closed"]


class _Worker:
    async def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)


OWN_AUTHORITY = Identifier(b"\x01" * 32)


def _announcer(events: list[tuple[str, ...]], release: asyncio.Event) -> Announcer:
    """The node's own identity pending at one authority (while it is not marked announced),
    its announcement waiting for `release`."""
    marked: set[str] = set()

    def mark(name: str, authority: Identifier, changes: int, seq: int | None) -> Any:
        marked.add(name)
        return Announcement(name, authority, changes, seq)

    async def rotated(told: bool) -> None:
        events.append(("rotated",))

    announcer = Announcer(
        cast(Any, SimpleNamespace(wallet=SimpleNamespace(mark_announced=mark))),
        cast(Any, SimpleNamespace(hosted=None, routes={})),
        own="node",
        worker=cast(Any, _Worker()),
        clock=cast(Any, SimpleNamespace(now=lambda: 1_000_000)),
        router=cast(Any, None),
        channel_to=cast(Any, None),
        rotated=rotated,
    )

    def unannounced(ref: str | None) -> list[tuple[str, int, list[Identifier]]]:
        return [("node", 1, [] if "node" in marked else [OWN_AUTHORITY])]

    async def announce(ref: str, authority: Identifier) -> int | None:
        events.append(("start", ref))
        await release.wait()
        events.append(("end", ref))
        return 7

    announcer._unannounced = unannounced  # type: ignore[method-assign]
    announcer._announce = announce  # type: ignore[method-assign]
    return announcer


def test_two_announcements_at_once_send_each_once_and_rotate_once() -> None:
    """Lifecycle 2: the maintenance round's announcements and the catch-up's after a reconnect (or
    `troth identity rotate` with the node running) at once: the own identity's announced once, and
    `rotated` runs once, after it ended (never while an announcement of it runs)."""
    events: list[tuple[str, ...]] = []

    async def main() -> list[list[dict[str, Any]]]:
        release = asyncio.Event()
        announcer = _announcer(events, release)
        rounds = asyncio.gather(announcer.announce(), announcer.announce())
        for _ in range(10):
            await asyncio.sleep(0)
        release.set()
        return list(await rounds)

    first, second = asyncio.run(main())
    assert events == [("start", "node"), ("end", "node"), ("rotated",)]
    assert [len(first), len(second)] == [1, 0]


def test_a_stop_failing_as_its_caller_is_cancelled_raises_its_error() -> None:
    """Lifecycle 3: the stop fails in the very step its caller is cancelled (a timeout firing
    as the last close fails): its error goes on, as when the caller was cancelled earlier
    (`to_its_end`), not a CancelledError with the error left unretrieved in its task."""

    async def main() -> None:
        release = asyncio.Event()
        callers: list[asyncio.Task[None]] = []

        async def stop() -> None:
            await release.wait()
            callers[0].cancel()  # the caller cancelled as the stop fails
            raise StorageError("node.db is gone")

        callers.append(asyncio.get_running_loop().create_task(to_its_end(stop())))
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(StorageError, match="gone"):
            await callers[0]

    asyncio.run(main())


def test_a_catch_up_after_a_reconnect_never_runs_beside_a_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lifecycle 4: the catch-up after a link reconnected (credentials refreshed, rotations
    announced) and a maintenance round at once: the credentials were refreshed twice at the
    same time, each due one asked of its authority twice. One after the other now."""
    running = most = 0
    calls = 0
    held, release = asyncio.Event(), asyncio.Event()

    async def counted(self: NodeRuntime, *, margin: int = 0) -> int:
        nonlocal running, most, calls
        running += 1
        calls += 1
        most = max(most, running)
        try:
            if calls == 1:
                held.set()
                await release.wait()
        finally:
            running -= 1
        return 0

    async def scene(hub: troth.Node) -> None:
        async with hub.serve() as served:
            node = served._runtime
            monkeypatch.setattr(NodeRuntime, "refresh_credentials", counted)
            round_ = asyncio.get_running_loop().create_task(node.maintain())
            await asyncio.wait_for(held.wait(), 5)
            catch_up = asyncio.get_running_loop().create_task(node._catch_up())
            for _ in range(10):
                await asyncio.sleep(0)
            release.set()
            await asyncio.wait_for(asyncio.gather(round_, catch_up), 10)

    with acme_and_agents() as world:
        asyncio.run(scene(world.hub))
    assert calls == 2
    assert most == 1


def test_a_stop_whose_trace_client_fails_to_close_stops_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lifecycle 5: the trace client's close failing (its outbox on a disk gone bad) ended
    `NodeRuntime.stop` there: the links, channels, TCP listener and storage thread ran on, and
    the serve block let the handle go (review 63g, api 1: only once its stop ended). The stop
    goes on to its end; its first error is raised after."""

    async def failing(self: Any) -> None:
        raise OSError("the outbox's disk went away")

    monkeypatch.setattr(NodeTraces, "close", failing)

    async def scene(hub: troth.Node) -> NodeRuntime:
        with pytest.raises(OSError, match="went away"):
            async with hub.serve(listen=("127.0.0.1", 0)) as served:
                node = served._runtime
                assert node.listening is not None
        return node

    with acme_and_agents() as world:
        node = asyncio.run(scene(world.hub))
    assert cast(Any, node.tcp)._listeners == []
    assert not node.channels.ends
    assert node.worker.stopped
