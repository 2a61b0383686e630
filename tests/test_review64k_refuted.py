"""Review 64k: attacks on this session's first fixes (64c, 64d, 64e, 64f) that did not work;
each test fails if the defence it names breaks."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import token_vault, vault_fixture
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_review64k_pkcs11 import _pair
from troth.clock import SystemClock
from troth.crypto import KeyType, verify_signature
from troth.errors import KeyNotFound, TrothError, Unreachable
from troth.node.node import init_node, open_node
from troth.node.runtime import NodeRuntime
from troth.node.services.relay import RelayService
from troth.routing import Address, Router
from troth.trace import Kind, RecordContent, ToolCall
from troth.trace.log import open_node_log
from troth.trace.pending import Receipt
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.vault import KeyHandle, KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]

ECHO = Address("service", "echo")
TOOL = ToolCall("refund")


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


def test_records_appended_while_the_node_stops_acknowledged_are_all_in_the_log(
    tmp_path: Path,
) -> None:
    """64c stop 1, 2 (the log closed on a thread of its own, the traces closed for good): two
    threads record through the node's own recorder while the node stops. Every record
    acknowledged (a receipt) is in trace.db afterwards at the index its receipt names; every
    one refused after the close is a typed TrothError (none hangs, none is an internal error);
    and a new runtime on the same node records again (the refusal is the old runtime's only)."""
    init_node("n", home=tmp_path)
    receipts: list[Receipt] = []
    errors: list[BaseException] = []

    def appender(recorder: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                receipts.append(recorder.record(RecordContent(Kind.TOOL_INVOCATION, tool=TOOL)))
            except BaseException as exc:  # what the caller sees once the log is closed
                errors.append(exc)
                return

    async def main() -> None:
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            await runtime.start(None)
            recorder = runtime.traces.local("n")
            stop = threading.Event()
            threads = [threading.Thread(target=appender, args=(recorder, stop)) for _ in range(2)]
            for thread in threads:
                thread.start()
            while len(receipts) < 5:
                await asyncio.sleep(0.005)
            await runtime.stop()
            stop.set()
            for thread in threads:
                thread.join(5)
            assert not any(thread.is_alive() for thread in threads)
            assert all(isinstance(exc, TrothError) for exc in errors), errors
            again = NodeRuntime(node)
            await again.start(None)
            try:
                later = again.traces.local("n").record(
                    RecordContent(Kind.TOOL_INVOCATION, tool=TOOL)
                )
            finally:
                await again.stop()
            with open_node_log(node, clock=SystemClock()) as log:
                assert log.size() == later.index + 1
                for receipt in [*receipts, later]:
                    assert log.find(receipt.record).index == receipt.index

    asyncio.run(main())


def test_an_older_feed_installed_as_a_sync_would_flips_nothing_at_the_hub(tmp_path: Path) -> None:
    """64d feed 1 (`restored`, and the relay deciding again on any (count, head)): the hosted
    authority's older feed installed again and again as a sync installs one (a late sync, a
    peer serving a stale copy: `set_feed` without `restored`, which only `refresh_hosted`
    passes) replaces nothing, and the relay decides nothing again, however often it comes (no
    flip between two lines, no CPU per install)."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a = await net.member("a")
        b = await net.member("b", **{"troth.relay": "b"})
        await b.create_relay("b", HUB)
        relay = hub.host.services["relay"]
        assert isinstance(relay, RelayService)
        authority = net.authority
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now(), force=True)
        older = hub.trust.feeds[authority.identifier]
        authority.revoke_identity(net.identifier(a), now=net.clock.now())
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        await asyncio.sleep(0)
        newer = hub.trust.feeds[authority.identifier]
        assert newer.count > older.count
        rechecks: list[int] = []
        real = relay._recheck

        def counted(now: int) -> None:
            rechecks.append(now)
            real(now)

        relay._recheck = counted  # type: ignore[method-assign]
        for _ in range(200):
            hub.trust.set_feed(authority.identifier, older)
            hub.trust.set_feed(authority.identifier, newer)
        await asyncio.sleep(0.05)
        assert hub.trust.feeds[authority.identifier] is newer
        assert rechecks == []
        assert relay.status()["b"]["state"] == "up"

    run_memnet(test, tmp_path / "home", budget=30)


def test_a_key_made_before_64f_copyable_and_untwinned_still_signs_and_retires(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """64f pkcs11 1 on an old token: a key pair made as troth made them before (copyable), with
    no twin, is found by a later vault (CKA_COPYABLE is no part of the search), signs, shows
    its public key, and is retired and destroyed."""
    key_id = os.urandom(16).hex()
    _pair(vault, key_id, f"troth:primary:{key_id}")
    handle = KeyHandle(vault.name, KeyType.ED25519, key_id)
    vault.close()
    with token_vault(softhsm) as later:
        verify_signature(later.public_key(handle), later.sign(handle, b"old"), b"old")
        later.delete_retired(handle, later.retire(handle, KeyPurpose.PRIMARY))
        with pytest.raises(KeyNotFound):
            later.sign(handle, b"gone")
