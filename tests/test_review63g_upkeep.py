"""Review 63g, upkeep: a node's start and stop (troth.node.runtime), after review 62s.

Upkeep 1: `NodeRuntime.start` added each service with a lifecycle (the broker) to the node's
host only once its `start` returned. A start that failed, or was cancelled, midway (the
broker's: its database opened, its recovery under way on its thread for up to
`START_RECOVERY_SECONDS`; a `connect` block cancelled while its shared runtime started, a
SIGTERM) left that service out of what `stop` closes: its thread, its recovery task and its
upstream connections ran on after the node stopped and node.db closed (review 62s, upkeep 1
stopped the services that had started, not the one starting). Such a service is closed now
before the start's error goes on.

In-process: the daemon's body (`daemon.serve`) run on a node in a temporary home, with one
service of its composition replaced by a stub whose start fails or hangs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from troth.errors import StorageError
from troth.node import daemon, runtime
from troth.node.composition import compose as composed
from troth.node.node import init_node


class _Lifecycle:
    """A service with a lifecycle whose start opens something, then fails (`fail`) or waits
    for ever; what happened to it."""

    name = "stub"

    def __init__(self, fail: BaseException | None) -> None:
        self.fail = fail
        self.events: list[str] = []
        self.started = asyncio.Event()

    async def start(self) -> None:
        self.events.append("opened")
        self.started.set()
        if self.fail is not None:
            raise self.fail
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.events.append("closed")


def _with(monkeypatch: pytest.MonkeyPatch, stub: _Lifecycle) -> None:
    def compose(*args: Any, **kwargs: Any) -> list[Any]:
        return [*composed(*args, **kwargs), stub]

    monkeypatch.setattr(runtime, "compose", compose)


def test_a_service_whose_start_fails_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upkeep 1: its start fails after it opened what it holds: closed with the others."""
    init_node("n", home=tmp_path)
    stub = _Lifecycle(StorageError("its database is locked"))
    _with(monkeypatch, stub)
    with pytest.raises(StorageError, match="locked"):
        asyncio.run(daemon.serve(tmp_path, "n", None))
    assert stub.events == ["opened", "closed"]


def test_a_service_whose_start_is_cancelled_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upkeep 1: the node's start cancelled while that service starts (its recovery under
    way): closed, not left running once the node stopped."""
    init_node("n", home=tmp_path)
    stub = _Lifecycle(None)
    _with(monkeypatch, stub)

    async def main() -> None:
        serving = asyncio.create_task(daemon.serve(tmp_path, "n", None))
        await asyncio.wait_for(stub.started.wait(), 5)
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving

    asyncio.run(main())
    assert stub.events == ["opened", "closed"]
