"""Nodes that reconnect on their own (issue 9, item 4), in one process: a hub that crashes and
comes back on the same port gets its relayed node back (relay, feed, pending announcements)
without a restart of that node; relay names stay with their owners across the hub's restart;
a message to a relay that is not up is answered `relay not found` at once, the same answer for
every name not up; a hub that goes silent is noticed by the keepalive (and junk cannot keep
the channel alive), and the link comes back when the hub answers again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.nodes import HUB, MemNet, run_memnet
from troth import limits
from troth.channel import ChannelSettings, RouteProblem, route_error
from troth.cli.main import cli
from troth.credentials import Attributes
from troth.encoding import cbor
from troth.errors import ChannelError, ConfigError, Denied, RemoteError, RoutingError
from troth.node import init_node, open_node
from troth.node.channels import ChannelLimits
from troth.node.links import Backoff, LinkState
from troth.node.node import node_dir
from troth.node.runtime import NodeRuntime
from troth.routing import RoutedMessage, parse_route
from troth.transport import frame
from troth.vault.ephemeral import EphemeralKey

FAST = Backoff(0.05, 0.2)
TO_B = f"{HUB}/relay/b/service/echo"


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `condition()` holds (the test fails after `timeout` s)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def crash_and_restart_hub(net: MemNet, *, down: Callable[[], Awaitable[None]]) -> None:
    """The hub's connections drop without a word (a crash), its runtime goes; `down()` runs
    while it is gone; then a new runtime of the same node listens on the same address."""
    old = net.hub
    assert old is not None
    await old.tcp.close()
    await old.stop()
    await down()
    hub = NodeRuntime(old.node, clock=net.clock, transport=net.transport("hub"))
    net.runtimes.append(hub)
    await hub.start(("hub", 4000))
    net.hub = hub


def link_state(runtime: NodeRuntime) -> LinkState:
    (row,) = runtime.link_rows()
    return row.state


def test_a_crashed_hub_gets_its_relayed_node_back(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)
        a = await net.node("a", backoff=FAST)
        await a.enroll(net.ticket(), "a")
        assert await a.send_message(TO_B, "before") == "before"
        (row,) = b.link_rows()
        assert (row.route, row.state, row.relays) == (HUB, LinkState.CONNECTED, ("b",))
        assert row.authority == str(net.authority.identifier)
        assert "connected [relay b, feed of " in row.describe()
        rotated = a.node.identities.rotate("a", now=net.clock.now()).identity

        async def while_down() -> None:
            await until(lambda: link_state(b) is not LinkState.CONNECTED)
            assert b.channel_rows() == []  # its channel to the hub is marked closed
            await until(lambda: b.link_rows()[0].attempts >= 2)
            (down,) = b.link_rows()
            assert down.error is not None
            assert "connection refused" in down.error
            status = b.status()
            cbor.encode(status)  # what the control socket sends (no floats)
            assert status["links"][0]["state"] in ("reconnecting", "connecting")
            assert status["links"][0]["relays"] == ["b"]
            (pending,) = await a.announce_rotations()  # cannot reach the hub: stays pending
            assert pending["announced"] is False
            with pytest.raises(RoutingError, match="connection refused"):
                await a.send_message(TO_B, "down")

        await crash_and_restart_hub(net, down=while_down)
        hub = net.hub
        assert hub is not None
        authority = net.authority
        authority.revoke_credential(b"\x07" * 32, now=net.clock.now())  # while b was away
        await until(lambda: link_state(b) is LinkState.CONNECTED)
        assert await a.send_message(TO_B, "after") == "after"  # b was never restarted
        assert hub.status()["services"]["relay"]["b"]["state"] == "up"
        assert b"\x07" * 32 in b.feeds[authority.identifier].revoked_credentials
        await until(lambda: authority.identifier in a.feeds and _superseded(a, rotated))

    run_memnet(test, tmp_path)


def _superseded(a: NodeRuntime, rotated: Any) -> bool:
    feed = next(iter(a.feeds.values()))
    found = feed.supersession(rotated.identifier)
    return found is not None and found.change_hash == rotated.current_change_hash


def test_a_reconnect_expects_the_identity_that_answered_before(tmp_path: Path) -> None:
    """Another node listening at the hub's address while the hub is down is refused: the
    link reconnects to the identity it had, never to whoever answers there."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)
        hub_id = net.authority.identifier
        impostor: list[NodeRuntime] = []

        async def impostor_answers() -> None:
            impostor.append(await net.node("impostor", listen=("hub", 4000)))
            await until(lambda: "answered" in (b.link_rows()[0].error or ""))
            error = b.link_rows()[0].error or ""
            assert f"expected {hub_id}, but {net.identifier(impostor[0])} answered" in error
            assert link_state(b) is not LinkState.CONNECTED
            with pytest.raises(ChannelError, match="expected"):
                await b.create_relay("b", HUB)  # pinned for the node's own requests too
            await impostor[0].tcp.close()
            await impostor[0].stop()

        await crash_and_restart_hub(net, down=impostor_answers)
        await until(lambda: link_state(b) is LinkState.CONNECTED)
        assert net.hub is not None
        assert net.hub.status()["services"]["relay"]["b"]["state"] == "up"

    run_memnet(test, tmp_path)


