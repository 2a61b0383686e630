"""The TCP transport's limits against real sockets on loopback: connections capped per source
address and in total (idle ones evicted for new ones, and a fair share for a new source),
first-frame, idle and stall timeouts, read buffers that shrink back, a listener out of
descriptors that logs a few lines and recovers, frames written together, and settings from the
environment."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from troth.errors import ConfigError, RoutingError
from troth.node.access import AccessRequest, AnyAuthenticated, Decision, LocalCaller
from troth.node.services import Method, RequestContext, ServiceHost
from troth.node.services.base import decode_response, encode_request, result_of
from troth.routing import Address, RoutedMessage, Router, Source
from troth.transport import Listener, TcpSettings, TcpTransport, frame
from troth.transport.framing import FRAME_HEADER

ECHO = Address("service", "echo")
SMALL = TcpSettings().small_read_buffer
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Server:
    transport: TcpTransport
    host: str
    port: int

    async def client(self, source: str = "127.0.0.1") -> Streams:
        return await asyncio.open_connection(self.host, self.port, local_addr=(source, 0))


def echo_transport(settings: TcpSettings) -> TcpTransport:
    """A TCP transport whose router answers ECHO with the payload, to the return route."""
    router = Router()

    async def echo(message: RoutedMessage, source: Source | None) -> None:
        await router.route(RoutedMessage(message.return_route, (), message.payload))

    router.register(ECHO, echo)
    return TcpTransport(router, settings)


def run(test: Callable[[Server], Awaitable[None]], settings: TcpSettings) -> None:
    async def main() -> None:
        transport = echo_transport(settings)
        host, port = await transport.listen("127.0.0.1", 0, Listener(frozenset({ECHO})))
        try:
            await asyncio.wait_for(test(Server(transport, host, port)), 20)
        finally:
            await transport.close()

    asyncio.run(main())


def request(payload: bytes = b"ping") -> bytes:
    return frame(RoutedMessage((ECHO,), (), payload).encode())


async def answer(streams: Streams) -> bytes:
    """Send a request to the echo worker; its answer's payload."""
    reader, writer = streams
    writer.write(request())
    await writer.drain()
    (length,) = FRAME_HEADER.unpack(await reader.readexactly(FRAME_HEADER.size))[1:]
    return bytes(RoutedMessage.decode(await reader.readexactly(length)).payload)


async def closed_by_server(streams: Streams, timeout: float = 3.0) -> bool:
    try:
        return await asyncio.wait_for(streams[0].read(), timeout) == b""
    except (TimeoutError, ConnectionResetError):
        return False


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_connections_are_capped_per_source_address() -> None:
    async def test(server: Server) -> None:
        clients = [await server.client() for _ in range(5)]
        counters = server.transport.counters
        await until(lambda: counters.refused_per_source == 2)
        assert len(server.transport.connections()) == 3
        other = await server.client("127.0.0.2")  # another address still gets in
        assert await answer(other) == b"ping"
        assert sum([await closed_by_server(c, 0.2) for c in clients]) == 2

    run(test, TcpSettings(max_connections_per_source=3))


def test_at_the_cap_a_new_connection_evicts_one_that_sent_nothing() -> None:
    async def test(server: Server) -> None:
        counters = server.transport.counters
        silent = [await server.client() for _ in range(3)]
        await until(lambda: counters.accepted == 3)
        newcomer = await server.client()
        assert await answer(newcomer) == b"ping"
        assert counters.evicted == 1
        assert await closed_by_server(silent[0])  # the oldest silent one
        for streams in silent[1:]:
            assert await answer(streams) == b"ping"  # now every connection is active
        refused = await server.client()
        assert await closed_by_server(refused)
        assert counters.refused_over_limit == 1

    run(test, TcpSettings(max_connections=3))


def test_a_connection_must_bring_a_first_frame_in_time() -> None:
    async def test(server: Server) -> None:
        silent = await server.client()
        talking = await server.client()
        assert await answer(talking) == b"ping"
        assert await closed_by_server(silent)
        assert server.transport.counters.closed_first_frame == 1
        assert await answer(talking) == b"ping"

    run(test, TcpSettings(first_frame_timeout=0.2))


