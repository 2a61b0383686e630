"""Review 62s, upkeep: a node's start and stop (troth.node.daemon, troth.node.runtime).

In-process: the daemon's body (`daemon.serve`) run on a node in a temporary home, its start
made to fail for real (its TCP port taken)."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.support.waits import until
from troth.errors import StorageError, TrothError
from troth.node import daemon, upkeep
from troth.node.node import init_node
from troth.node.services.policy import PolicyService
from troth.node.worker import StoreWorker


def test_a_start_that_fails_after_its_services_started_stops_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 62s, upkeep 1: `daemon.serve` called `runtime.stop()` only once the runtime had
    started: a start failing after its services started (its listen address in use) closed
    none of them (the broker's thread and sweeps, the trace client's undelivered records) and
    left the storage thread running while `open_node` closed node.db under it."""
    init_node("n", home=tmp_path)
    closed: list[str] = []
    close, drain = PolicyService.close, StoreWorker.drain

    async def recorded_close(self: PolicyService) -> None:
        closed.append("policy")
        await close(self)

    async def recorded_drain(self: StoreWorker) -> None:
        closed.append("storage thread")
        await drain(self)

    monkeypatch.setattr(PolicyService, "close", recorded_close)
    monkeypatch.setattr(StoreWorker, "drain", recorded_drain)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises((OSError, TrothError)):
            asyncio.run(daemon.serve(tmp_path, "n", ("127.0.0.1", port)))
    assert closed == ["policy", "storage thread"]


def test_a_round_under_way_at_stop_maintains_no_closed_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 62s, upkeep 2: `NodeRuntime.stop` closed the services and the trace client (a
    flush of up to 5 s) before it cancelled the upkeep tasks: a maintenance round under way
    went on meanwhile to `maintain` the services already closed (the policy service pulled and
    pushed again, its pushes cancelled by its close started anew on channels being closed; a
    closed broker's thread called, a traceback logged)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        policy = hub.host.services["policy"]
        seen: list[str] = []
        feeds, close = asyncio.Event(), hub.traces.close

        async def refresh_feeds() -> None:  # the round's first step, under way at the stop
            seen.append("round")
            await feeds.wait()

        async def flush() -> None:  # the trace client delivering what it holds (up to 5 s)
            feeds.set()
            await until(lambda: "maintain" in seen or under_way.done())
            await close()

        async def closing() -> None:
            seen.append("close")

        async def maintain(now: int) -> None:
            seen.append("maintain")

        monkeypatch.setattr(hub, "refresh_feeds", refresh_feeds)
        monkeypatch.setattr(hub.traces, "close", flush)
        monkeypatch.setattr(policy, "close", closing)
        monkeypatch.setattr(policy, "maintain", maintain)
        under_way = hub._spawn(hub.maintain())
        await until(lambda: seen == ["round"])
        await hub.stop()
        assert "maintain" not in seen, seen

    run_memnet(test, tmp_path)


def test_a_hosted_watch_failing_at_every_poll_does_not_flood_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Review 62s, upkeep 3: the hosted watch (62m kept it polling past any error) logged every
    failed re-read, a traceback with it, at every poll (HOSTED_FEED_POLL, 1 s): an error that
    lasts (a feed row that does not decode, node.db locked by a long backup) wrote 3,600
    tracebacks an hour. The marks' poll (DueWatch) backs off; this one may not (a revocation
    here is due within a poll), so it says a lasting failure once and then now and again."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        calls: list[int] = []

        def refresh_hosted(now: int, *, force: bool = False) -> bool:
            calls.append(now)
            if len(calls) <= 40:
                raise (ValueError if len(calls) % 2 else StorageError)("a row that did not decode")
            return False

        monkeypatch.setattr(hub.trust, "refresh_hosted", refresh_hosted)
        monkeypatch.setattr(upkeep, "HOSTED_FEED_POLL", 0)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="troth.node"):
            watch = hub._spawn(hub._watch_hosted())
            await until(lambda: len(calls) > 41 or watch.done())
        said = [r for r in caplog.records if r.getMessage().startswith("hosted feed")]
        assert not watch.done()
        assert said  # the first failure said
        assert said[0].levelno >= logging.WARNING
        assert len(said) <= 3, [r.getMessage() for r in said]  # not all 40

    run_memnet(test, tmp_path)
