"""Hostile load against real node processes (tests/test_node_load.py): nodes started through
the CLI with limits from the environment and a descriptor limit of their own, their memory
(RSS), a legitimate echo timed from the client, and the attackers' raw sockets, each bound to
a loopback address of its own (Linux routes all of 127.0.0.0/8 to the loopback interface), which
the nodes started here count as a source of its own (tests.support.sources: the node's rule
counts 127.0.0.0/8 as one), so that "per source address" limits meet several sources."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.channels import channel_reply
from tests.support.cli import run, run_json
from tests.support.parties import make_channel_party
from tests.support.sources import node_environment
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust
from troth.cli.main import cli as troth_cli
from troth.node.channels import ChannelEnd, ChannelManager
from troth.node.services import call
from troth.routing import Address, RoutedMessage, Router, parse_route
from troth.transport import FrameReader, frame
from troth.vault import SoftwareVault

CHANNELS = Address("service", "channels")
AUTHORITY = Address("service", "authority")
LEGITIMATE_TEXT = "are you there?"


def attacker_addresses(count: int, subnet: int = 1) -> list[str]:
    """`count` loopback addresses of their own (127.0.<subnet>.1, ...): attackers' sources."""
    return [f"127.0.{subnet}.{n}" for n in range(1, count + 1)]