def test_an_idle_connection_is_closed_and_a_busy_one_is_not() -> None:
    async def test(server: Server) -> None:
        idle, busy = await server.client(), await server.client()
        assert await answer(idle) == b"ping"
        for _ in range(8):  # 0.8 s of traffic, well past the idle timeout
            assert await answer(busy) == b"ping"
            await asyncio.sleep(0.1)
        assert await closed_by_server(idle, 0.1)
        assert server.transport.counters.closed_idle == 1
        assert await answer(busy) == b"ping"

    run(test, TcpSettings(idle_timeout=0.4))


def test_a_stalled_frame_closes_its_connection() -> None:
    async def test(server: Server) -> None:
        streams = await server.client()
        streams[1].write(request()[:9])  # the header and part of the body
        assert await closed_by_server(streams)
        assert server.transport.counters.closed_stalled == 1

    run(test, TcpSettings(frame_timeout=0.2))


def test_an_oversized_frame_header_closes_the_connection_at_once() -> None:
    async def test(server: Server) -> None:
        streams = await server.client()
        streams[1].write(b"\x01" + (1 << 30).to_bytes(4, "big"))
        assert await closed_by_server(streams)
        assert server.transport.counters.closed_bad_frame == 1

    run(test, TcpSettings())


def test_read_buffers_shrink_back_on_idle_connections() -> None:
    """The issue's attack: many connections each send one large garbage frame and go
    silent. The sweep gives every buffer back to the small size."""

    async def test(server: Server) -> None:
        clients = [await server.client() for _ in range(20)]
        for _reader, writer in clients:
            writer.write(frame(bytes(17_000)))
        transport = server.transport
        await until(lambda: transport.counters.dropped_messages == 20)
        assert {c.read_buffer for c in transport.connections()} != {SMALL}  # grown for them
        await until(lambda: {c.read_buffer for c in transport.connections()} == {SMALL})

    run(test, TcpSettings(first_frame_timeout=0.4))  # (a sweep every 0.1 s)


