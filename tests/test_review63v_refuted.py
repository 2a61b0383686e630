"""Review 63v, stop: attacks on a node's bounded stop that did not work (each would fail if
the defence it names broke)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from troth.node import runtime as runtime_module
from troth.node import to_the_end
from troth.node.node import init_node, open_node
from troth.node.runtime import NodeRuntime
from troth.node.worker import StoreWorker

GUARD = 1.5


def test_a_peer_connected_that_never_reads_nor_closes_holds_no_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A raw TCP peer connected to the listener, silent, never closing: the TCP stage ends
    at once (the listener and its connections closed without waiting for the peer; Python
    3.12's `Server.wait_closed` waits for the connections, which are closed first), no
    stage is abandoned."""
    monkeypatch.setattr(to_the_end, "NODE_STOP_SECONDS", 1.0)
    monkeypatch.setattr(runtime_module, "UPKEEP_STOP_SECONDS", 0.1)
    init_node("n", home=tmp_path)

    async def main() -> None:
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            await runtime.start(("127.0.0.1", 0))
            assert runtime.listening is not None
            _, writer = await asyncio.open_connection(*runtime.listening)
            try:
                for _ in range(20):  # accepted by the node
                    await asyncio.sleep(0.01)
                await asyncio.wait_for(runtime.stop(), GUARD)
            finally:
                writer.close()

    with caplog.at_level(logging.ERROR, logger="troth.node"):
        asyncio.run(main())
    assert not [r for r in caplog.records if "abandoned" in r.message]


def test_a_drained_storage_thread_ran_every_call_queued_before_the_stop() -> None:
    """The bounded stop drops nothing it need not: a drain within its share runs every call
    queued before it (`abandon` after it drops none), and a call after it is refused."""
    ran: list[int] = []

    async def main() -> None:
        worker = StoreWorker()
        futures = [worker.submit(ran.append, n) for n in range(50)]
        await asyncio.wait_for(worker.drain(), GUARD)
        worker.abandon()
        assert all(f.done() and not f.cancelled() for f in futures)
        with pytest.raises(RuntimeError):
            worker.submit(ran.append, 99)

    asyncio.run(main())
    assert ran == list(range(50))


def test_a_cancelled_call_on_the_storage_thread_is_still_dropped_unrun() -> None:
    """Review 22 (finding 2) kept: a call cancelled before the thread took it up never runs,
    with the daemon thread as with the executor."""
    import threading

    hold = threading.Event()
    ran: list[str] = []

    async def main() -> None:
        worker = StoreWorker()
        first = worker.submit(hold.wait, 5)
        second = worker.submit(ran.append, "dropped")
        assert second.cancel()
        hold.set()
        assert await asyncio.wrap_future(first) is True
        await asyncio.wait_for(worker.drain(), GUARD)

    asyncio.run(main())
    assert ran == []
