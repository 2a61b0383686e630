"""Review 64x, hostile load after session 64's changes, on real node processes over loopback
(issue 8; docs/protocols.md, "Load limits"): attacks that did not work. Each test measures the
hub's memory (RSS), its log, and that the legitimate member `a` still gets an echo answer
while the attack runs (answered at all: no timing is asserted here, the
machine is shared; tests/test_node_load.py times it).

- A stranger floods made-up `/service/...` names (64b/64m: each now costs a decision and is
  answered a denial): every request is answered, the log grows by a few rate-limited lines,
  the memory stays flat, and the member is answered.
- The same stranger sends requests of the largest size a service takes, made of containers nested
  as deep as the decoder refuses, to made-up names and to the authority: refused (not
  answered), the channel and the node unharmed.
- Having read them, it reads none of 12,000 more: the answers wait within the write budget
  or are dropped.
- Half-open handshakes from 32 networks (/24s), 24 each, 768 together (three times the
  global limit): the member is still answered.
- (In process) a peer the node connects to that closes each connection as it accepts it, 300
  connects: every caller is told at once (the `lost` hook names `/tcp/host:port`, so the
  handshake sent on it fails now, not at its timeout), and no connection is left behind
  (64e/64k shared a connect per address).
"""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from tests.support.load import (
    AUTHORITY,
    HandshakeFlood,
    MiB,
    Nodes,
    Stranger,
    echo_route,
    hub_and_member,
    nodes_fixture,  # noqa: F401  (the fixture `nodes`)
    timed_echo,
)
from troth import limits
from troth.encoding import cbor
from troth.errors import Unreachable
from troth.node.channels import ChannelEnd
from troth.node.services import call
from troth.node.services.protocol import REQUEST, VERSION, decode_response, encode_request
from troth.routing import Address, RoutedMessage, Router
from troth.transport import TcpSettings, TcpTransport

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="needs /proc and 127/8"
)
LOAD = pytest.mark.load
"""The floods run in the serial load run (a CPU-bound hub beside them); the nested requests
(8 messages, refused at the decoder's depth limit) and the in-process connects run in the
main run (75a citime: nothing in them is timed or floods the machine)."""

ANSWERS = Address("worker", "answers-64x")


