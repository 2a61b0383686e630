"""Review 63y2, broker: the broker's own daemon thread of review 63v2, stop 3
(`BrokerService._thread`, a `StoreWorker("troth-broker")`, abandoned by `close`).

Broker 1: `BrokerService.close` queues the broker's own close (`Broker.close`) on its thread
and only then abandons the thread. Behind a stuck vault call (the case stop 3 was about) that
wait never ends, and a node's stop cancels the close past its stage's share: the
cancellation left the close before `abandon`, so the thread was never stopped. It went on
taking calls after the node stopped, and once the stuck call returned (an HSM answering
late) it ran them: a broker call (a lease issued, revoked, audited) against a node whose
stop had closed the broker's service and then its database. The thread is abandoned however
the close ends now: calls after it are refused (RemoteError: broker 2), those queued are
dropped (their callers cancelled, never given a result; the call under way runs to its end
alone).

Broker 2: a peer's request served once the broker's thread is stopped (the node's stop closes
its services, then its channels: a request arriving between is served) reached the thread's
RuntimeError, which the service host takes for a bug: answered "internal error", its
traceback logged as an ERROR at every node stop under load (the ThreadPoolExecutor before it
did the same). It is a RemoteError now: "the broker is stopped", as "the broker is starting"
before its start.

Shown without real time: the stuck vault call waits on an event the test holds.
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest

from troth.errors import RemoteError
from troth.node.services.broker import BrokerService


def _service() -> BrokerService:
    trust: Any = SimpleNamespace(feeds={}, feed_hooks=[], own_authorities=None, hosted=None)
    policies: Any = SimpleNamespace(decision_point=lambda: None, reload=lambda now: None)
    node: Any = SimpleNamespace(db=None, name="n")
    clock: Any = SimpleNamespace(now=lambda: 1_000)
    return BrokerService(node, trust, clock, policies=policies)


def test_a_broker_close_cut_short_still_abandons_its_thread() -> None:
    """Broker 1: the close cancelled behind a stuck call; nothing runs on the thread after."""

    async def main() -> tuple[bool, list[str]]:
        service = _service()
        running, release = threading.Event(), threading.Event()
        ran: list[str] = []

        def stuck() -> None:  # a vault call answering only when the test says so
            running.set()
            release.wait(5)

        call = asyncio.ensure_future(service._run(stuck))
        await asyncio.to_thread(running.wait, 5)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(service.close(), 0.05)  # the node's stop past its share
        call.cancel()
        refused = False
        try:  # a call after the close: a lease issued by a stopped node
            late = asyncio.ensure_future(service._run(lambda: ran.append("after the close")))
            await asyncio.sleep(0)
            release.set()  # the HSM answers late
            await asyncio.wait_for(late, 5)
        except RemoteError:  # the broker is stopped (broker 2)
            refused = True
        finally:
            release.set()
        return refused, ran

    refused, ran = asyncio.run(main())
    assert ran == [], "a broker call ran after the broker's close"
    assert refused


def test_broker_calls_queued_behind_a_stuck_one_are_dropped_by_a_close_cut_short() -> None:
    """Broker 1: the calls queued behind the stuck one when the close is cut short are dropped
    (never run after it), their callers cancelled, never given a result; the one under way
    runs to its end alone."""

    async def main() -> tuple[list[str], list[str]]:
        service = _service()
        running, release = threading.Event(), threading.Event()
        ran: list[str] = []

        def stuck() -> str:  # a vault call answering only when the test says so
            running.set()
            release.wait(5)
            ran.append("stuck")
            return "answered late"

        first = asyncio.ensure_future(service._run(stuck))
        await asyncio.to_thread(running.wait, 5)
        queued = [
            asyncio.ensure_future(service._run(lambda n=n: ran.append(f"queued {n}")))
            for n in range(3)
        ]
        await asyncio.sleep(0)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(service.close(), 0.05)  # past the stage's share
        finally:
            release.set()
        got = await asyncio.gather(first, *queued, return_exceptions=True)
        outcomes = [type(result).__name__ for result in got[1:]]
        assert got[0] == "answered late"  # the call under way ran to its end, alone
        return ran, outcomes

    ran, outcomes = asyncio.run(main())
    assert ran == ["stuck"]
    assert outcomes == ["CancelledError"] * 3


def test_a_broker_request_after_its_close_is_refused_as_stopped() -> None:
    """Broker 2: a peer's request served between the broker's close and the channels' close
    (the node's stop closes the services first) is a RemoteError, not an internal error."""

    async def main() -> BaseException | None:
        service = _service()
        service.endpoint = cast(Any, SimpleNamespace(handle=lambda *args: "listed"))
        service.ready = True
        service._caller = cast(Any, lambda method, context: "an operator")  # type: ignore[method-assign]
        await service.close()
        try:
            await service._handle("list", {}, cast(Any, SimpleNamespace(now=1_000)))
        except Exception as exc:  # what the service host answers the peer
            return exc
        return None

    raised = asyncio.run(main())
    assert isinstance(raised, RemoteError), raised
    assert "stopped" in str(raised)