@dataclass
class NodeProcess:
    """A node running in its own process (`troth node start`)."""

    name: str
    pid: int
    listening: str | None
    log: Path

    @property
    def address(self) -> str:
        """The route to its listener, `/tcp/HOST:PORT`."""
        return f"/tcp/{self.listening}"

    @property
    def host_port(self) -> tuple[str, int]:
        """Where its listener is."""
        host, _, port = (self.listening or "").rpartition(":")
        return host, int(port)

    def rss(self) -> int:
        """Its resident memory now, in bytes (VmRSS in /proc/PID/status)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmRSS for pid {self.pid}")

    def log_size(self) -> int:
        """The size of its log file now, in bytes."""
        return self.log.stat().st_size


@dataclass
class Nodes:
    """The nodes a test started; `stop_all` stops them (the fixture does)."""

    home: Path
    started: list[str] = field(default_factory=list)

    def start(
        self,
        name: str,
        *,
        listen: bool = False,
        environment: dict[str, str] | None = None,
        max_files: int | None = None,
        loopback_apart: bool = True,
    ) -> NodeProcess:
        """`troth node start NAME` in a process of its own, with extra environment variables
        (the node's limits: TROTH_TCP_*, TROTH_CHANNELS_*) and a descriptor limit (`ulimit -n`)
        that the node process inherits; the node names each loopback address a source of its own
        (`node_environment`: the attackers' sockets stand for remote hosts) unless
        `loopback_apart` is False (the node's own rule: 127.0.0.0/8 one source)."""
        # run in this process, the environment and descriptor limit set for it and so for the
        # node process it spawns (72f ci: a `troth` process of its own for each start was an
        # interpreter's start and imports more, ~1 s of the serial load run's each)
        command = ["node", "start", name, "--json"]
        if listen:
            command += ["--tcp-listen", "127.0.0.1:0"]
        env = (node_environment if loopback_apart else dict)({**os.environ, **(environment or {})})
        with descriptors_limited(max_files):
            result = CliRunner().invoke(troth_cli, command, env=env, catch_exceptions=False)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        self.started.append(name)
        status = json.loads(result.stdout)
        log = self.home / "nodes" / name / "node.log"
        return NodeProcess(name, int(status["pid"]), status.get("listening"), log)

    def stop_all(self) -> None:
        """Stop every node this test started."""
        for name in self.started:
            run("node", "stop", name)
        self.started.clear()


NOFILE = resource.RLIMIT_NOFILE


@contextlib.contextmanager
def descriptors_limited(count: int | None) -> Iterator[None]:
    """`ulimit -n COUNT` for this process meanwhile (what it spawns keeps it), then the limit it
    had (None: as it is)."""
    before = resource.getrlimit(NOFILE)
    if count is not None:
        limit_descriptors(count)
    try:
        yield
    finally:
        resource.setrlimit(NOFILE, before)


def limit_descriptors(count: int) -> None:
    """`ulimit -n COUNT` for this process (the soft limit, at most the hard one)."""
    _soft, hard = resource.getrlimit(NOFILE)
    resource.setrlimit(
        NOFILE, (count if hard == resource.RLIM_INFINITY else min(count, hard), hard)
    )


@dataclass
class Network:
    """A hub (hosts an authority, listens) and `a`, a member of it that runs without a
    listener: the legitimate peer."""

    hub: NodeProcess
    a: NodeProcess


def hub_and_member(
    nodes: Nodes,
    *,
    environment: dict[str, str] | None = None,
    max_files: int | None = None,
    member_attributes: tuple[str, ...] = ("agents.team=x",),
) -> Network:
    """Start the hub (with `environment` and `max_files`) and enroll and start `a`."""
    run("authority", "create", "hub")
    hub = nodes.start("hub", listen=True, environment=environment, max_files=max_files)
    a = enroll_and_start(nodes, "a", member_attributes)
    return Network(hub, a)


def enroll_and_start(nodes: Nodes, name: str, attributes: tuple[str, ...]) -> NodeProcess:
    """Create node `name`, enroll it with the hub's authority (`--attr` each of
    `attributes`), and start it (no listener)."""
    run("node", "create", name)
    options = [word for attribute in attributes for word in ("--attr", attribute)]
    ticket = run_json("authority", "ticket", "create", "--authority", "hub", *options)["ticket"]
    run("enroll", ticket, "--as", name, "--node", name)
    return nodes.start(name)


def timed_echo(route: str, sender: str = "a") -> float:
    """The legitimate peer: `troth message send --from SENDER --to ROUTE` (a new secure
    channel when SENDER has none open on ROUTE, then an echo request); the seconds it took,
    measured by its client. The answer must be the text sent; nothing is retried."""
    start = time.perf_counter()
    reply = run_json("message", "send", route, LEGITIMATE_TEXT, "--node", sender)
    elapsed = time.perf_counter() - start
    assert reply == {"reply": LEGITIMATE_TEXT}
    return elapsed


def raise_descriptor_limit(needed: int) -> None:
    """Let this process open `needed` descriptors (up to its hard limit)."""
    soft, hard = resource.getrlimit(NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(NOFILE, (wanted, hard))


def connect(source: str, node: NodeProcess) -> socket.socket:
    """A TCP connection to the node's listener from loopback address `source`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(10)
        sock.bind((source, 0))
        sock.connect(node.host_port)
    except BaseException:
        sock.close()
        raise
    return sock


def garbage_frame(size: int) -> bytes:
    """One complete, well-framed TCP frame whose body is random bytes (no routed message)."""
    return frame(os.urandom(size))


def message_1(reply_to: str) -> bytes:
    """A TCP frame carrying a fresh, valid handshake message 1 to the node's channel listener
    (a packet of one 33-byte frame: type 1, an ephemeral X25519 public key), answers to be
    routed back to a channel end's reply address made of `reply_to` (`channel_reply`: the
    node at the other end itself, its source's whole limits; review 72r, room 1)."""
    packet = b"\x00\x21\x01" + os.urandom(32)
    return frame(RoutedMessage((CHANNELS,), (channel_reply(reply_to),), packet).encode())


def _readable(sockets: Iterable[socket.socket], timeout: float) -> list[socket.socket]:
    """The sockets with bytes (or EOF) to read, waiting up to `timeout` s (poll, not select():
    a test process with many files open has descriptors past select()'s 1024)."""
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        return [key.fileobj for key, _ in selector.select(timeout)]  # type: ignore[misc]


def closed_by_node(
    sockets: list[socket.socket], timeout: float, at_least: int | None = None
) -> int:
    """Wait up to `timeout` s for the node to close these (silent) sockets, or only until it
    closed `at_least` of them (a test asserting `>= at_least` waits no longer: 75a citime);
    how many it did."""
    remaining = set(sockets)
    enough = len(sockets) if at_least is None else at_least
    deadline = time.monotonic() + timeout
    while len(sockets) - len(remaining) < enough and time.monotonic() < deadline:
        for sock in _readable(remaining, 0.2):
            try:
                if sock.recv(1 << 16, socket.MSG_DONTWAIT) == b"":
                    remaining.discard(sock)
            except ConnectionError:
                remaining.discard(sock)
            except BlockingIOError:
                pass
    return len(sockets) - len(remaining)


def close_all(sockets: list[socket.socket]) -> None:
    """Close the attackers' sockets."""
    for sock in sockets:
        sock.close()
    sockets.clear()


def paced(rate: float, duration: float, send: Callable[[int], None]) -> Iterator[int]:
    """Call `send(n)` `rate` times a second for `duration` s (sleeping between calls, so the
    attack does not saturate the machine itself); yields after each call."""
    start = time.monotonic()
    n = 0
    while (now := time.monotonic()) - start < duration:
        due = start + n / rate
        if due > now:
            time.sleep(due - now)
        send(n)
        n += 1
        yield n


class HandshakeFlood:
    """Handshake message 1 floods from some source addresses (`connections` TCP connections
    each), in a thread of its own: a burst, then a paced stream until stopped. Answers (message
    2 for the handshakes the node took up) are read and counted."""

    def __init__(self, node: NodeProcess, sources: list[str], connections: int = 4) -> None:
        self.sockets = [connect(s, node) for s in sources for _ in range(connections)]
        self.readers = {sock: FrameReader() for sock in self.sockets}
        self.sent = 0
        self.answered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, n: int) -> None:
        """Send message 1 number `n` (round robin over the connections), read answers."""
        self.sockets[n % len(self.sockets)].sendall(message_1(f"flood-{n}"))
        self.sent += 1
        self._read()

    def burst(self, count: int) -> None:
        """`count` messages 1 at once."""
        for _ in range(count):
            self.send(self.sent)

    def start(self, rate: float, duration: float) -> None:
        """Keep sending `rate` messages 1 a second for up to `duration` s (until `stop`)."""

        def flood() -> None:
            for _ in paced(rate, duration, lambda _n: self.send(self.sent)):
                if self._stop.is_set():
                    return

        self._thread = threading.Thread(target=flood, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the paced stream and close the connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._read()
        close_all(self.sockets)

    def _read(self) -> None:
        for sock in _readable(self.sockets, 0):
            try:
                data = sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except (BlockingIOError, ConnectionError):
                continue
            self.answered += len(self.readers[sock].feed(data, time.monotonic()))


class Stranger:
    """An identity of its own, not a member of anything, that opens secure channels to a node
    from this process (a node hosting an authority admits any authenticated identity: to
    enroll). Its channels share one router and one TCP connection per node."""

    def __init__(self, router: Router) -> None:
        party = make_channel_party(SoftwareVault(), now=int(time.time()) - 60)
        self.router = router
        self.manager = ChannelManager(
            router,
            me=party.me,
            trust=lambda: ChannelTrust(policy=AnyAuthenticatedIdentity()),
            services=frozenset,
        )

    async def open(self, node: NodeProcess) -> ChannelEnd:
        """A new secure channel to the node."""
        return await self.manager.open(parse_route(node.address))

    async def hold_incomplete(self, end: ChannelEnd, size: int) -> None:
        """Send a `size`-byte message on `end` but its last packet: the node holds the rest
        until its reassembly timeout."""
        end.channel.send(bytes(size))
        packets = end.channel.outgoing()
        for packet in packets[:-1]:
            await self.router.route(RoutedMessage(end.peer_route, (end.dec,), packet))

    async def still_open(self, end: ChannelEnd) -> bool:
        """Whether the node still serves `end` after all that was sent before: a request to
        its authority (open to any authenticated identity) is answered, or the node closes
        the channel (its CLOSE comes first: the node reads a connection in order)."""
        request = asyncio.ensure_future(call(self.router, (end.enc, AUTHORITY), "feed", [0]))
        try:
            async with asyncio.timeout(10):
                while not request.done():
                    if end.channel.closed:
                        return False
                    await asyncio.sleep(0.01)
        finally:
            request.cancel()
        return not end.channel.closed and request.exception() is None


def junk_to(route: tuple[Address, ...]) -> bytes:
    """A TCP frame carrying a 41-byte packet of junk (one 39-byte "transport" frame that
    authenticates under no key) along `route`."""
    packet = b"\x00\x27\x02" + os.urandom(38)
    return frame(RoutedMessage(route, (), packet).encode())


MiB = 1 << 20
LIVENESS = 1.0  # seconds: the requirement for a legitimate channel and echo


@pytest.fixture(name="nodes")
def nodes_fixture(troth_home: Path) -> Iterator[Nodes]:
    """The nodes a load test starts, all stopped after it (import this as `nodes_fixture`
    and ask for `nodes`)."""
    started = Nodes(troth_home)
    try:
        yield started
    finally:
        started.stop_all()


def echo_route(hub_address: str) -> str:
    return f"{hub_address}/service/echo"
