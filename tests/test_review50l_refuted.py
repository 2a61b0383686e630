"""Review 50l, refuted: attacks on code merged for reviews 50b-50k that the code withstood
(the node's lifecycle, eviction at the connection cap, no-route notices v2, revocation marks)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import troth
from tests.test_reconnect import stop_all, tcp_node, ticket, until
from tests.test_review50e_idle import JUNK, accepted, counters
from troth import limits
from troth.errors import DecodeError
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.node.daemon import node_status, stop_daemon
from troth.node.home import write_private_file
from troth.node.node import node_dir
from troth.node.process import start_time
from troth.node.runtime import NodeRuntime
from troth.node.syncdue import orphaned_marks, settle_sync
from troth.routing import Address, Router
from troth.routing.notice import no_route, parse_no_route
from troth.transport import TcpTransport
from troth.transport.settings import TcpSettings

SRC = str(Path(__file__).resolve().parents[1] / "src")  # absolute: the subprocesses' code


def test_a_status_file_starting_for_ever_with_a_reused_pid_is_stale(tmp_path: Path) -> None:
    """Lifecycle: a daemon killed while it started left `starting: true` and its start time;
    its pid went to a process of this user holding no node lock (a `sleep`): the node is not
    starting (`node start` is not refused for it), and `node stop` signals nothing."""
    init_node("n", home=tmp_path)
    directory = node_dir(tmp_path, "n")
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "troth.node", "n"]
    )
    try:
        started = start_time(other.pid)
        assert started is not None
        for recorded in (started, started - 1, None):
            status = {"pid": other.pid, "starting": True, "started": recorded}
            write_private_file(directory / "status.json", json.dumps(status).encode())
            now = node_status(tmp_path, "n")
            assert now["running"] is False
            assert not now.get("starting")
            assert stop_daemon(tmp_path, "n") is False
            assert other.poll() is None  # not signalled
    finally:
        other.kill()
        other.wait()


def test_at_the_cap_a_quiet_authenticated_connection_outlasts_junk(tmp_path: Path) -> None:
    """Eviction: at the cap, a member's connection that authenticated and then went quiet
    (idle far past `evict_idle_after`) is not what a newcomer evicts while a junk sender's
    connection is there: the junk one goes (it made no progress), the member's stays."""

    def capped(router: Router) -> TcpTransport:
        return TcpTransport(router, settings=TcpSettings(max_connections=2))

    async def main() -> None:
        init_node("hub", home=tmp_path)
        node = open_node("hub", home=tmp_path)
        node.create_authority("hub", now=int(time.time()))
        hub = NodeRuntime(node, transport=capped)
        await hub.start(("127.0.0.1", 0))
        assert hub.listening is not None
        at = "/tcp/{}:{}".format(*hub.listening)
        b = await tcp_node(tmp_path, "b")
        raws: list[socket.socket] = []
        try:
            await b.enroll(ticket(hub, at), "b")
            (member,) = accepted(hub)
            assert member.progress
            member.liveness.last_active -= 10 * hub.tcp.settings.evict_idle_after  # type: ignore[union-attr]
            raw = socket.create_connection(hub.listening, source_address=("127.0.0.2", 0))
            raws.append(raw)
            raw.sendall(JUNK[0])
            await until(lambda: sum(c.frames_read for c in accepted(hub)) > member.frames_read)
            (junk,) = (c for c in accepted(hub) if c is not member)
            raws.append(socket.create_connection(hub.listening, source_address=("127.0.0.3", 0)))
            await until(lambda: counters(hub).evicted + counters(hub).refused_over_limit == 1)
            assert counters(hub).evicted == 1
            await until(lambda: junk.closed.is_set())
            assert not member.closed.is_set()
        finally:
            for raw in raws:
                raw.close()
            await stop_all(b, hub)

    asyncio.run(main())


def test_the_largest_notice_a_node_may_send_decodes_and_a_longer_way_does_not() -> None:
    """Notice v2: a way and a sender route of `MAX_ROUTE_LENGTH` addresses each, every value
    `MAX_ADDRESS_TEXT` long (the most a node passes back: it drops a way already that long),
    is within the decoder's size limit; one address more is refused."""
    longest = Address("worker", "w" * limits.MAX_ADDRESS_TEXT)
    full = (longest,) * limits.MAX_ROUTE_LENGTH
    assert parse_no_route(no_route(full, full)) == (full, full)
    with pytest.raises(DecodeError):
        parse_no_route(no_route((*full, longest), full))
    with pytest.raises(DecodeError):
        parse_no_route(no_route(full, (*full, longest)))


def test_a_stopped_revoker_holding_a_node_s_lock_shared_holds_no_reader() -> None:
    """Revocation marks: a revoker (another process) holds `agents`' `node.db.revoking` shared,
    as it does from its mark until its authority's commit, and is stopped (SIGSTOP): reading
    and settling `agents`' marks waits for nothing; the marks stand (fail closed) meanwhile."""
    authority = Identifier(bytes(32))
    with troth.Node.open("agents") as agents:
        node = agents._stored
        node.wallet.store.mark_sync_due(authority.digest, "", 0)
        path = Path(os.environ["TROTH_HOME"]) / "nodes" / "agents" / "node.db.revoking"
        code = (
            "import sys\nfrom pathlib import Path\nfrom troth.storage.peers import PeerLock\n"
            "lock = PeerLock(Path(sys.argv[1]))\nprint('held', flush=True)\nsys.stdin.read()\n"
        )
        revoker = subprocess.Popen(
            [sys.executable, "-c", code, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": SRC},
        )
        try:
            assert revoker.stdout is not None
            assert revoker.stdout.readline() == b"held\n"
            revoker.send_signal(signal.SIGSTOP)
            results: list[object] = []

            def read() -> None:
                results.append(orphaned_marks(node, authority))
                results.append(settle_sync(node, authority, 0))

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            reader.join(timeout=10 * limits.MARK_BUSY_SECONDS + 20)
            finished = not reader.is_alive()
        finally:
            revoker.send_signal(signal.SIGCONT)
            revoker.kill()
            revoker.wait()
        reader.join()
        assert finished
        assert results == [[], False]
        assert node.wallet.store.marks_due(authority.digest) != []
