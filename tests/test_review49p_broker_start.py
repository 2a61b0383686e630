"""Review 49p: the served broker's start and its feed revocations (troth.node.services.broker).

broker 1: `BrokerService.start` awaited `Broker.recover` and each held feed's `revoke_for_feed`
with no time budget; both call upstream (a PostgreSQL server): an unreachable one held the
node's start past the daemon's START_TIMEOUT, and `troth node start` killed the node. Start
waits at most `START_RECOVERY_SECONDS`; the rest runs on, and until it finished the broker
refuses issue, renew and forward (revoke, list and jwks queue behind it).

broker 2: a failed `revoke_for_feed` was tried again only when the node installed the next
feed; it is tried again at the broker's next sweep.

The broker itself is a stub whose upstream work blocks or fails (the service's own logic is
what is tested)."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from troth.errors import RemoteError, SecretError, SecretFailure
from troth.node.services import broker as served
from troth.node.services.broker import BrokerService

BLOCKED = 10.0  # how long a test waits for what must not block (far beyond what it needs)


class _Broker:
    """A broker whose recovery and feed revocations wait for `release` (an upstream that does
    not answer) or fail the first `failures` times (an upstream that refuses)."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        self.release = threading.Event()
        self.release.set()
        self.recovering = threading.Event()
        self.failures = 0
        self.recovered = 0
        self.feed_calls: list[int] = []
        self.sweeps = 0

    def recover(self, now: int) -> Any:
        self.recovering.set()
        self.release.wait(BLOCKED)
        self.recovered += 1
        return SimpleNamespace(expired=0, revoked=0, orphans=0)

    def revoke_for_feed(self, feed: Any, *, now: int) -> list[Any]:
        self.feed_calls.append(feed.count)
        self.release.wait(BLOCKED)
        if self.failures:
            self.failures -= 1
            raise SecretError(SecretFailure.ENGINE_FAILED, "the upstream is down")
        return []

    def sweep(self, now: int) -> Any:
        self.sweeps += 1
        return None

    def close(self) -> None:
        self.release.set()


class _Endpoint:
    def __init__(self, broker: _Broker) -> None:
        self.broker = broker

    def handle(self, method: str, arguments: Any, caller: Any, now: int) -> Any:
        return {"answered": method}


def _service(monkeypatch: pytest.MonkeyPatch, stub: _Broker, feeds: dict[Any, Any]) -> Any:
    monkeypatch.setattr(served, "Broker", lambda *a, **k: stub)
    monkeypatch.setattr(served, "BrokerEndpoint", _Endpoint)
    monkeypatch.setattr(served, "_vault", lambda node: None)
    monkeypatch.setattr(served, "START_RECOVERY_SECONDS", 0.0, raising=False)
    trust = SimpleNamespace(feeds=feeds, feed_hooks=[], own_authorities=None, hosted=None)
    policies = SimpleNamespace(decision_point=lambda: None, reload=lambda now: None)
    node = SimpleNamespace(db=None, name="n")
    clock = SimpleNamespace(now=lambda: 1_000)
    return BrokerService(node, trust, clock, policies=policies)  # type: ignore[arg-type]


def _feed(count: int) -> Any:
    return SimpleNamespace(authority="acme", count=count, head=bytes([count]) * 32)


async def _until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


@pytest.mark.parametrize("blocked", ["recover", "feed"])
def test_start_does_not_wait_on_upstream_calls(
    monkeypatch: pytest.MonkeyPatch, blocked: str
) -> None:
    """broker 1: recovery or a held feed's revocations blocked upstream: start returns all the
    same; issue, renew and forward are refused until they finished, then served."""
    stub = _Broker()
    stub.release.clear()
    service = _service(monkeypatch, stub, {"acme": _feed(1)})
    if blocked == "feed":
        stub.recovering.set()

    async def test() -> None:
        await asyncio.wait_for(service.start(), BLOCKED / 2)
        try:
            for method in ("issue", "renew", "forward"):
                with pytest.raises(RemoteError, match="recovering"):
                    await service.local(method, {})
            with pytest.raises(RemoteError, match="recovering"):
                await service._handle("issue", {}, SimpleNamespace())
            stub.release.set()
            await _until(lambda: service.ready)
            assert stub.recovered == 1
            assert stub.feed_calls == [1]
            assert await service.local("issue", {}) == {"answered": "issue"}
        finally:
            stub.release.set()
            await service.close()

    asyncio.run(test())


def test_a_failed_feed_revocation_is_retried_at_the_next_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """broker 2: a feed's revocations failed once: the next sweep tries them again (not the
    next feed), and once they succeeded the sweeps leave them be. Those of a feed held at
    start keep issues refused until they succeeded (deny while in doubt)."""
    stub = _Broker()
    stub.failures = 1
    service = _service(monkeypatch, stub, {"acme": _feed(3)})

    async def test() -> None:
        await service.start()
        try:
            await _until(lambda: service._recovery is not None and service._recovery.done())
            assert stub.feed_calls == [3]
            with pytest.raises(RemoteError, match="recovering"):
                await service.local("issue", {})
            await service.sweep()
            assert stub.feed_calls == [3, 3]
            assert service.ready
            assert await service.local("issue", {}) == {"answered": "issue"}
            # once served, a failed feed (the node installed a newer one) waits for no feed
            stub.failures = 1
            await service._revoke_for_feed(_feed(4))
            assert stub.feed_calls == [3, 3, 4]
            await service.sweep()
            assert stub.feed_calls == [3, 3, 4, 4]
            assert stub.sweeps == 1
            await service.sweep()
            assert stub.feed_calls == [3, 3, 4, 4]
            assert stub.sweeps == 2
        finally:
            await service.close()

    asyncio.run(test())


def test_a_failed_recovery_is_retried_at_the_next_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """broker 1: recovery failed (the database, the audit sink): the broker stays refusing
    issues and the next sweep recovers again, not a plain sweep."""
    stub = _Broker()
    calls = {"n": 0}
    real = stub.recover

    def failing(now: int) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise SecretError(SecretFailure.ENGINE_FAILED, "the database is locked")
        return real(now)

    stub.recover = failing  # type: ignore[method-assign]
    service = _service(monkeypatch, stub, {})

    async def test() -> None:
        await service.start()
        try:
            await _until(lambda: service._recovery is not None and service._recovery.done())
            assert calls["n"] == 1
            with pytest.raises(RemoteError, match="recovering"):
                await service.local("issue", {})
            await service.sweep()
            assert service.ready
            assert stub.sweeps == 0
            assert await service.local("issue", {}) == {"answered": "issue"}
        finally:
            await service.close()

    asyncio.run(test())
