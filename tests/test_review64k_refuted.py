"""Review 64k: attacks on this session's first fixes (64c, 64d, 64e, 64f) that did not work;
each test fails if the defence it names breaks."""

from __future__ import annotations

import asyncio
import socket

import pytest

from troth.errors import Unreachable
from troth.routing import Address, Router
from troth.transport import Listener, TcpSettings, TcpTransport

ECHO = Address("service", "echo")


def _closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connects to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_shared_connect_fails_every_waiter_typed_and_is_not_cached() -> None:
    """64e transport 2: three callers sharing a connect that is refused each get Unreachable
    (none a bare OSError, none left waiting), the connect leaves no entry behind, and the next
    connect to the address tries again (it succeeds once something listens there)."""

    async def main() -> None:
        port = _closed_port()
        client = TcpTransport(Router(), TcpSettings())
        server = TcpTransport(Router(), TcpSettings())
        try:
            waiters = [asyncio.ensure_future(client.connect("127.0.0.1", port)) for _ in range(3)]
            results = await asyncio.gather(*waiters, return_exceptions=True)
            assert all(isinstance(result, Unreachable) for result in results), results
            assert client._connecting == {}
            await server.listen("127.0.0.1", port, Listener(frozenset({ECHO})))
            connection = await client.connect("127.0.0.1", port)
            assert client.connections() == [connection]
        finally:
            await client.close()
            await server.close()

    asyncio.run(main())


def test_a_shared_connect_whose_only_caller_was_cancelled_is_kept_and_reused() -> None:
    """64e transport 2: the one caller cancelled while its connect is made does not cancel
    it; the connection is in the table once, and the next caller gets that one (the server
    accepted one connection)."""

    async def main() -> None:
        server = TcpTransport(Router(), TcpSettings())
        host, port = await server.listen("127.0.0.1", 0, Listener(frozenset({ECHO})))
        client = TcpTransport(Router(), TcpSettings())
        try:
            waiter = asyncio.ensure_future(client.connect(host, port))
            await asyncio.sleep(0)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            async with asyncio.timeout(3):
                while client._connecting:
                    await asyncio.sleep(0.01)
            made = client.connections()
            assert len(made) == 1
            assert await client.connect(host, port) is made[0]
            async with asyncio.timeout(3):
                while len(server.connections()) != 1:
                    await asyncio.sleep(0.01)
        finally:
            await client.close()
            await server.close()

    asyncio.run(main())


def test_connects_to_many_refused_addresses_at_once_leave_nothing_behind() -> None:
    """64e transport 2 with 300 addresses at once: every caller is told (Unreachable), and
    the table of connects under way is empty after (no task or entry per address kept)."""

    async def main() -> None:
        port = _closed_port()
        client = TcpTransport(Router(), TcpSettings())
        try:
            hosts = [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(300)]
            results = await asyncio.gather(
                *(client.connect(host, port) for host in hosts), return_exceptions=True
            )
            assert all(isinstance(result, Unreachable) for result in results)
            assert client._connecting == {}
            assert client.connections() == []
        finally:
            await client.close()

    asyncio.run(main())
