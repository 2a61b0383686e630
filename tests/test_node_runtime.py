"""Node runtimes on the in-memory transport: caveated credentials denied on every kind of
node, a revocation denied on the next request of an open channel, relay names held for their
owner and pinned peers, a slow store that does not stall other channels, the typed control
table, and services composed from the configuration."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.authority import Authority
from troth.authority.client import revoke_request
from troth.credentials import Attributes
from troth.errors import ChannelError, ChannelFailure, DecodeError, Denied, NotFound, RoutingError
from troth.node import Node, open_node
from troth.node.control import perform
from troth.node.runtime import AUTHORITY, ECHO, HOSTED_FEED_POLL, SINK, NodeRuntime
from troth.node.services import call
from troth.storage import SqliteAuthorityStore

CAVEAT = 'context.ticket == "9"'
CAVEATS_REASON = "carry caveats, which only a Cedar policy bundle can satisfy (fail closed)"


async def delegated(
    net: MemNet, alice: NodeRuntime, name: str, caveats: tuple[str, ...] = ()
) -> tuple[NodeRuntime, bytes]:
    """Node `name` holding only a delegation from alice (troth.relay=*), trusting the hub."""
    now = net.clock.now()
    hub_id = net.authority.identifier

    def hold(node: Node) -> None:
        identity = node.identities.create(now=now, name=name).identifier
        chain = alice.node.wallet.delegate(
            "alice",
            to=identity,
            attributes=Attributes({"agents.team": "support", "troth.relay": "*"}),
            now=now,
            ttl=600,
            purpose="tickets",
            caveats=caveats,
        )
        node.wallet.hold(name, chain, now=now)
        node.wallet.trust(hub_id, HUB, now=now)

    runtime = await net.node(name, prepare=hold)
    await runtime.refresh_feeds()
    (held,) = runtime.node.wallet.held(name)
    return runtime, held.chain


def test_caveated_credentials_are_denied_on_every_kind_of_node(tmp_path: Path) -> None:
    """The reproduced hole (carol got an echo answer from the hub): denied on the authority
    node's echo, on the relay, and at a plain node's channel admission."""

    async def test(net: MemNet) -> None:
        alice = await net.member("alice", **{"troth.relay": "*"})
        plain = await net.node("plain", listen=("plain", 5000))
        await plain.enroll(net.ticket(), "plain")
        carol, _ = await delegated(net, alice, "carol", (CAVEAT,))
        end = await carol.channel_to(route(HUB))  # the authority node admits anyone to enroll
        with pytest.raises(Denied) as denied:
            await call(carol.router, (end.enc, ECHO), "echo", "let me in")
        assert CAVEATS_REASON in denied.value.reasons[0]
        with pytest.raises(Denied) as denied:
            await carol.create_relay("carol", HUB)
        assert CAVEATS_REASON in denied.value.reasons[0]
        with pytest.raises(ChannelError) as refused:
            await carol.channel_to(route("/tcp/plain:5000"))
        assert refused.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        assert CAVEATS_REASON in refused.value.detail
        # the same delegation without caveats passes all three
        dave, _ = await delegated(net, alice, "dave")
        assert await dave.send_message(f"{HUB}/service/echo", "hello") == "hello"
        assert await dave.send_message("/tcp/plain:5000/service/echo", "hi") == "hi"

    run_memnet(test, tmp_path)


def test_a_revocation_is_denied_on_the_next_request_of_an_open_channel(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        alice = await net.member("alice", **{"troth.relay": "*"})
        dave, chain = await delegated(net, alice, "dave")
        assert await dave.send_message(f"{HUB}/service/echo", "one") == "one"
        (channel,) = dave.channel_rows()
        link = dave.node.wallet.inspect(chain, now=net.clock.now()).links[-1].hash
        request = revoke_request(
            alice.node.identities,
            "alice",
            net.authority.identifier,
            credential_hash=link,
            chain=chain,
            reason="done",
            now=net.clock.now(),
        )
        end = await alice.channel_to(route(HUB))
        await call(alice.router, (end.enc, AUTHORITY), "revoke", request)
        with pytest.raises(Denied) as denied:  # no maintenance round in between
            await dave.send_message(f"{HUB}/service/echo", "two")
        assert "revoked" in denied.value.reasons[0]
        assert dave.channel_rows()[0]["id"] == channel["id"]  # the same, still open channel
        assert await alice.send_message(f"{HUB}/service/echo", "still") == "still"

    run_memnet(test, tmp_path)


async def _until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def _drop_relay_channel(net: MemNet, owner: NodeRuntime, name: str) -> None:
    """The owner's channel to the hub closes and stays closed for relay `name`: its link would
    reconnect and create the relay again, sometimes before the hub's state was read."""
    hub = net.hub
    assert hub is not None
    for link in owner.links.links.values():
        link.relays.discard(name)
    for end in list(owner.channels.ends.values()):
        if end.peer is not None and end.peer.identifier == net.authority.identifier:
            await end.close()
    await _until(lambda: hub.status()["services"]["relay"][name]["state"] != "up")


