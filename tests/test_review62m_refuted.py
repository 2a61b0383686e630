"""Review 62m: attacks on a node's lifecycle (upkeep, reconnects, the daemon's lock and control
socket) that did not work. Each is a real attempt that fails if its defence breaks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.support.waits import until
from tests.test_reconnect import FAST, crash_and_restart_hub
from troth import limits
from troth.errors import ConfigError, Denied
from troth.node import daemon, duewatch
from troth.node.channel_ends import ChannelEnd
from troth.node.daemon import _running_lock, node_status
from troth.node.duewatch import DueWatch
from troth.node.links import Backoff, Link, Links, LinkState
from troth.node.node import init_node, node_dir
from troth.node.runtime import NodeRuntime
from troth.node.trust import FEED_STALENESS


def test_one_maintenance_step_raising_anything_stops_none_of_the_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed refresh raising an unexpected error (not a TrothError): the peers are still
    re-checked and the services maintained in that round."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        ran: list[str] = []

        async def broken() -> None:
            raise RuntimeError("a bug in one step")

        async def check_peers() -> None:
            ran.append("peers")

        async def maintain_services() -> None:
            ran.append("services")

        monkeypatch.setattr(hub, "refresh_feeds", broken)
        monkeypatch.setattr(hub.channels, "check_peers", check_peers)
        monkeypatch.setattr(hub, "_maintain_services", maintain_services)
        await hub.maintain()
        await hub.maintain()  # and the next round runs as well
        assert ran == ["peers", "services"] * 2

    run_memnet(test, tmp_path)


def test_the_marks_poll_survives_an_unexpected_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the marks raising a non-TrothError once: the poll reads them again next time."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        reads: list[int] = []

        def read_due() -> None:
            reads.append(1)
            if len(reads) == 1:
                raise RuntimeError("a bug in reading the marks")

        monkeypatch.setattr(hub.trust, "read_due", read_due)
        monkeypatch.setattr(duewatch, "DUE_POLL", 0)
        poll = hub._spawn(DueWatch(hub).run())
        await until(lambda: len(reads) >= 3 or poll.done())
        assert not poll.done()
        assert len(reads) >= 3

    run_memnet(test, tmp_path)


def _end() -> ChannelEnd:
    return cast(
        ChannelEnd, SimpleNamespace(name="c", peer=None, channel=SimpleNamespace(closed=False))
    )


def test_a_link_retries_through_any_error_and_its_backoff_starts_over_once_back() -> None:
    """An attempt failing with anything (not only a TrothError) is retried; once restored its
    attempts count from 0 again, so the next loss waits the first, shortest backoff."""

    async def main() -> None:
        failures = [RuntimeError("a bug"), OSError("refused"), KeyError("x")]
        ceilings: list[int] = []
        links: Links

        async def restore(link: Link) -> None:
            ceilings.append(link.attempts + link.flaps)
            if failures:
                raise failures.pop(0)
            links.opened(link.route, _end())

        links = Links(restore, backoff=Backoff(base=1e-6, max_delay=1e-6), random=lambda: 0.0)
        link = links.link("/tcp/hub:4000")
        first = _end()
        links.opened(link.route, first)
        links.closed(first)
        await until(lambda: link.state is LinkState.CONNECTED)
        assert link.state is LinkState.CONNECTED
        assert link.attempts == 0
        assert ceilings == [0, 1, 2, 3]
        links.closed(cast(ChannelEnd, link.end))  # lost again: the first backoff again
        await until(lambda: link.state is LinkState.CONNECTED)
        assert ceilings[4:] == [0]
        assert link.state is LinkState.CONNECTED
        await links.stop()

    asyncio.run(main())


_HOLDER = """
import sys
from pathlib import Path
from troth.node.daemon import _running_lock
with _running_lock(Path(sys.argv[1]), "n"):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_node_killed_by_sigkill_leaves_nothing_that_stops_its_next_start(
    tmp_path: Path,
) -> None:
    """Two daemons for one node: the second is refused while the first holds the lock; the
    first killed by SIGKILL (its node.pid and status.json left behind), `node status` says it
    does not run and the next start takes the lock."""
    init_node("n", home=tmp_path)
    directory = node_dir(tmp_path, "n")
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=environment,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(ConfigError, match="already running"), _running_lock(directory, "n"):
            pass
        (directory / "node.pid").write_text(f"{holder.pid}\n")
        (directory / "status.json").write_text(f'{{"pid": {holder.pid}}}')
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
    assert node_status(tmp_path, "n")["running"] is False
    with _running_lock(directory, "n"):
        pass


def test_a_stop_during_a_control_request_is_not_held_back_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM (the stop event) while a control request is under way: the node stops (the
    runtime is stopped, once) without waiting for the request (its task ends with the event
    loop)."""

    async def main() -> None:
        stop = asyncio.Event()
        entered = asyncio.Event()
        stopped: list[int] = []

        async def runtime_stop() -> None:
            stopped.append(1)

        runtime = SimpleNamespace(
            name="n", listening=None, status=lambda: {"identifier": None}, stop=runtime_stop
        )

        async def perform(_: Any, op: str, arguments: dict[Any, Any]) -> Any:
            entered.set()
            await asyncio.Event().wait()  # a request that never ends by itself

        monkeypatch.setattr(daemon, "write_private_file", lambda path, data: None)
        socket_path = tmp_path / "c.sock"
        run = asyncio.create_task(
            daemon._run(
                cast(NodeRuntime, runtime),
                perform,
                tmp_path,
                socket_path,
                {"pid": os.getpid()},
                stop,
                lambda: None,
            )
        )
        await until(socket_path.exists)
        _reader, writer = await asyncio.open_unix_connection(str(socket_path))
        writer.write(daemon._control_frame({"op": "status"}, limits.MAX_CONTROL_REQUEST))
        await writer.drain()
        await asyncio.wait_for(entered.wait(), 5)
        stop.set()
        await asyncio.wait_for(run, 5)
        assert stopped == [1]
        writer.close()

    asyncio.run(main())


def test_an_authority_away_past_its_feeds_freshness_is_denied_then_comes_back(
    tmp_path: Path,
) -> None:
    """The hub (authority) gone longer than a feed stays fresh: a member refuses the other's
    requests (its copy of the feed is stale: fail closed, never the old answer); the hub back
    on its address, the member's link syncs the feed on its own and admits them again."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", listen=("b", 5000), backoff=FAST)
        await b.enroll(net.ticket(), "b")
        a = await net.node("a", backoff=FAST)
        await a.enroll(net.ticket(), "a")
        to_b = "/tcp/b:5000/service/echo"
        assert await a.send_message(to_b, "before") == "before"
        authority = net.authority.identifier

        async def while_down() -> None:
            net.clock.advance(FEED_STALENESS + 1)
            with pytest.raises(Denied, match="revocation feed is stale"):
                await a.send_message(to_b, "stale")

        await crash_and_restart_hub(net, down=while_down)
        now = net.clock.now()
        await until(lambda: b.feeds[authority].issued_at >= now - 1)
        assert await a.send_message(to_b, "after") == "after"

    run_memnet(test, tmp_path)