def test_relay_names_stay_with_their_owners_across_a_restart_of_the_hub(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        b = await net.member("b", **{"troth.relay": "b"})
        b_id = net.identifier(b)
        await b.create_relay("b", HUB)
        mallory = await net.node("mallory", backoff=FAST)
        await mallory.enroll(net.ticket(**{"troth.relay": "*"}), "mallory")
        a = await net.member("a")

        async def b_gone() -> None:
            await b.stop()  # b is gone too, and does not come back

        await crash_and_restart_hub(net, down=b_gone)
        hub = net.hub
        assert hub is not None
        held = hub.status()["services"]["relay"]["b"]
        assert held["owner"] == str(b_id)
        assert held["state"].startswith("held until")
        await until(lambda: link_state(mallory) is LinkState.CONNECTED)
        with pytest.raises(Denied) as denied:  # the restarted hub still holds it for b
            await mallory.create_relay("b", HUB)
        assert "belongs to another identity" in denied.value.reasons[0]
        with pytest.raises(RoutingError, match="relay not found"):
            await a.send_message(TO_B, "anyone?")
        net.clock.advance(hub.relay_grace)
        await hub.maintain()  # the grace period since the restart is over: the name is free
        await mallory.create_relay("b", HUB)
        assert hub.status()["services"]["relay"]["b"]["owner"] == str(net.identifier(mallory))

    run_memnet(test, tmp_path)


def test_one_identity_holds_a_bounded_number_of_relay_names(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        mallory = await net.member("mallory", **{"troth.relay": "*"})
        for n in range(limits.MAX_RELAYS_PER_OWNER):
            await mallory.create_relay(f"name-{n}", HUB)
        with pytest.raises(RemoteError, match="the most one member may hold"):
            await mallory.create_relay("one-more", HUB)
        await mallory.create_relay("name-0", HUB)  # creating one it holds again is fine
        kept = json.loads((node_dir(net.home, "hub") / "relays.json").read_text())
        assert len(kept["relays"]) == limits.MAX_RELAYS_PER_OWNER

    run_memnet(test, tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b'{"version": 2, "relays": {}}',
        b'{"version": 1, "relays": {"b": "not an identifier"}}',
        b'{"version": 1, "relays": {"a/b": "T' + b"0" * 64 + b'"}}',
        b'{"version": 1, "relays": []}',
    ],
)
def test_a_damaged_relay_book_stops_the_node_with_its_path(tmp_path: Path, content: bytes) -> None:
    async def main() -> None:
        init_node("hub", home=tmp_path)
        path = node_dir(tmp_path, "hub") / "relays.json"
        path.write_bytes(content)
        path.chmod(0o600)
        with open_node("hub", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            with pytest.raises(ConfigError, match=r"relays\.json"):
                await runtime.start()
            await runtime.stop()

    asyncio.run(main())


def test_keepalive_and_reconnect_times_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def keepalive(**environ: str) -> tuple[float, float]:
        variables = {f"TROTH_CHANNELS_{k.upper()}": v for k, v in environ.items()}
        settings = ChannelLimits.from_environment(variables).keepalive(ChannelSettings())
        return settings.keepalive_interval, settings.keepalive_timeout

    assert keepalive() == (15.0, 45.0)
    assert keepalive(keepalive_interval="1") == (1, 3)
    assert keepalive(keepalive_timeout="6") == (2, 6)
    assert keepalive(keepalive_interval="2", keepalive_timeout="10") == (2, 10)
    with pytest.raises(ConfigError, match="keepalive_timeout must be at least twice"):
        keepalive(keepalive_interval="5", keepalive_timeout="6")
    for bad in ("0", "-1", "x"):
        with pytest.raises(ConfigError, match="TROTH_CHANNELS_"):
            keepalive(keepalive_interval=bad)
    assert Backoff.from_environment({}) == Backoff(0.5, 10.0)
    assert Backoff.from_environment({"TROTH_RECONNECT_MAX_DELAY": "2.5"}).max_delay == 2.5
    for name, value in (("MAX_DELAY", "0"), ("BASE", "-1"), ("NOPE", "1")):
        with pytest.raises(ConfigError, match="TROTH_RECONNECT_"):
            Backoff.from_environment({f"TROTH_RECONNECT_{name}": value})

    monkeypatch.setenv("TROTH_CHANNELS_KEEPALIVE_INTERVAL", "0.5")
    monkeypatch.setenv("TROTH_RECONNECT_MAX_DELAY", "2")
    init_node("n", home=tmp_path)

    async def configured() -> tuple[float, float, float]:
        with open_node("n", home=tmp_path) as node:
            runtime = NodeRuntime(node)
            channel = runtime.channels.settings
            return (
                channel.keepalive_interval,
                channel.keepalive_timeout,
                runtime.links.backoff.max_delay,
            )

    assert asyncio.run(configured()) == (0.5, 1.5, 2)


# -- over TCP ------------------------------------------------------------------------------------


class Proxy:
    """A TCP proxy in front of the hub that can go silent (a partition): `freeze()` blackholes
    every connection through it from then on, `thaw()` lets new connections through again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.frozen = False
        self._cut: set[asyncio.Event] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"/tcp/127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def freeze(self) -> None:
        self.frozen = True
        for cut in self._cut:
            cut.set()

    def thaw(self) -> None:
        self.frozen = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cut = asyncio.Event()
        if self.frozen:
            cut.set()
        self._cut.add(cut)
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                if not cut.is_set():  # a blackhole: read and never deliver, never close
                    dst.write(data)
                    await dst.drain()

        with contextlib.suppress(ConnectionError):
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        writer.close()
        up_writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def tcp_hub(home: Path, quick: ChannelSettings) -> NodeRuntime:
    init_node("hub", home=home)
    node = open_node("hub", home=home)
    node.create_authority("hub", now=int(time.time()))
    hub = NodeRuntime(node, settings=quick)
    await hub.start(("127.0.0.1", 0))
    return hub


def ticket(hub: NodeRuntime, address: str, **attributes: str) -> str:
    authority = hub.node.authority()
    return str(
        authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "support", **attributes}),
            address=address,
            now=int(time.time()),
        )
    )


async def tcp_node(home: Path, name: str, **options: Any) -> NodeRuntime:
    init_node(name, home=home)
    runtime = NodeRuntime(open_node(name, home=home), **options)
    await runtime.start()
    return runtime


async def stop_all(*runtimes: NodeRuntime) -> None:
    for runtime in runtimes:
        await runtime.stop()
        runtime.node.close()


def test_a_silent_hub_is_noticed_by_the_keepalive_and_the_link_comes_back(
    tmp_path: Path,
) -> None:
    quick = ChannelSettings(keepalive_interval=0.2, keepalive_timeout=0.8)

    async def main() -> None:
        hub = await tcp_hub(tmp_path, quick)
        assert hub.listening is not None
        direct = "/tcp/{}:{}".format(*hub.listening)
        proxy = Proxy(hub.listening)
        via_proxy = await proxy.start()
        b = await tcp_node(
            tmp_path, "b", settings=quick, backoff=FAST, limits=ChannelLimits(handshake_timeout=1)
        )
        a = await tcp_node(tmp_path, "a", settings=quick)
        try:
            await b.enroll(ticket(hub, via_proxy, **{"troth.relay": "b"}), "b")
            await b.create_relay("b", via_proxy)
            await a.enroll(ticket(hub, direct), "a")
            to_b = f"{direct}/relay/b/service/echo"
            assert await a.send_message(to_b, "up") == "up"
            await asyncio.sleep(1.0)  # idle past the timeout: the PINGs keep it open
            assert link_state(b) is LinkState.CONNECTED
            assert hub.status()["services"]["relay"]["b"]["state"] == "up"
            (end,) = (e for e in b.channels.ends.values() if len(e.peer_route) == 2)

            proxy.freeze()  # the hub goes silent: no close, no error, nothing
            forged = b"\x00\x29\x02" + (2**40).to_bytes(8, "big") + bytes(32)  # no key
            junk = RoutedMessage((end.dec,), (), forged)
            for _ in range(40):  # unauthenticated bytes keep arriving: they must not count
                with contextlib.suppress(RoutingError):
                    await b.router.route(junk)
                await asyncio.sleep(0.05)
                if link_state(b) is not LinkState.CONNECTED:
                    break
            assert link_state(b) is not LinkState.CONNECTED  # noticed within the timeout
            assert end.enc not in b.channels.ends
            # the hub noticed too: the relay is held; a's channel to b died by its keepalive;
            # a new channel to b learns it at once
            b_id = str(b.identifier)
            await until(lambda: hub.status()["services"]["relay"]["b"]["state"] != "up")
            await until(lambda: all(row["peer"] != b_id for row in a.channel_rows()))
            with pytest.raises(RoutingError, match="relay not found"):
                await a.send_message(to_b, "anyone?")

            proxy.thaw()  # the hub answers again
            await until(lambda: link_state(b) is LinkState.CONNECTED)
            assert await a.send_message(to_b, "back") == "back"
        finally:
            await proxy.close()
            await stop_all(a, b, hub)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_relay_not_found_is_one_answer_for_every_name_not_up(tmp_path: Path) -> None:
    """An unauthenticated prober learns nothing beyond what trying the name tells: an unknown
    name and a name held for its gone owner get the same bytes back; an up relay answers the
    probe's message 1 with a message 2 (as before); a probe smaller than the answer gets none."""

    async def main() -> None:
        hub = await tcp_hub(tmp_path, ChannelSettings())
        assert hub.listening is not None
        address = "/tcp/{}:{}".format(*hub.listening)
        b = await tcp_node(tmp_path, "b")
        try:
            await b.enroll(ticket(hub, address, **{"troth.relay": "*"}), "b")
            await b.create_relay("b", address)
            await b.create_relay("held", address)
            reader, writer = await asyncio.open_connection(*hub.listening)
            message_1 = (33).to_bytes(2, "big") + b"\x01" + EphemeralKey().public_key.data
            back = parse_route("/worker/probe-1")

            async def probe(name: str, payload: bytes = message_1) -> RoutedMessage | None:
                onward = parse_route(f"/relay/{name}/service/channels")
                writer.write(frame(RoutedMessage(onward, back, payload).encode()))
                await writer.drain()
                try:
                    header = await asyncio.wait_for(reader.readexactly(5), 1.0)
                except TimeoutError:
                    return None
                body = await reader.readexactly(int.from_bytes(header[1:], "big"))
                return RoutedMessage.decode(body)

            up = await probe("b")
            assert up is not None
            assert bytes(up.payload[2:3]) == b"\x01"
            await b.stop()  # the owner goes: "held" and "b" are held for it now
            await until(lambda: hub.status()["services"]["relay"]["b"]["state"] != "up")
            answers = [await probe(name) for name in ("nosuch", "held", "b")]
            expected = route_error(RouteProblem.RELAY_NOT_FOUND)
            for answer in answers:
                assert answer is not None
                assert answer.onward == back
                assert answer.return_route == ()
                assert bytes(answer.payload) == expected
            assert await probe("nosuch", b"\x00" * (len(expected) - 1)) is None
            assert await probe("nosuch", b"\x00" * len(expected)) is not None
            writer.close()
        finally:
            await stop_all(b, hub)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_the_demo_shows_the_hub_going_down_and_agent_b_coming_back() -> None:
    result = CliRunner().invoke(cli, ["demo", "--chapter", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [
        "a relay name nobody holds; the hub\n  answers at once: relay not found",
        "the hub goes down",
        "orders notices at once",
        "orders retries",
        "the hub is back on the same port",
        "orders reconnects on its own and creates its relay again: up",
        "support-agent asks orders again through the relay:\n  order 4471: shipped",
    ]
    at = [result.stdout.find(line) for line in lines]
    assert -1 not in at, result.stdout
    assert at == sorted(at)  # in this order
