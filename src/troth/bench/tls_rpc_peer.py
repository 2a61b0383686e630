"""The peer of the service round-trip benchmark: the same request/response over asyncio
mutual-TLS 1.3 streams (stdlib `ssl`, the contexts of `tls_peer`), a minimal length-prefixed
RPC with the same concurrency over one connection.

    frame = length of the body (4 bytes, big-endian) || request id (4 bytes) || body

The server (`run_server(CA, CERT, KEY)`, in a process of its own as a troth node is) answers
every request with its body (echo) in the order they arrive, and prints its port once
listening; it stops when its standard input closes. The client matches answers to waiting
callers by request id, so any number of callers share the one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import sys
from pathlib import Path
from typing import Final

from troth.bench.peer_process import serving
from troth.bench.tls_peer import client_context, server_context
from troth.crypto.bench_tls import TlsPki

__all__ = ["TlsRpcClient", "run_server", "tls_rpc_server"]

HEADER: Final = struct.Struct(">II")
_HOST = "127.0.0.1"
_SERVER_NAME = "localhost"
_READY_TIMEOUT = 15.0


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer each request with its body, in order, until the client goes."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            header = await reader.readexactly(HEADER.size)
            length, _ = HEADER.unpack(header)
            writer.write(header + await reader.readexactly(length))
            await writer.drain()
    writer.close()


async def _serve(pki: TlsPki) -> None:
    server = await asyncio.start_server(_echo, _HOST, 0, ssl=server_context(pki))
    sys.stdout.write(f"{server.sockets[0].getsockname()[1]}\n")  # the port, for the benchmark
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    server.close()


def tls_rpc_server(pki: TlsPki) -> contextlib.AbstractContextManager[int]:
    """The echo server in a process of its own; yields its port, stops it on exit."""
    program = (
        "import sys; from troth.bench.tls_rpc_peer import run_server; run_server(*sys.argv[1:])"
    )
    # not -m: the package imports this module first; -P: not from the working directory
    # either, which `-c` puts first on the module path (review 53f, node home 4)
    command = [sys.executable, "-P", "-c", program]
    command += [str(pki.ca_cert), str(pki.server_cert), str(pki.server_key)]
    return serving(command, "TLS RPC server")


class TlsRpcClient:
    """One mutual-TLS 1.3 connection to the echo server; `call` from any number of tasks."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[bytes]] = {}
        self._receiver = asyncio.get_running_loop().create_task(self._receive())

    @classmethod
    async def connect(cls, pki: TlsPki, port: int) -> TlsRpcClient:
        """Connect and complete the handshake (certificates checked both ways)."""
        reader, writer = await asyncio.open_connection(
            _HOST, port, ssl=client_context(pki), server_hostname=_SERVER_NAME
        )
        return cls(reader, writer)

    async def call(self, body: bytes) -> bytes:
        """Send a request; its answer."""
        request = next(self._ids) & 0xFFFFFFFF
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[request] = answer
        self._writer.write(HEADER.pack(len(body), request) + body)
        await self._writer.drain()
        return await answer

    async def _receive(self) -> None:
        reader, waiting = self._reader, self._waiting
        try:
            while True:
                length, request = HEADER.unpack(await reader.readexactly(HEADER.size))
                body = await reader.readexactly(length)
                answer = waiting.pop(request, None)
                if answer is not None and not answer.done():
                    answer.set_result(body)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            for answer in waiting.values():
                if not answer.done():
                    answer.set_exception(ConnectionError(f"the TLS RPC server went: {exc}"))

    async def close(self) -> None:
        """Close the connection."""
        self._receiver.cancel()
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


def run_server(ca: str, cert: str, key: str) -> None:
    """Serve echo over mutual TLS 1.3 (the CA's clients only) until standard input closes;
    the port is printed first."""
    paths = Path(ca), Path(cert), Path(key)
    asyncio.run(_serve(TlsPki(*paths, paths[1], paths[2])))  # the client paths are not used
