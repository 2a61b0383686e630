"""Service round trips over one open secure channel, side by side with the same
request/response over one asyncio mutual-TLS 1.3 stream (`tls_rpc_peer`), in the same run.

troth: node `b` runs in its own process (as nodes do) and serves `echo`; node `a` (in this
process, a member of the same authority) opens one channel to b and calls `echo` with a
64-byte payload from 1 or 100 concurrent callers. TLS: an echo server in its own process, one
connection, the same payload and callers. Each side times only its calls (setup, handshakes
and processes excluded); the rate is calls per second over the batch, and the p99 latency of
single calls is taken at 100 concurrent callers.

`service.rtt.N.ceiling` times, beside the same TLS peer, a bare encrypted RPC doing only the
least of troth's per-request work (`bare_rpc`: an AEAD seal and open per message, CBOR, length
framing): how far any pure-Python peer gets against TLS, whose framing and crypto run in C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from troth.bench.bare_rpc import BareRpcClient, bare_rpc_server
from troth.bench.harness import Batch, Case, Measurement, measure_pair
from troth.bench.nodes import member_nodes
from troth.bench.tls_peer import temporary_pki
from troth.bench.tls_rpc_peer import TlsRpcClient, tls_rpc_server
from troth.node.runtime import ECHO
from troth.node.services import call
from troth.routing import parse_route

__all__ = ["CASES"]

PAYLOAD_SIZE = 64
CONCURRENCY = (1, 100)


@dataclass
class _Calls:
    """`n` calls of `one` from `callers` concurrent tasks; latencies of single calls kept."""

    one: Callable[[], Awaitable[None]]
    callers: int

    async def run(self, n: int, latencies: list[float] | None = None) -> float:
        """Seconds per call over the batch (all callers)."""
        share, extra = divmod(n, self.callers)

        async def caller(count: int) -> None:
            for _ in range(count):
                start = time.perf_counter()
                await self.one()
                if latencies is not None:
                    latencies.append(time.perf_counter() - start)

        counts = [share + (1 if i < extra else 0) for i in range(self.callers)]
        start = time.perf_counter()
        await asyncio.gather(*(caller(c) for c in counts if c))
        return (time.perf_counter() - start) / n


@contextlib.contextmanager
def _echo_caller(runner: asyncio.Runner, home: Path) -> Iterator[Callable[[], Awaitable[None]]]:
    """One echo call from a (in this process) to b (a node in its own process) over one open
    channel."""
    with member_nodes(runner, home) as nodes:
        end = runner.run(nodes.a.channel_to(parse_route(nodes.b)))
        payload = os.urandom(PAYLOAD_SIZE)

        async def echo() -> None:
            if await call(nodes.a.router, (end.enc, ECHO), "echo", payload) != payload:
                raise ConnectionError("echo answered something else")

        yield echo


def _p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98]


def _rtt(quick: bool) -> list[Measurement]:
    rounds = 2 if quick else 5
    calls = {1: 300 if quick else 2000, 100: 1000 if quick else 10000}
    results: list[Measurement] = []
    key = os.urandom(32)
    with (
        asyncio.Runner() as runner,
        tempfile.TemporaryDirectory(prefix="troth-bench-") as tmp,
        temporary_pki() as pki,
        _echo_caller(runner, Path(tmp)) as troth_echo,
        tls_rpc_server(pki) as port,
        bare_rpc_server(key) as bare_port,
    ):
        client = runner.run(TlsRpcClient.connect(pki, port))
        bare = runner.run(BareRpcClient.connect(key, bare_port))
        payload = os.urandom(PAYLOAD_SIZE)

        def echoing(call: Callable[[bytes], Awaitable[bytes]]) -> Callable[[], Awaitable[None]]:
            async def echo() -> None:
                if await call(payload) != payload:
                    raise ConnectionError("echo answered something else")

            return echo

        try:
            for callers in CONCURRENCY:
                ours, peer = _Calls(troth_echo, callers), _Calls(echoing(client.call), callers)
                least = _Calls(echoing(bare.call), callers)

                def batch(side: _Calls) -> Batch:
                    return lambda count: runner.run(side.run(count))

                n = calls[callers]
                value, peer_value = measure_pair(batch(ours), batch(peer), n=n, rounds=rounds)
                extra: dict[str, Any] = {"payload": f"{PAYLOAD_SIZE} bytes", "callers": callers}
                if callers > 1:  # latencies of single calls, one more batch each, interleaved
                    mine: list[float] = []
                    theirs: list[float] = []
                    runner.run(ours.run(n, mine))
                    runner.run(peer.run(n, theirs))
                    extra["p99"] = f"{_p99(mine) * 1e3:.2f} ms"
                    extra["peer p99"] = f"{_p99(theirs) * 1e3:.2f} ms"
                rate, peer_rate = 1 / value, 1 / peer_value
                ratio = rate / peer_rate
                results.append(
                    Measurement(
                        f"service.rtt.{callers}",
                        rate,
                        "calls/s",
                        _TLS_PEER,
                        peer_rate,
                        ratio,
                        ">= 1.0x",
                        ratio >= 1.0,
                        extra,
                    )
                )
                value, peer_value = measure_pair(batch(least), batch(peer), n=n, rounds=rounds)
                results.append(
                    Measurement(
                        f"service.rtt.{callers}.ceiling",
                        1 / value,
                        "calls/s",
                        _TLS_PEER,
                        1 / peer_value,
                        peer_value / value,
                        extra={
                            "callers": callers,
                            "subject": "bare encrypted RPC in Python (troth.bench.bare_rpc): "
                            "an AEAD seal and open per message, CBOR, length framing, nothing else",
                        },
                    )
                )
        finally:
            bare.close()
            runner.run(client.close())
    return results


_TLS_PEER = "peer: asyncio mutual TLS 1.3, length-prefixed echo RPC, one connection"


CASES = [Case("service.rtt", _rtt)]
