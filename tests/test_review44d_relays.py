"""Review 44d, relays: a member's relay names across a crash of the member itself.

Relays 1. `troth relay create b --at HUB` is acknowledged once the hub forwards `/relay/b` to
the member; the member keeps the name in its link to the hub and creates it again whenever
that link reconnects (docs/protocols.md, "Reconnecting"), and the hub keeps the name for its
owner in relays.json across the hub's own restarts. But the member kept it in memory only:
a member killed (SIGKILL, the OOM killer, a reboot) or merely restarted came back with no
relay anywhere, the hub held the name for the grace period and then freed it, and the member,
whose whole reachability was that name (it has no listening port), stayed unreachable until
an operator noticed and ran `relay create` again. Checked with real daemons too: a member
SIGKILLed and started again 8 times never got `/relay/b1` back; `message send` through it
answered `relay not found`.

Was a strict xfail until the member kept its relay names, with the identity each link expects,
in `<node dir>/own-relays.json` (troth.node.own_relays), written before `relay create` answers,
and a started node's links created them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, run_memnet
from troth.errors import ConfigError, StorageError
from troth.node.home import write_private_file
from troth.node.links import Backoff, LinkState
from troth.node.own_relays import OwnRelays
from troth.node.runtime import NodeRuntime

FAST = Backoff(0.05, 0.2)
TO_B = f"{HUB}/relay/b/service/echo"


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def crash_and_restart(net: MemNet, old: NodeRuntime) -> NodeRuntime:
    """The member's connections drop without a word (a crash), its runtime goes; a new
    runtime of the same node (its directory, its database) starts."""
    await old.tcp.close()
    await old.stop()
    host = f"host-{old.node.name}"
    runtime = NodeRuntime(old.node, clock=net.clock, transport=net.transport(host), backoff=FAST)
    net.runtimes.append(runtime)
    await runtime.start()
    return runtime


async def crash_and_restart_hub(net: MemNet, *, down: Callable[[], Awaitable[None]]) -> None:
    """The hub crashes (its connections drop without a word), `down()` runs while it is
    gone, then a new runtime of the same node listens on the same address."""
    old = net.hub
    assert old is not None
    await old.tcp.close()
    await old.stop()
    await down()
    hub = NodeRuntime(old.node, clock=net.clock, transport=net.transport("hub"))
    net.runtimes.append(hub)
    await hub.start(("hub", 4000))
    net.hub = hub


def test_a_member_restarted_after_a_crash_creates_its_relays_again(tmp_path: Path) -> None:
    """Review 44d, relays 1."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)
        a = await net.member("a")
        assert await a.send_message(TO_B, "before") == "before"
        hub = net.hub
        assert hub is not None
        b = await crash_and_restart(net, b)
        await until(lambda: hub.status()["services"]["relay"]["b"]["state"] == "up")
        await until(lambda: b.link_rows()[0].state is LinkState.CONNECTED)
        (row,) = b.link_rows()
        assert (row.route, row.state, row.relays) == (HUB, LinkState.CONNECTED, ("b",))
        c = await net.member("c")  # a's channel to b ended with b's crash (its keys are gone)
        assert await c.send_message(TO_B, "after") == "after"

    run_memnet(test, tmp_path)


def test_a_member_restarted_while_its_hub_is_down_gets_its_relay_back(tmp_path: Path) -> None:
    """Review 44d, relays 1, both down at once (a site's power cut): the member starts again
    while the hub is still down, its kept relay's link retries with the backoff, and once the
    hub is back on its port the relay is created again there."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)
        restarted: list[NodeRuntime] = []

        async def while_down() -> None:
            restarted.append(await crash_and_restart(net, b))
            await until(lambda: restarted[0].link_rows()[0].attempts >= 2)

        await crash_and_restart_hub(net, down=while_down)
        hub = net.hub
        assert hub is not None
        await until(lambda: hub.status()["services"]["relay"]["b"]["state"] == "up")
        await until(lambda: restarted[0].link_rows()[0].state is LinkState.CONNECTED)
        c = await net.member("c")
        assert await c.send_message(TO_B, "after") == "after"

    run_memnet(test, tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        b'{"version": 1, "relays": {"/tcp/hub:4000/relay/b": "T00"',  # cut short
        b'{"version": 1, "relays": {"/tcp/hub:4000": "T' + b"0" * 64 + b'"}}',  # no relay
    ],
)
def test_a_damaged_book_of_own_relays_names_itself(tmp_path: Path, text: bytes) -> None:
    """Review 44d, relays 1: a book the node cannot read stops it with its path (never read as
    empty, which would lose the names as a crash did)."""
    path = tmp_path / "own-relays.json"
    write_private_file(path, text)
    with pytest.raises(ConfigError, match=r"own-relays\.json is not a valid book of own relays"):
        OwnRelays(path).load()


def test_a_book_of_own_relays_that_cannot_be_written_is_a_storage_error(tmp_path: Path) -> None:
    """Review 44d, relays 1: the book not written (a full disk, a read-only home; here its
    directory is gone) is a StorageError naming it, not the OSError of the write."""
    book = OwnRelays(tmp_path / "gone" / "own-relays.json")
    with pytest.raises(StorageError, match=r"cannot keep the relay names in .*own-relays\.json"):
        book.save({})
