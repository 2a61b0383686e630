"""Requests run concurrently, within limits (docs/protocols.md, "Concurrent requests"): a peer's
request to a handler that waits holds back no other request of its connection — another
channel's, its own channel's, a relayed channel's — while one-way messages keep their order;
past the per-member, per-connection or node limit a request is answered "busy" at once; a
channel or connection that closes cancels its requests still running; a handler's error
answers its own request only. Every check is on the order of events, none on time (a request
held back would fail with Unreachable after its call timeout)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable
from typing import Any

import pytest

from tests.support.parties import make_channel_party
from tests.test_channel_manager import HUB, Net, Peer, run, until
from troth.errors import Busy, RemoteError, TrothError, Unreachable
from troth.node.access import AnyAuthenticated
from troth.node.channels import ChannelEnd
from troth.node.services import Method, RequestContext, call
from troth.node.services.admission import Admission, Lane, RequestLimits
from troth.node.services.base import decode_response, encode_request, result_of
from troth.routing import Address, RoutedMessage, Source, new_worker_address, parse_route

GATED = Address("service", "gated")
ORDERED = Address("service", "ordered")


class Gated:
    """`wait` waits for the gate (in a task: it is not inline), `quick` yields once and
    answers, `fail` raises; what they saw, in order."""

    name = "gated"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started: list[Any] = []
        self.cancelled: list[Any] = []
        self.events: list[str] = []
        rule = AnyAuthenticated()
        self.methods = {
            "wait": Method(self.wait, rule),
            "quick": Method(self.quick, rule),
            "fail": Method(self.fail, rule),
        }

    async def wait(self, arguments: Any, context: RequestContext) -> Any:
        self.started.append(arguments)
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(arguments)
            raise
        return arguments

    async def quick(self, arguments: Any, context: RequestContext) -> Any:
        await asyncio.sleep(0)
        return arguments

    async def fail(self, arguments: Any, context: RequestContext) -> Any:
        await asyncio.sleep(0)
        if arguments == "bug":
            raise ValueError("a bug")
        raise RemoteError("refused")

    async def maintain(self, now: int) -> None:
        """Nothing."""

    def status(self) -> dict[str, Any]:
        return {}


class Ordered:
    """A one-way service recording what it got. Its handler waits longer for earlier
    messages (message i yields 20 - i times): run concurrently, they would end reversed."""

    name = "ordered"

    def __init__(self) -> None:
        self.methods: dict[str, Method] = {}
        self.oneway: Method | None = Method(self.take, AnyAuthenticated())
        self.seen: list[int] = []

    async def take(self, payload: Any, context: RequestContext) -> None:
        number = bytes(payload)[0]
        for _ in range(20 - number):
            await asyncio.sleep(0)
        self.seen.append(number)

    async def maintain(self, now: int) -> None:
        """Nothing."""

    def status(self) -> dict[str, Any]:
        return {}


async def _hub(net: Net, *services: Any, limits: RequestLimits | None = None) -> Peer:
    return await net.hub(services=services, requests=limits)


async def _channel(net: Net, peer: Peer, route: str = HUB) -> ChannelEnd:
    """A channel from `peer`, as an identity of its own (channels of several identities share
    the peer's one connection)."""
    who = make_channel_party(net.world.vault, now=net.clock.now - 1)
    me = who.me((net.world.credential(who),))
    return await peer.manager.open(parse_route(route), me=me)


def _ask(
    peer: Peer, end: ChannelEnd, method: str, value: Any, timeout: float = 5
) -> asyncio.Task[Any]:
    call_ = call(peer.router, (end.enc, GATED), method, value, timeout=timeout)
    return asyncio.create_task(call_)


async def _once(peer: Peer, end: ChannelEnd, method: str, value: Any) -> Any:
    """One request through `end` as it goes on the wire, and its answer's result as it comes
    back (`call` would send a busy one again)."""
    answers: asyncio.Queue[list[Any]] = asyncio.Queue()
    worker = new_worker_address("once")

    async def take(message: RoutedMessage, source: Source | None) -> None:
        answers.put_nowait(decode_response(message.payload)[1])

    peer.router.register(worker, take)
    try:
        request = encode_request(1, method, value)
        await peer.router.route(RoutedMessage((end.enc, GATED), (worker,), request))
        return result_of(await answers.get())
    finally:
        peer.router.unregister(worker)


def test_a_waiting_request_holds_back_no_other_request_on_its_connection() -> None:
    """Two identities on one node, each with a channel over the node's one connection: the
    first's request waits in its handler; the second's request, and the first's next one
    through the same channel, are answered meanwhile."""

    async def test(net: Net) -> None:
        gated = Gated()
        hub = await _hub(net, gated)
        node = net.peer("10.0.0.2")
        first, second = await _channel(net, node), await _channel(net, node)
        assert len(node.transport.connections()) == 1  # both channels share it
        waiting = _ask(node, first, "wait", "slow")
        await until(lambda: gated.started == ["slow"])
        gated.events.append("answered " + await _ask(node, second, "quick", "other channel"))
        gated.events.append("answered " + await _ask(node, first, "quick", "same channel"))
        assert not waiting.done()
        gated.gate.set()
        gated.events.append("answered " + await waiting)
        assert gated.events == [
            "answered other channel",
            "answered same channel",
            "answered slow",
        ]
        assert hub.host.running == 0

    run(test)


def test_a_waiting_request_holds_back_no_other_relayed_channel() -> None:
    """A node reached through a relay gets every relayed channel over its one connection to
    the relay: one sender's waiting request holds back no other sender's."""

    async def test(net: Net) -> None:
        gated = Gated()
        hub = await net.hub()
        node = await net.relayed(hub, "node", services=(gated,))
        b, c = net.peer("10.0.0.3"), net.peer("10.0.0.4")
        b_end = await _channel(net, b, f"{HUB}/relay/node")
        c_end = await _channel(net, c, f"{HUB}/relay/node")
        carriers = {end.carrier() for end in node.manager.ends.values()}
        assert len(carriers) == 1  # the node's connection to the relay carries both channels
        waiting = _ask(b, b_end, "wait", "b waits")
        await until(lambda: gated.started == ["b waits"])
        gated.events.append("answered " + await _ask(c, c_end, "quick", "c"))
        gated.gate.set()
        gated.events.append("answered " + await waiting)
        assert gated.events == ["answered c", "answered b waits"]

    run(test)


def test_one_way_messages_keep_their_order_while_requests_wait() -> None:
    """One-way messages through a channel, sent between requests that wait: each message is
    handled, in the order sent, while the requests still wait (their handlers yield a
    different number of times: run concurrently they would end in another order)."""

    async def test(net: Net) -> None:
        gated, ordered = Gated(), Ordered()
        await _hub(net, gated, ordered)
        node = net.peer("10.0.0.2")
        end = await _channel(net, node)
        waiting = []
        for number in range(20):
            if number % 5 == 0:
                waiting.append(_ask(node, end, "wait", number))
            await node.router.route(RoutedMessage((end.enc, ORDERED), (), bytes([number])))
        await until(lambda: len(ordered.seen) == 20)
        assert ordered.seen == list(range(20))
        assert gated.started == [0, 5, 10, 15]
        assert not any(task.done() for task in waiting)
        gated.gate.set()
        assert await asyncio.gather(*waiting) == [0, 5, 10, 15]

    run(test)


def test_past_a_limit_a_request_is_answered_busy_at_once() -> None:
    """Limits of 2 per member, 3 per connection, 4 on the node: the request past each is
    answered "busy" (Busy) while the others still wait, and is not run; `call` sends a busy
    request again until it runs (or raises Busy at its timeout); once the requests ended the
    counts are forgotten."""

    async def test(net: Net) -> None:
        gated = Gated()
        hub = await _hub(net, gated, limits=RequestLimits(per_peer=2, per_connection=3, total=4))
        node, other = net.peer("10.0.0.2"), net.peer("10.0.0.3")
        x, y, z = await _channel(net, node), await _channel(net, node), await _channel(net, other)
        waiting = [_ask(node, x, "wait", "x1"), _ask(node, x, "wait", "x2")]
        await until(lambda: len(gated.started) == 2)
        with pytest.raises(Busy, match=r"^busy: 2 requests of this member") as refused:
            await _once(node, x, "wait", "x3")
        assert isinstance(refused.value, RemoteError)  # what a caller caught before
        waiting.append(_ask(node, y, "wait", "y1"))  # another member: its own share
        await until(lambda: len(gated.started) == 3)
        with pytest.raises(Busy, match=r"^busy: 3 requests over this connection"):
            await _once(node, y, "wait", "y2")
        waiting.append(_ask(other, z, "wait", "z1"))  # another connection: its own share
        await until(lambda: len(gated.started) == 4)
        with pytest.raises(Busy, match=r"^busy: 4 requests are running on this node"):
            await _once(other, z, "wait", "z2")
        assert gated.started == ["x1", "x2", "y1", "z1"]  # the refused ones never ran
        assert hub.host.busy == 3
        assert hub.host.running == 4
        with pytest.raises(
            Busy, match=r"requests are running on this node \(its share of them for"
        ):  # sent again while its timeout allowed (2 s: its first answer comes under load too)
            await _ask(other, z, "wait", "z3", timeout=2.0)
        busy = hub.host.busy
        late = _ask(node, x, "wait", "x4")  # busy until the others end, then it runs
        await until(lambda: hub.host.busy > busy)
        gated.gate.set()
        assert await asyncio.gather(*waiting) == ["x1", "x2", "y1", "z1"]
        assert await late == "x4"
        assert gated.started == ["x1", "x2", "y1", "z1", "x4"]
        await until(lambda: hub.host.running == 0)
        assert hub.host.admission.running == 0
        assert hub.host.admission.held() == (0, 0)

    run(test)


def test_a_closing_channel_or_connection_cancels_its_requests() -> None:
    """A channel that closes cancels the requests it brought that still run (their answers
    have nowhere to go), and so does a connection that closes (its channels close with it):
    nothing of them is left on the node, and the callers get Unreachable."""

    async def test(net: Net) -> None:
        gated = Gated()
        hub = await _hub(net, gated)
        hub.transport.lost.append(hub.manager.connection_lost)  # as a node does
        node, other = net.peer("10.0.0.2"), net.peer("10.0.0.3")
        end = await _channel(net, node)
        (theirs,) = hub.manager.ends.values()  # the hub's end of it
        kept = await _channel(net, other)
        waiting = [_ask(node, end, "wait", n) for n in range(3)]
        still = _ask(other, kept, "wait", "kept")
        await until(lambda: len(gated.started) == 4)
        assert len(theirs.requests) == 3
        await end.close()
        await until(lambda: sorted(gated.cancelled) == [0, 1, 2])
        for task in waiting:
            with pytest.raises(Unreachable, match=r"channel \S+ closed"):
                await task
        await until(lambda: hub.host.running == 1)
        assert not theirs.requests
        assert not still.done()
        dropped = [_ask(other, kept, "wait", n) for n in (3, 4)]
        await until(lambda: len(gated.started) == 6)
        (connection,) = other.transport.connections()
        await connection.close()
        await until(lambda: sorted(gated.cancelled, key=str) == [0, 1, 2, 3, 4, "kept"])
        await until(lambda: hub.host.running == 0)
        assert hub.host.admission.running == 0
        assert hub.host.admission.held() == (0, 0)
        for task in (still, *dropped):
            with pytest.raises(TrothError, match=r"no answer from /service/gated within"):
                await task

    run(test)


def test_a_failing_handler_answers_its_own_request_only() -> None:
    """A handler that refuses (RemoteError) or has a bug (answered "internal error") fails its
    own request; a request waiting beside it on the same channel is answered all the same."""

    async def test(net: Net) -> None:
        gated = Gated()
        await _hub(net, gated)
        node = net.peer("10.0.0.2")
        end = await _channel(net, node)
        waiting = _ask(node, end, "wait", "kept")
        await until(lambda: gated.started == ["kept"])
        with pytest.raises(RemoteError, match="refused"):
            await _ask(node, end, "fail", "refuse")
        with contextlib.suppress(Exception), pytest.raises(RemoteError, match="internal error"):
            await _ask(node, end, "fail", "bug")
        assert await _ask(node, end, "quick", "still served") == "still served"
        gated.gate.set()
        assert await waiting == "kept"

    run(test)


def test_admission_counts_each_member_each_connection_and_the_node() -> None:
    """A request counts against every member at the roots of its caller's chains: one member's
    delegates (whose chains root at it) share its share; counts at zero are forgotten."""
    admission = Admission(RequestLimits(per_peer=2, per_connection=10, total=10))
    alice, bob = b"alice", b"bob"
    both: frozenset[Hashable] = frozenset({alice, bob})  # chains rooted at both
    lanes = [Lane(frozenset({alice}), "c1"), Lane(both, "c2")]
    for lane in lanes:
        assert admission.refusal(lane) is None
        admission.take(lane)
    assert admission.refusal(Lane(frozenset({alice}), "c3")) is not None  # alice holds 2
    assert admission.refusal(Lane(frozenset({bob}), "c3")) is None  # bob holds 1
    assert admission.held() == (2, 2)
    for lane in lanes:
        admission.release(lane)
    assert admission.running == 0
    assert admission.held() == (0, 0)
