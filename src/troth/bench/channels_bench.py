"""Channel benchmarks, each side by side with its floor or peer in the same run:

- Noise XX handshake, both sides in memory: vs its X25519 floor and vs PyPI `noiseprotocol`.
- Channel establishment over loopback TCP (new TCP connection, Noise XX, both identities'
  histories and channel-key attestations, both credential chains, policy): at first contact
  (every signature verified) vs Python `ssl` mutual TLS 1.3 over loopback (new connection,
  P-256 certificates both ways); and reconnecting (signatures verified before kept) vs the
  same TLS resuming its session.
- Bulk 64 KiB messages over loopback TCP, one hop and through a relay, to a node running in
  its own process (as nodes do): vs Python `ssl` TLS 1.3 bulk (sender and receiver threads,
  preallocated buffers, recv_into).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from troth.bench.first_contact import forget_verified
from troth.bench.harness import Case, Measurement, measure_pair
from troth.bench.nodes import bench_ticket, member_nodes
from troth.bench.noise_peer import noiseprotocol_available, noiseprotocol_xx_handshakes
from troth.bench.tls_peer import mutual_tls_handshakes, temporary_pki, tls_bulk_throughput
from troth.channel.noise import HandshakeState
from troth.crypto.bench_floor import x25519_xx_floor
from troth.node import init_node, open_node
from troth.node.daemon import control
from troth.node.runtime import ECHO, SINK, NodeRuntime
from troth.node.services import call
from troth.routing import Route, parse_route
from troth.vault.ephemeral import EphemeralKey

_US = 1e6
_PROTOCOL = "Noise_XX_25519_AESGCM_SHA256"
_MESSAGE = 65536


def _noise(quick: bool) -> list[Measurement]:
    n, rounds = (100, 3) if quick else (500, 7)
    static_i, static_r = EphemeralKey(), EphemeralKey()  # static keys exist before a handshake

    def ours(k: int) -> None:
        for _ in range(k):
            i = HandshakeState(_PROTOCOL, initiator=True, prologue=b"", static=static_i)
            r = HandshakeState(_PROTOCOL, initiator=False, prologue=b"", static=static_r)
            r.read_message(i.write_message(b""))
            i.read_message(r.write_message(b""))
            r.read_message(i.write_message(b""))
            i.split()
            r.split()

    value, floor = measure_pair(ours, x25519_xx_floor(), n=n, rounds=rounds)
    results = [
        Measurement(
            "noise.xx.handshake",
            value * _US,
            "us/handshake",
            "floor: 2 X25519 keygens + 6 key agreements",
            floor * _US,
            value / floor,
        )
    ]
    if noiseprotocol_available():
        value, peer = measure_pair(ours, noiseprotocol_xx_handshakes(_PROTOCOL), n=n, rounds=rounds)
        results.append(
            Measurement(
                "noise.xx.handshake.peer",
                value * _US,
                "us/handshake",
                "peer: PyPI noiseprotocol XX, both sides in memory",
                peer * _US,
                value / peer,
            )
        )
    return results


@contextlib.contextmanager
def _two_members(runner: asyncio.Runner) -> Iterator[tuple[list[NodeRuntime], Route]]:
    """A hub hosting an authority and two members of it, a and b, all `NodeRuntime`s in
    `runner` (hub, a, b), and the route from a to b; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="troth-bench-") as tmp:
        home = Path(tmp)
        for name in ("hub", "a", "b"):
            init_node(name, home=home)
        nodes = [open_node(name, home=home) for name in ("hub", "a", "b")]
        authority = nodes[0].create_authority("hub", now=int(time.time()))
        runtimes = [NodeRuntime(node) for node in nodes]
        hub, a, b = runtimes
        try:
            runner.run(hub.start(("127.0.0.1", 0)))
            runner.run(a.start())
            runner.run(b.start(("127.0.0.1", 0)))
            address = "/tcp/{}:{}".format(*(hub.listening or ("", 0)))
            runner.run(a.enroll(bench_ticket(authority, address), "a"))
            runner.run(b.enroll(bench_ticket(authority, address), "b"))
            yield runtimes, parse_route("/tcp/{}:{}".format(*(b.listening or ("", 0))))
        finally:
            for runtime in runtimes:
                runner.run(runtime.stop())
            for node in nodes:
                node.close()


def _openings(
    runner: asyncio.Runner, runtimes: list[NodeRuntime], route: Route, *, first_contact: bool
) -> Callable[[int], float]:
    """Seconds per channel a (`runtimes[1]`) opens to `route`, each over a new TCP connection,
    timed from connect to established (as the TLS side; teardown not timed). `first_contact`:
    every node's verification caches are emptied before each (`forget_verified`, not timed),
    so each verifies all the signatures two nodes that never met verify."""
    a = runtimes[1]

    async def establish(k: int) -> float:
        elapsed = 0.0
        for _ in range(k):
            if first_contact:
                for runtime in runtimes:
                    forget_verified(runtime)
            start = time.perf_counter()
            end = await a.channels.open(route)
            elapsed += time.perf_counter() - start
            await end.close()
            connection = a.tcp.connection(end.peer_route[0])
            if connection is not None:
                await connection.close()  # the next one starts from a new TCP connection
        return elapsed / k

    return lambda k: float(runner.run(establish(k)))


