"""Review 26c, gate 3 over a remote broker (`RemoteLeases`, troth.node.services.broker): the
tool gate's thread waits for the node's loop at most `timeout` seconds
(`run_coroutine_threadsafe(...).result(timeout)`). On a timeout the gate records the call's
denial (`denied: the lease provider failed (TimeoutError)`, leftovers 2) and the tool never
runs, but the request went on: the loop's task was not cancelled, so the broker issued the lease
anyway (a live lease of the secret for a call recorded as denied, its audit record linked
under that denial), and a tool's `lease.forward(request)` that timed out still sent its
request upstream with the secret added, after the tool was told it failed (one it retries is
sent twice).

The test runs a loop in a thread with a broker client whose answer waits for an event set
after the timeout; once the loop has run on, the client's request has not gone on. It was a
strict xfail until `RemoteLeases._wait` cancelled the request at its timeout.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.gates import make_world
from troth.node.services.broker import RemoteLeases
from troth.secrets.toolgate import SecretNeed


class Waiting:
    """A broker client whose `issue` waits for `go`, then says it issued."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.issued: list[str] = []

    async def issue(self, secret: str, **kwargs: Any) -> Any:
        await self.go.wait()
        self.issued.append(secret)
        raise RuntimeError("not a real lease")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(10)
    running.close()


def test_a_lease_request_that_timed_out_does_not_go_on(loop: asyncio.AbstractEventLoop) -> None:
    world = make_world()
    credential = world.credential(world.support_chain, world.support)
    client = Waiting()
    leases = RemoteLeases(client, credential.actor, loop, timeout=0.01)  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        leases.issue(credential, SecretNeed("payments"), 0)
    loop.call_soon_threadsafe(client.go.set)
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(10)  # the loop ran on
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(10)
    assert client.issued == []
