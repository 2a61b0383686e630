"""The public API on the network (loopback TCP): serving a service whose methods the access
decision point guards, channels that pin the expected peer, relays, enrollment and revocation
over the network, and the synchronous wrappers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import troth

READ = troth.Attributes({"orders.access": "read"})
LOOPBACK = ("127.0.0.1", 0)


def run(test: Callable[[], Awaitable[None]], budget: float = 60) -> None:
    async def main() -> None:
        async with asyncio.timeout(budget):
            await test()

    asyncio.run(main())


def orders_service(seen: list[troth.Request]) -> troth.Service:
    orders = troth.Service("orders")

    @orders.method("lookup", allow=troth.RequireAttributes(READ))
    async def lookup(request: troth.Request) -> list[str]:
        seen.append(request)
        if str(request.arguments) not in request.attribute("orders.customer"):
            raise troth.Denied((f"not customer {request.arguments}",))
        return [f"order of {request.arguments}"]

    return orders


def test_a_service_answers_only_the_callers_its_rule_admits() -> None:
    seen: list[troth.Request] = []

    async def test() -> None:
        with (
            troth.Node.open("acme") as hub,
            troth.Node.open("orders") as service,
            troth.Node.open("reader") as reader,
            troth.Node.open("other") as other,
            troth.Node.open("delegate") as delegate,
        ):
            acme = hub.create_authority()
            service.enroll(acme.ticket({"orders.service": "x"}))
            reader.enroll(acme.ticket({"orders.access": "read", "orders.customer": "4471"}))
            other.enroll(acme.ticket({"billing.access": "read"}))
            caveated = reader.delegate(
                reader.identity,
                to=delegate.identity,
                attributes={"orders.access": "read", "orders.customer": "4471"},
                ttl=600,
                purpose="look",
                caveats=['context.ticket == "9"'],
            )
            delegate.hold(delegate.identity, caveated)
            async with service.serve(listen=LOOPBACK, services=[orders_service(seen)]) as running:
                route = running.address
                async with reader.connect(route, expect=running.identifier) as channel:
                    assert channel.peer == service.identity.identifier
                    assert await channel.call("orders", "lookup", "4471") == ["order of 4471"]
                    with pytest.raises(troth.Denied) as denied:
                        await channel.call("orders", "lookup", "9999")
                    assert denied.value.reasons == ("not customer 9999",)
                (request,) = seen[:1]
                assert request.caller == reader.identity.identifier
                assert request.credential is not None
                assert request.credential.authority == acme.identifier
                async with other.connect(route, expect=running.identifier) as channel:
                    with pytest.raises(troth.Denied) as denied:
                        await channel.call("orders", "lookup", "4471")
                    assert "no credential covers the attributes" in denied.value.reasons[0]
                    assert denied.value.reasons[0].startswith("orders refused")
                with pytest.raises(troth.ChannelError) as refused:  # caveats: fail closed
                    async with delegate.connect(route, expect=running.identifier):
                        pass
                assert refused.value.reason is troth.ChannelFailure.PEER_NOT_ALLOWED
                assert "carry caveats" in refused.value.detail
                assert len(seen) == 2  # the handler ran only for the admitted calls

    run(test)


def test_a_channel_pins_the_expected_peer_and_a_stranger_is_refused() -> None:
    async def test() -> None:
        with (
            troth.Node.open("acme") as hub,
            troth.Node.open("member") as member,
            troth.Node.open("stranger") as stranger,
        ):
            hub.create_authority()
            member.enroll(hub.authority().ticket({"agents.team": "a"}))
            async with hub.serve(listen=LOOPBACK) as running:
                wrong = member.identity
                with pytest.raises(troth.ChannelError) as refused:
                    async with member.connect(running.address, expect=wrong):
                        pass
                assert refused.value.reason is troth.ChannelFailure.PEER_NOT_ALLOWED
                assert str(wrong.identifier) in refused.value.detail
                assert str(running.identifier) in refused.value.detail
                # the stranger pins the hub, so the refusal is the hub's (no credential)
                async with stranger.connect(running.address, expect=running.identifier) as ch:
                    with pytest.raises(troth.Denied) as denied:
                        await ch.call("echo", "echo", "hi")
                    assert (
                        "holds no credential from an authority acme trusts"
                        in denied.value.reasons[0]
                    )
                async with member.connect(running.address, expect=None) as channel:
                    assert await channel.call("echo", "echo", "hi") == "hi"
                    with pytest.raises(
                        troth.RoutingError, match=r"may not reach /service/nothing\-here"
                    ):
                        await channel.call("nothing-here", "x", timeout=2)

    run(test)


def test_two_agents_talk_through_a_relay_after_enrolling_over_the_network() -> None:
    chat = troth.Service("chat")

    @chat.method("ask", allow=troth.MembersOnly())
    async def ask(request: troth.Request) -> str:
        return f"{request.caller} asked {request.arguments}"

    async def test() -> None:
        with (
            troth.Node.open("acme") as hub_node,
            troth.Node.open("agent-a") as a_node,
            troth.Node.open("agent-b") as b_node,
            troth.Node.open("stranger") as stranger_node,
        ):
            acme = hub_node.create_authority()
            async with (
                hub_node.serve(listen=LOOPBACK) as hub,
                b_node.serve(services=[chat]) as b,
                a_node.serve() as a,
                stranger_node.serve() as stranger,
            ):
                with pytest.raises(troth.ConfigError, match="does not listen"):
                    b.address  # noqa: B018
                held = await b.enroll(acme.ticket({"troth.relay": "agent-b"}, at=hub.address))
                assert (held.holder, held.authority) == (b.identifier, acme.identifier)
                await a.enroll(acme.ticket({"agents.team": "a"}, at=hub.address))
                with pytest.raises(
                    troth.Denied,
                    match=r"no credential from T[0-9a-f]{64} holds the troth\.relay attribute",
                ):  # agent-a's credential holds no relay name
                    await a.relay("agent-b", at=hub.address)
                route = await b.relay("agent-b", at=hub.address)
                assert route == f"{hub.address}/relay/agent-b"
                async with a.connect(route, expect=b.identifier) as channel:
                    answer = await channel.call("chat", "ask", "hi")
                    assert answer == f"{a.identifier} asked hi"
                    async with a_node.connect(route, expect=b.identifier) as again:
                        assert again.peer == b.identifier  # the node's running instance
                with pytest.raises(troth.ChannelError) as refused:
                    async with stranger.connect(route, expect=b.identifier):
                        pass
                assert refused.value.reason is troth.ChannelFailure.PEER_NOT_ALLOWED
                assert "holds no credential" in refused.value.detail

    run(test)


@contextlib.contextmanager
def served_in_a_thread(node: troth.Node, **options: Any) -> Iterator[troth.RunningNode]:
    """`node.serve(**options)` on an event loop in another thread, for synchronous callers."""
    ready: list[troth.RunningNode] = []
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with node.serve(**options) as running:
            ready.append(running)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    try:
        assert started.wait(30), "the node did not start"
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def test_enroll_call_and_revoke_over_the_network_from_synchronous_code() -> None:
    with (
        troth.Node.open("acme") as hub,
        troth.Node.open("agents") as agents,
        troth.Node.open("sub") as sub_node,
    ):
        acme = hub.create_authority()
        with served_in_a_thread(hub, listen=LOOPBACK) as running:
            member = agents.enroll(acme.ticket({"orders.access": "read"}, at=running.address))
            assert member.authority == acme.identifier
            expect = running.identifier
            assert agents.call(running.address, "echo", "echo", [1, "two"], expect=expect) == [
                1,
                "two",
            ]
            sub = sub_node.identity
            chain = agents.delegate(
                agents.identity, to=sub, attributes={"orders.access": "read"}, ttl=60, purpose="x"
            )
            verifier = troth.Verifier(trust=[acme.identifier], feeds=acme)
            assert verifier.verify(chain, presenter=sub).actor == sub.identifier
            agents.revoke(chain, by=agents.identity, reason="done")  # a secure channel to acme
        with pytest.raises(troth.CredentialError) as refused:
            verifier.verify(chain, presenter=sub)
        assert (refused.value.reason, refused.value.link) == (troth.CredentialFailure.REVOKED, 1)


def test_synchronous_network_calls_inside_an_event_loop_say_what_to_do() -> None:
    async def test() -> None:
        with troth.Node.open("agents") as node:
            with pytest.raises(RuntimeError, match="use the async form"):
                node.call("/tcp/127.0.0.1:1", "echo", "echo", "hi", expect=None)
            async with node.serve() as running:
                with pytest.raises(RuntimeError, match="already running"):
                    async with node.serve():
                        pass
                assert running.identifier == node.identity.identifier

    run(test)


def test_service_names_and_methods_are_checked() -> None:
    with pytest.raises(ValueError, match="built-in service"):
        troth.Service("echo")
    with pytest.raises(ValueError, match="name must be a service name"):
        troth.Service("Orders!")
    service = troth.Service("orders")

    @service.method("lookup", allow=troth.MembersOnly())
    async def lookup(request: troth.Request) -> None:
        """A method."""

    with pytest.raises(ValueError, match="already has a method"):
        service.method("lookup", allow=troth.MembersOnly())
    assert set(service.methods) == {"lookup"}
    assert service.status() == {"methods": ["lookup"]}


def test_a_node_that_fails_to_start_can_be_served_again() -> None:
    async def test() -> None:
        with socket.socket() as taken, troth.Node.open("agents") as node:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with pytest.raises(
                troth.ConfigError, match=r"cannot listen on .*address already in use"
            ):
                async with node.serve(listen=taken.getsockname()):
                    pass
            async with node.serve() as running:
                assert running.identifier == node.identity.identifier

    run(test)