def _establish(quick: bool) -> list[Measurement]:
    """Two rows, each like for like (review 62n): a first contact (troth's caches emptied)
    against a full TLS handshake, and a reconnection (troth's caches kept) against a TLS
    session resumed."""
    n, rounds = (20, 3) if quick else (100, 5)
    with asyncio.Runner() as runner, temporary_pki() as pki, _two_members(runner) as members:
        runtimes, route = members

        def tls(k: int) -> float:  # its own timing: context loading and threads excluded
            return mutual_tls_handshakes(pki, k)

        def tls_resumed(k: int) -> float:
            return mutual_tls_handshakes(pki, k, resumed=True)

        first = _openings(runner, runtimes, route, first_contact=True)
        value, peer = measure_pair(first, tls, n=n, rounds=rounds)
        again = _openings(runner, runtimes, route, first_contact=False)
        kept, resumed = measure_pair(again, tls_resumed, n=n, rounds=rounds)
    includes = "TCP connect, Noise XX, 2 histories, 2 key attestations, 2 credential chains, policy"
    return [
        _establish_row(
            "channel.establish.tcp",
            value,
            peer,
            "peer: Python ssl mutual TLS 1.3 handshake over loopback",
            {
                "includes": f"{includes}; first contact: every signature verified (every "
                "node's verification caches emptied before each, not timed)",
                "peer": "full handshakes: certificates sent, signed and verified every time, "
                "no session resumed",
            },
        ),
        _establish_row(
            "channel.establish.tcp.resumed",
            kept,
            resumed,
            "peer: Python ssl mutual TLS 1.3 handshake resuming a session over loopback",
            {
                "includes": f"{includes}; the same two nodes again: history, attestation and "
                "chain signatures verified before are kept (their time and state checks run "
                "every time)",
                "peer": "every handshake resumes the first session (PSK with (EC)DHE): no "
                "certificate sent, signed or verified",
            },
        ),
    ]


def _establish_row(
    name: str, value: float, peer: float, baseline: str, extra: dict[str, Any]
) -> Measurement:
    ratio = value / peer
    return Measurement(
        name, value * _US, "us/channel", baseline, peer * _US, ratio, "<= 1.0x", ratio <= 1.0, extra
    )


def _bulk(quick: bool) -> list[Measurement]:
    count, rounds = (300, 2) if quick else (2000, 10)
    payload = os.urandom(_MESSAGE)
    results: list[Measurement] = []
    with (
        asyncio.Runner() as runner,
        tempfile.TemporaryDirectory(prefix="troth-bench-") as tmp,
        temporary_pki() as pki,
        member_nodes(runner, Path(tmp), b_attributes={"troth.relay": "b"}) as nodes,
    ):
        a = nodes.a
        control(nodes.home, "b", "relay.create", {"name": "b", "at": nodes.hub})
        routes = {"one hop": parse_route(nodes.b), "relay": parse_route(f"{nodes.hub}/relay/b")}

        sent = [0]

        def sender(route: Any) -> Callable[[int], None]:
            async def send(k: int) -> None:
                for _ in range(k):
                    await a.send_oneway(route, SINK, payload)
                end = await a.channel_to(route)
                await call(a.router, (end.enc, ECHO), "echo", "sync")  # all arrived
                sent[0] += k

            return lambda k: runner.run(send(k))

        def sunk() -> int:
            """The messages b's sink has taken: a message lost on the way is no throughput."""
            return int(control(nodes.home, "b", "status", {})["sunk"]["messages"])

        def tls(k: int) -> float:  # its own timing: the handshake and threads excluded
            return _MESSAGE / tls_bulk_throughput(pki, _MESSAGE, k * _MESSAGE)

        for label, route in routes.items():
            sent[0], before = 0, sunk()
            per_message, peer = measure_pair(sender(route), tls, n=count, rounds=rounds)
            if sunk() - before != sent[0]:
                raise ConnectionError(f"b's sink took {sunk() - before} of {sent[0]} messages")
            value, peer_value = _MESSAGE / per_message / 1e9, _MESSAGE / peer / 1e9
            ratio = value / peer_value
            limit = 1.0 if label == "one hop" else 0.6
            results.append(
                Measurement(
                    f"channel.bulk.{label.replace(' ', '-')}",
                    value,
                    "GB/s",
                    "peer: Python ssl TLS 1.3 bulk over loopback (threads, recv_into)",
                    peer_value,
                    ratio,
                    f">= {limit}x",
                    ratio >= limit,
                    {"message": "64 KiB", "receiver": "a node in its own process"},
                )
            )
    return results


CASES = [
    Case("noise.handshake", _noise),
    Case("channel.establish", _establish),
    Case("channel.bulk", _bulk),
]
