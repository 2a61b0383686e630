"""Review 64k, transport: findings in review 64e's TCP fixes (each test failed before its fix).

Transport 1 (low: a node's stop held, a connect's task left behind). Review 64e made `close()`
mark the transport closing so that a connect under way "fails", but it failed only once the
operating system's connect ended: a connect to an address that does not answer (a peer gone,
its packets dropped) went on until `connect_timeout` after `close()` returned, its task left in
the table of connects under way, every caller waiting for it held that long, and the socket it
was opening open. Now `close()` ends each connect under way (cancelled, the socket closed) and
awaits it: every caller waiting for one gets `Unreachable` ("the transport is closed") at once,
and none of them is cancelled by it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from troth.errors import Unreachable
from troth.routing import Router
from troth.transport import TcpSettings, TcpTransport


def test_close_ends_a_connect_that_does_not_answer_and_its_waiters_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Transport 1: two callers wait for a connect the peer never answers; `close()` fails
    both with Unreachable well within the connect timeout, leaves no connect under way, and
    the socket's connect is ended (cancelled), not left to run."""
    ended: list[bool] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        async def never(*args: Any, **kwargs: Any) -> Any:
            started.set()
            try:
                await asyncio.Event().wait()  # a peer whose packets are dropped
            except asyncio.CancelledError:
                ended.append(True)
                raise

        monkeypatch.setattr(loop, "create_connection", never)
        client = TcpTransport(Router(), TcpSettings(connect_timeout=30.0))
        first = asyncio.ensure_future(client.connect("192.0.2.1", 7))
        second = asyncio.ensure_future(client.connect("192.0.2.1", 7))
        await started.wait()
        async with asyncio.timeout(2):  # (30 s before the fix)
            await client.close()
            for waiter in (first, second):
                with pytest.raises(Unreachable, match="closed"):
                    await waiter
        assert client._connecting == {}
        assert ended == [True]

    asyncio.run(main())