CHILD = textwrap.dedent(
    """
    import asyncio, logging, resource, sys
    from troth.routing import Address, RoutedMessage, Router
    from troth.transport import Listener, TcpSettings, TcpTransport

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    ECHO = Address("service", "echo")

    async def main():
        router = Router()

        async def echo(message, source):
            await router.route(RoutedMessage(message.return_route, (), message.payload))

        router.register(ECHO, echo)
        if sys.argv[1] == "uncapped":  # let accept() run out of descriptors
            settings = TcpSettings(max_connections=10_000, max_connections_per_source=10_000)
        else:
            settings = TcpSettings()
        tcp = TcpTransport(router, settings)
        _, port = await tcp.listen("127.0.0.1", 0, Listener(frozenset({ECHO})))
        print(port, flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


def child_listener(mode: str) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    return child, int(child.stdout.readline())


def ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request())
        header = sock.recv(FRAME_HEADER.size, socket.MSG_WAITALL)
        body = sock.recv(FRAME_HEADER.unpack(header)[1], socket.MSG_WAITALL)
    return bytes(RoutedMessage.decode(body).payload)


def test_out_of_descriptors_the_listener_logs_a_few_lines_and_recovers() -> None:
    child, port = child_listener("uncapped")
    try:
        flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(90)]
        time.sleep(3)  # accept() fails with EMFILE about once a second meanwhile
        for sock in flood:
            sock.close()
        time.sleep(1.5)  # descriptors free up; asyncio retries accept() after a second
        assert ping(port) == b"ping"
    finally:
        child.terminate()
        _, log = child.communicate(timeout=10)
    paused = [line for line in log.splitlines() if "accepting connections paused" in line]
    assert 1 <= len(paused) <= 3, log
    assert "Traceback" not in log
    assert "out of system resource" not in log


def test_with_default_caps_idle_connections_cannot_lock_out_a_new_one() -> None:
    """`ulimit -n 64`: idle connections beyond the default cap (half the descriptors) are
    refused or evicted as they come, so a new connection gets in and is answered (accept()
    may still run out in a burst, before refused sockets are closed: logged a few times)."""
    child, port = child_listener("default")
    try:
        flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(90)]
        time.sleep(0.5)
        assert ping(port) == b"ping"
        for sock in flood:
            sock.close()
    finally:
        child.terminate()
        _, log = child.communicate(timeout=10)
    assert log.count("accepting connections paused") <= 3, log
    assert "Traceback" not in log


@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_at_the_cap_a_source_with_many_connections_gives_one_up_for_another() -> None:
    """Many source addresses, each under the per-source cap, fill the total: a newcomer from
    a source holding at least two fewer evicts the idlest connection of the largest source
    (fair share), even though every connection has been active."""

    async def test(server: Server) -> None:
        counters = server.transport.counters
        crowd = [await server.client("127.0.0.2") for _ in range(4)]
        for streams in crowd:
            assert await answer(streams) == b"ping"
        newcomer = await server.client("127.0.0.3")
        assert await answer(newcomer) == b"ping"
        assert counters.evicted == 1
        assert sum([await closed_by_server(c, 0.3) for c in crowd]) == 1

    run(test, TcpSettings(max_connections=4))


def test_at_the_cap_sources_holding_one_each_are_not_evicted_for_a_new_one() -> None:
    async def test(server: Server) -> None:
        counters = server.transport.counters
        held = [await server.client(f"127.0.0.{n}") for n in (2, 3, 4)]
        for streams in held:
            assert await answer(streams) == b"ping"
        refused = await server.client("127.0.0.5")
        assert await closed_by_server(refused)
        assert counters.refused_over_limit == 1
        for streams in held:
            assert await answer(streams) == b"ping"

    run(test, TcpSettings(max_connections=3))


def test_frames_sent_in_one_pass_of_the_loop_arrive_whole_in_order_and_before_close() -> None:
    """Frames sent while the loop runs are written together (one system call): all of them
    arrive, in order, and closing the connection still writes the ones waiting."""

    async def test(server: Server) -> None:
        reader, _writer = await server.client()
        await until(lambda: len(server.transport.connections()) == 1)
        (connection,) = server.transport.connections()
        for n in range(200):
            await connection.send(RoutedMessage((), (), n.to_bytes(2, "big") * 100))
        await connection.close()
        received = []
        for _ in range(200):
            length = FRAME_HEADER.unpack(await reader.readexactly(FRAME_HEADER.size))[1]
            received.append(bytes(RoutedMessage.decode(await reader.readexactly(length)).payload))
        assert received == [n.to_bytes(2, "big") * 100 for n in range(200)]
        assert await reader.read() == b""

    run(test, TcpSettings())


def test_frames_behind_a_routing_that_waits_are_routed_after_it_in_order() -> None:
    """Frames are routed from the read callback while nothing waits; one whose routing waits
    (a slow worker) goes on in a task, and the frames after it, in the same read or later
    ones, are routed only once it is done, in order (also while the consumer task routes a
    queued frame that waits)."""

    async def main() -> None:
        router = Router()
        hold = Address("service", "hold")
        gates = {name: asyncio.Event() for name in ("w1", "w2", "w3")}
        log: list[str] = []

        async def worker(message: RoutedMessage, source: Source | None) -> None:
            name = bytes(message.payload).decode()
            log.append(f"start {name}")
            if name in gates:
                await gates[name].wait()
            log.append(f"end {name}")

        router.register(hold, worker)
        transport = TcpTransport(router, TcpSettings())
        host, port = await transport.listen("127.0.0.1", 0, Listener(frozenset({hold})))
        try:
            _reader, writer = await asyncio.open_connection(host, port)

            def send(*names: str) -> None:
                messages = (RoutedMessage((hold,), (), n.encode()).encode() for n in names)
                writer.write(b"".join(frame(m) for m in messages))

            async def settled(last: str) -> None:
                await until(lambda: bool(log) and log[-1] == last)
                await asyncio.sleep(0.05)  # nothing else comes
                assert log[-1] == last

            send("a", "w1", "b")  # one read: b waits behind w1
            await settled("start w1")
            send("c")  # a later read: waits too
            await settled("start w1")
            gates["w1"].set()
            await settled("end c")
            send("w2", "w3")  # w2 waits in a task, w3 (queued) in the consumer
            await settled("start w2")
            gates["w2"].set()
            await settled("start w3")
            send("d")  # waits for w3, which the consumer routes
            await settled("start w3")
            gates["w3"].set()
            await settled("end d")
            send("e")  # nothing waits any more: routed at once again
            await settled("end e")
            assert log == [
                *("start a", "end a", "start w1", "end w1", "start b", "end b"),
                *("start c", "end c", "start w2", "end w2", "start w3", "end w3"),
                *("start d", "end d", "start e", "end e"),
            ]
            writer.close()
        finally:
            await transport.close()

    asyncio.run(main())


class _Timed:
    """A service with a handler that needs a task (`asyncio.timeout`) and an inline one."""

    name = "timed"
    oneway = None

    def __init__(self) -> None:
        self.methods = {
            "timed": Method(self.timed, AnyAuthenticated()),
            "inline": Method(self.inline, AnyAuthenticated(), inline=True),
        }

    async def timed(self, arguments: Any, context: RequestContext) -> Any:
        async with asyncio.timeout(5):  # needs a task: RuntimeError in a read callback
            await asyncio.sleep(0.01)
        return arguments

    async def inline(self, arguments: Any, context: RequestContext) -> Any:
        return arguments

    async def maintain(self, now: int) -> None:
        """Nothing."""

    def status(self) -> dict[str, Any]:
        return {}


class _AllowAll:
    def decide(self, request: AccessRequest) -> Decision:
        return Decision(True, ("test",))


def test_service_handlers_that_need_a_task_get_one_and_hold_back_no_request_after_them() -> None:
    """Requests arrive through the read callback: a handler that needs a task of its own
    (asyncio.timeout) runs in one and answers; an inline request behind it in the same read
    is answered in the read callback, before it (docs/protocols.md, "Concurrent requests")."""

    async def main() -> None:
        router = Router()
        host_ = ServiceHost(router, _AllowAll(), clock=lambda: 0, callers=lambda _: LocalCaller())
        host_.add(_Timed())
        service = Address("service", "timed")
        transport = TcpTransport(router, TcpSettings())
        host, port = await transport.listen("127.0.0.1", 0, Listener(frozenset({service})))
        try:
            reader, writer = await asyncio.open_connection(host, port)
            requests = [(1, "timed", "a"), (2, "inline", "b"), (3, "timed", "c")]
            writer.write(
                b"".join(
                    frame(RoutedMessage((service,), (), encode_request(*r)).encode())
                    for r in requests
                )
            )
            answers = []
            for _ in requests:
                length = FRAME_HEADER.unpack(await reader.readexactly(FRAME_HEADER.size))[1]
                response = RoutedMessage.decode(await reader.readexactly(length)).payload
                request_id, whole = decode_response(response)
                answers.append((request_id, result_of(whole)))
            assert answers[0] == (2, "b")  # the inline one, while the others wait in their tasks
            assert sorted(answers[1:]) == [(1, "a"), (3, "c")]
            writer.close()
        finally:
            await transport.close()

    asyncio.run(main())


def test_answers_to_the_frames_of_one_read_arrive_whole_and_in_order() -> None:
    """Many requests in one write: each is answered (the answers routed from the read callback
    are written together when it returns), in order."""

    async def test(server: Server) -> None:
        reader, writer = await server.client()
        payloads = [n.to_bytes(2, "big") * 50 for n in range(100)]
        writer.write(b"".join(frame(RoutedMessage((ECHO,), (), p).encode()) for p in payloads))
        received = []
        for _ in payloads:
            length = FRAME_HEADER.unpack(await reader.readexactly(FRAME_HEADER.size))[1]
            received.append(bytes(RoutedMessage.decode(await reader.readexactly(length)).payload))
        assert received == payloads

    run(test, TcpSettings())


def test_a_peer_that_does_not_read_is_dropped_after_the_write_timeout() -> None:
    """Sends wait while the socket's write buffer is over its limit; a peer that reads
    nothing for `write_timeout` is dropped (RoutingError to the sender, counted)."""

    async def test(server: Server) -> None:
        _reader, _writer = await server.client()  # never reads
        await until(lambda: len(server.transport.connections()) == 1)
        (connection,) = server.transport.connections()
        chunk = bytes(100_000)
        with pytest.raises(RoutingError, match="is not reading"):
            for _ in range(1000):  # 100 MB: far past the kernel's buffers
                await connection.send(RoutedMessage((), (), chunk))
        assert server.transport.counters.closed_not_reading == 1

    run(test, TcpSettings(write_buffer=65536, write_timeout=0.3))


def test_frames_relayed_from_a_read_callback_to_a_peer_that_does_not_read() -> None:
    """Frames routed from one connection's read callback to another connection whose peer
    reads nothing: the routing waits for the write buffer (in a task), the silent peer is
    dropped after the write timeout, and the sending connection still works."""

    async def main() -> None:
        router = Router()

        async def echo(message: RoutedMessage, source: Source | None) -> None:
            await router.route(RoutedMessage(message.return_route, (), message.payload))

        router.register(ECHO, echo)
        settings = TcpSettings(write_buffer=65536, write_timeout=0.3)
        transport = TcpTransport(router, settings)
        everyone = Listener(frozenset({ECHO}), frozenset({"worker"}))
        host, port = await transport.listen("127.0.0.1", 0, everyone)
        try:
            silent = await asyncio.open_connection(host, port)  # never reads
            await until(lambda: len(transport.connections()) == 1)
            (to_silent,) = transport.connections()
            sender = await asyncio.open_connection(host, port)
            chunk = bytes(100_000)
            for _ in range(300):  # 30 MB: far past the kernel's buffers
                sender[1].write(frame(RoutedMessage((to_silent.address,), (), chunk).encode()))
            await until(lambda: transport.counters.closed_not_reading == 1, timeout=10)
            await until(lambda: to_silent not in transport.connections())
            assert await asyncio.wait_for(answer(sender), 10) == b"ping"
            silent[1].close()
        finally:
            await transport.close()

    asyncio.run(main())


def test_settings_come_from_the_environment() -> None:
    environ = {"TROTH_TCP_IDLE_TIMEOUT": "2.5", "TROTH_TCP_MAX_CONNECTIONS": "10", "HOME": "/x"}
    settings = TcpSettings.from_environment(environ)
    assert (settings.idle_timeout, settings.max_connections) == (2.5, 10)
    assert settings.frame_timeout == TcpSettings().frame_timeout
    assert TcpSettings.from_environment({}) == TcpSettings()


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("TROTH_TCP_IDLE_TIMOUT", "2", "no such setting"),  # a typo is refused, not ignored
        ("TROTH_TCP_MAX_CONNECTIONS", "2.5", "not a number (int)"),
        ("TROTH_TCP_IDLE_TIMEOUT", "soon", "not a number (float)"),
        ("TROTH_TCP_IDLE_TIMEOUT", "-1", "idle_timeout must be positive"),
    ],
)
def test_bad_settings_in_the_environment_are_refused(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TcpSettings.from_environment({variable: value})
    assert says in str(caught.value)
    assert variable in str(caught.value) or "TROTH_TCP_" in str(caught.value)


def test_a_transport_without_settings_takes_them_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TROTH_TCP_FIRST_FRAME_TIMEOUT", "7")
    assert TcpTransport(Router()).settings.first_frame_timeout == 7.0