def test_a_relay_name_stays_with_its_owner_and_expect_pins_the_peer(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        b = await net.member("b", **{"troth.relay": "b"})
        b_id = net.identifier(b)
        await b.create_relay("b", HUB)
        a = await net.member("a")
        to_b = f"{HUB}/relay/b/service/echo"
        assert await a.send_message(to_b, "hi", expect=b_id) == "hi"

        await _drop_relay_channel(net, b, "b")
        mallory = await net.member("mallory", **{"troth.relay": "*"})
        with pytest.raises(Denied) as denied:  # within the grace period: the name is b's
            await mallory.create_relay("b", HUB)
        assert "belongs to another identity" in denied.value.reasons[0]
        await b.create_relay("b", HUB)  # the owner comes back within the grace period
        assert await (await net.member("a2")).send_message(to_b, "back", expect=b_id) == "back"

        await _drop_relay_channel(net, b, "b")
        net.clock.advance(hub.relay_grace + 1)
        await hub.maintain()  # the grace period is over: the name is free
        await mallory.create_relay("b", HUB)
        sender = await net.member("a3")
        with pytest.raises(ChannelError) as refused:
            await sender.send_message(to_b, "secret", expect=b_id)
        assert refused.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        assert str(b_id) in refused.value.detail
        assert str(net.identifier(mallory)) in refused.value.detail
        # without --expect a sender cannot tell: mallory answers
        assert await (await net.member("a4")).send_message(to_b, "who?") == "who?"

    run_memnet(test, tmp_path, relay_grace=5)


class SlowStore:
    """An authority store whose every call sleeps `delay` seconds first."""

    def __init__(self, inner: SqliteAuthorityStore) -> None:
        self.inner = inner
        self.delay = 0.0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def slow(*args: Any, **kwargs: Any) -> Any:
            if self.delay:
                time.sleep(self.delay)
            return attribute(*args, **kwargs)

        return slow


def test_a_slow_store_does_not_stall_other_channels(tmp_path: Path) -> None:
    stores: list[SlowStore] = []

    def slow_authority(node: Node) -> None:
        store = SlowStore(SqliteAuthorityStore(node.db))
        stores.append(store)
        config = store.get_config()
        assert config is not None
        authority = Authority(node.identities, store, config)
        node.authority = lambda: authority  # type: ignore[method-assign]

    async def test(net: MemNet) -> None:
        a = await net.member("a")
        b = await net.member("b")
        end = await a.channel_to(route(HUB))
        assert await b.send_message(f"{HUB}/service/echo", "warm") == "warm"
        stores[0].delay = 0.5
        feed = asyncio.ensure_future(call(a.router, (end.enc, AUTHORITY), "feed", [0]))
        await asyncio.sleep(0)
        assert await b.send_message(f"{HUB}/service/echo", "not stalled") == "not stalled"
        assert not feed.done()  # the slow request is still running off the loop
        assert isinstance(await feed, bytes)

    run_memnet(test, tmp_path, prepare_hub=slow_authority)


def test_the_control_table_is_typed(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        status = await perform(hub, "status", {})
        assert status["services"]["authority"]["identifier"] == str(net.authority.identifier)
        assert "handshakes_started" in status["counters"]["channels"]
        with pytest.raises(NotFound, match="unknown control operation 'nope'"):
            await perform(hub, "nope", {})
        with pytest.raises(DecodeError, match="argument 'to' must be text"):
            await perform(hub, "message.send", {"to": 1, "text": "x"})
        with pytest.raises(DecodeError, match="argument 'text' is required"):
            await perform(hub, "message.send", {"to": HUB})
        with pytest.raises(DecodeError, match="unknown arguments: extra"):
            await perform(hub, "status", {"extra": "x"})

    run_memnet(test, tmp_path)


def test_services_are_composed_from_the_configuration(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        only_echo = await net.node("echoer", listen=("echoer", 6000), services=("echo",))
        await only_echo.enroll(net.ticket(), "echoer")
        assert set(only_echo.status()["services"]) == {"echo"}
        a = await net.member("a")
        assert await a.send_message("/tcp/echoer:6000/service/echo", "x") == "x"
        with pytest.raises(RoutingError, match="may not reach /service/relay"):  # not Denied
            await a.send_message("/tcp/echoer:6000/service/relay", "x")
        assert {"echo", "sink", "relay", "authority"} <= set(net.hub.status()["services"])  # type: ignore[union-attr]
        end = await a.channel_to(route(HUB))
        await a.send_oneway(route(HUB), SINK, b"x" * 10)
        await call(a.router, (end.enc, ECHO), "echo", "sync")
        assert net.hub.status()["sunk"] == {"messages": 1, "bytes": 10}  # type: ignore[union-attr]

    run_memnet(test, tmp_path)


def test_a_revocation_by_another_process_reaches_the_next_decisions(tmp_path: Path) -> None:
    """`troth revoke identity` writes to the hub's store from another process: the hub reads
    the new entry from its store (polled every HOSTED_FEED_POLL s) and refuses the member."""

    async def test(net: MemNet) -> None:
        a = await net.member("a")
        to_hub = f"{HUB}/service/echo"
        assert await a.send_message(to_hub, "one") == "one"
        with open_node("hub", home=net.home) as other:  # its own connection, like the CLI's
            other.authority().revoke_identity(net.identifier(a), now=net.clock.now())
        refusals: list[Denied] = []
        async with asyncio.timeout(10):
            while not refusals:
                try:
                    await a.send_message(to_hub, "again")
                except Denied as exc:
                    refusals.append(exc)
                await asyncio.sleep(HOSTED_FEED_POLL / 4)
        assert "revoked" in refusals[0].reasons[0]

    run_memnet(test, tmp_path)