class Answers:
    """The answers the hub sends to ANSWERS: (request id, response) each."""

    def __init__(self, router: Router) -> None:
        self.received: list[list[object]] = []
        router.register(ANSWERS, self._arrived)

    async def _arrived(self, message: RoutedMessage, _source: object) -> None:
        self.received.append(decode_response(message.payload)[1])

    async def wait_for(self, count: int, timeout: float) -> int:
        """Wait up to `timeout` s for `count` answers; how many arrived."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.received) < count and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        return len(self.received)


async def send_request(
    router: Router, end: ChannelEnd, service: str, request: int, argument: object
) -> None:
    """One request to `/service/<service>` through `end`, answered to ANSWERS."""
    payload = encode_request(request, "request", argument)
    route = (end.enc, Address("service", service))
    await router.route(RoutedMessage(route, (ANSWERS,), payload))


def nested_request(request: int, size: int) -> bytes:
    """A request envelope `size` bytes long whose arguments are arrays of one element nested
    as deep as the bytes allow (far past MAX_CBOR_DEPTH): raw, as no encoder here makes it."""
    head = cbor.encode([REQUEST, VERSION, request, "request", None])[:-1]  # without the null
    return head + b"\x81" * (size - len(head) - 1) + b"\x00"


@LOAD
def test_a_stranger_flooding_made_up_service_names_is_answered_and_held(nodes: Nodes) -> None:
    """A stranger (any authenticated identity reaches a node hosting an authority) sends 3,000
    requests, each to a made-up service name of its own (a decision and a denial each since
    64b), 300 at a time. Each is answered (denied, as the services served are), the hub's log
    grows by its rate-limited lines only, its memory stays flat, and member `a` still gets its
    echo while the flood runs. Fails if the unserved path stops answering (the requests wait
    out their timeouts), logs a line per request, or keeps something per name."""
    net = hub_and_member(nodes)
    before, log_before = net.hub.rss(), net.hub.log_size()

    async def attack() -> tuple[list[list[object]], float, int]:
        router = Router()
        tcp = TcpTransport(router, TcpSettings())
        stranger, answers = Stranger(router), Answers(router)
        try:
            end = await stranger.open(net.hub)
            echo = asyncio.ensure_future(asyncio.to_thread(timed_echo, echo_route(net.hub.address)))
            await asyncio.sleep(0)  # (started with the flood)
            for batch in range(10):
                for n in range(batch * 300, batch * 300 + 300):
                    await send_request(router, end, f"made-up-{n}-" + "x" * 100, n, [n])
                assert await answers.wait_for(batch * 300 + 300, 10) == batch * 300 + 300
            seconds = await echo
            return answers.received, seconds, net.hub.rss()
        finally:
            await stranger.manager.close_all()
            await tcp.close()

    received, _seconds, during = asyncio.run(attack())  # `a` was answered (timed_echo)
    assert {answer[4]["error"] for answer in received} == {"denied"}, received[:3]  # type: ignore[index]
    assert during - before < 16 * MiB, (before, during)
    log = net.hub.log.read_text()[log_before:]
    assert net.hub.log_size() - log_before < 8192, log
    assert "Traceback" not in log, log


def test_maximum_size_deeply_nested_requests_are_refused_and_harm_nothing(nodes: Nodes) -> None:
    """The stranger sends, on one channel, requests of MAX_SERVICE_MESSAGE bytes nested as
    deep as the bytes allow (~1,000,000 levels) to made-up names and to the authority (which
    serves it): each is refused unanswered (malformed: no request id is read from it), the
    channel stays open (a request to the authority on it is answered), the node's memory
    stays flat and member `a` is answered. Fails if any decoder recursed (the node would
    crash: RecursionError or a stack overflow) or kept the messages."""
    net = hub_and_member(nodes)
    before = net.hub.rss()
    size = limits.MAX_SERVICE_MESSAGE - 64  # the routed message's route fits beside it

    async def attack() -> tuple[int, bool, int]:
        router = Router()
        tcp = TcpTransport(router, TcpSettings())
        stranger, answers = Stranger(router), Answers(router)
        try:
            end = await stranger.open(net.hub)
            for n, service in enumerate(("made-up", "authority", "echo", "made-up-2") * 2):
                route = (end.enc, Address("service", service))
                payload = nested_request(n, size)
                await router.route(RoutedMessage(route, (ANSWERS,), payload))
            alive = await stranger.still_open(end)
            fed = await call(router, (end.enc, AUTHORITY), "feed", [0])
            return len(answers.received), alive and fed is not None, net.hub.rss()
        finally:
            await stranger.manager.close_all()
            await tcp.close()

    answered, alive, during = asyncio.run(attack())
    assert answered == 0
    assert alive
    timed_echo(echo_route(net.hub.address))  # answered (timed_echo checks the answer)
    assert during - before < 32 * MiB, (before, during)
    assert "nested deeper than" in net.hub.log.read_text()  # they reached its decoder


@LOAD
def test_half_open_handshakes_from_32_networks_leave_room_for_a_member(nodes: Nodes) -> None:
    """Handshake messages 1 from 32 networks (127.0.10.1 ... 127.0.41.1: /24s of their own,
    so each has its own per-source limit of 16 half-open handshakes), 24 from each: together
    768, three times the global 256, none of them past its own limit but 8. Member `a`'s
    handshake from 127.0.0.1 still completes (it holds none: at the global limit it evicts
    the largest source's oldest), and the node's memory stays flat."""
    net = hub_and_member(nodes)
    before = net.hub.rss()
    flood = HandshakeFlood(net.hub, [f"127.0.{n}.1" for n in range(10, 42)], connections=1)
    try:
        flood.burst(768)
        time.sleep(0.5)
        timed_echo(echo_route(net.hub.address))  # answered (timed_echo checks the answer)
    finally:
        flood.stop()
    assert flood.answered >= 256  # the node took the flood up: the attack is real
    assert net.hub.rss() - before < 16 * MiB


@LOAD
def test_a_stranger_that_reads_no_answers_to_made_up_names_is_held(nodes: Nodes) -> None:
    """The stranger sends 12,000 requests to made-up names (each answered a denial since 64b:
    ~3 MiB of answers) and then reads nothing for 2 s (its event loop blocked): the answers
    the hub cannot write wait within its write budget or are dropped (Congested), its memory
    stays flat, and member `a` gets its echo meanwhile. Fails if the hub queued every answer
    to the non-reader or if its answering stalled other channels."""
    net = hub_and_member(nodes)
    before = net.hub.rss()

    async def attack() -> tuple[int, int]:
        router = Router()
        tcp = TcpTransport(router, TcpSettings())
        stranger, answers = Stranger(router), Answers(router)
        try:
            end = await stranger.open(net.hub)
            for n in range(12_000):
                await send_request(router, end, f"made-up-{n}-" + "y" * 200, n, [n])
            echo = asyncio.ensure_future(asyncio.to_thread(timed_echo, echo_route(net.hub.address)))
            await asyncio.sleep(0.1)  # the thread has started
            time.sleep(2)  # reads nothing: the hub's answers back up
            during = net.hub.rss()
            await echo  # `a` was answered (timed_echo checks the answer)
            return await answers.wait_for(1, 5), during
        finally:
            await stranger.manager.close_all()
            await tcp.close()

    answered, during = asyncio.run(attack())
    assert answered >= 1  # the hub did answer the flood: the attack is real
    assert during - before < 32 * MiB, (before, during)


@pytest.mark.parametrize("how", ["reset", "close"])
def test_a_peer_closing_each_connection_at_accept_leaves_nothing_behind(how: str) -> None:
    """A peer the node connects to accepts each connection and resets or closes it at once:
    ten rounds of 10 callers one after the other, then 20 at once (sharing a connect, 64e).
    Every caller gets a connection that is closed or Unreachable, the `lost` hooks are told
    `/tcp/host:port` for each (the handshake sent on it fails at once: review 48h, sources 2),
    and none is left among the transport's connections. Fails if a connection closed before
    its connect returned were kept as the address's (later callers would send into it), or
    its loss were not told."""

    async def main() -> tuple[int, int, int, int]:
        async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if how == "reset":
                writer.transport.abort()
            else:
                writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tcp = TcpTransport(Router(), TcpSettings())
        lost: list[Address] = []
        tcp.lost.append(lost.append)
        opened = failed = 0

        async def one() -> None:
            nonlocal opened, failed
            try:
                await tcp.connect("127.0.0.1", port)
                opened += 1
            except Unreachable:
                failed += 1

        try:
            for _ in range(10):
                for _ in range(10):
                    await one()
                await asyncio.gather(*(one() for _ in range(20)))
                await asyncio.sleep(0.02)  # the last connection's loss is seen
            left = len(tcp.connections())
        finally:
            await tcp.close()
            server.close()
        told = sum(address == Address("tcp", f"127.0.0.1:{port}") for address in lost)
        return opened, failed, told, left

    opened, failed, told, left = asyncio.run(main())
    assert opened + failed == 300
    assert told >= 100  # each caller one after the other made a connection, and was told
    assert left == 0
