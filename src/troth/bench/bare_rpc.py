"""The ceiling of the service round-trip benchmark: the least of troth's per-request work that
any pure-Python design does, over the same loopback, timed beside the same TLS peer
(`tls_rpc_peer`). `service.rtt.N.ceiling` is how far a Python peer doing only this gets.

    frame = length of the box (4 bytes, big-endian) || box
    box   = AES-256-GCM(the direction's key, nonce = 4 zero bytes || counter (8 bytes, big-endian),
                        CBOR [request id, "echo", payload])    (answer: [id, "ok", payload])

One AEAD seal and one open per message each way (a key and a counter per direction, as troth's
Noise transport has, with its default cipher), CBOR encoding and decoding, length framing, an
asyncio `Protocol` on each side: no routing, no access decision, no replay window, no service
dispatch, no fragmenting. The
server (`run_server(KEY_HEX)`, in a process of its own as a troth node is) answers each request
in its read callback and prints its port once listening; it stops when its standard input
closes. The client matches answers to waiting callers by request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from abc import ABC, abstractmethod
from typing import Any, Final

import cbor2

from troth.bench.peer_process import serving
from troth.crypto.aead import Aead, AeadAlgorithm

__all__ = ["BareRpcClient", "bare_rpc_server", "run_server"]

_HOST: Final = "127.0.0.1"
_LENGTH: Final = 4


class _Direction:
    """One direction's key and nonce counter."""

    __slots__ = ("_aead", "_counter")

    def __init__(self, key: bytes) -> None:
        self._aead = Aead(AeadAlgorithm.AES_256_GCM, key)
        self._counter = 0

    def _nonce(self) -> bytes:
        self._counter += 1
        return self._counter.to_bytes(12, "big")

    def seal(self, value: Any) -> bytes:
        box = self._aead.encrypt(self._nonce(), cbor2.dumps(value), b"")
        return len(box).to_bytes(_LENGTH, "big") + box

    def open(self, box: bytes) -> Any:
        return cbor2.loads(self._aead.decrypt(self._nonce(), box, b""))


class _Framed(asyncio.Protocol, ABC):
    """Length framing over a stream; `frame(box)` for each whole frame."""

    def __init__(self, key: bytes, *, server: bool) -> None:
        upstream, downstream = _keys(key)
        self.receiving = _Direction(upstream if server else downstream)
        self.sending = _Direction(downstream if server else upstream)
        self.transport: asyncio.Transport | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):
            raise TypeError("a stream transport is expected")
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        start, end = 0, len(buffer)
        while end - start >= _LENGTH:
            size = int.from_bytes(buffer[start : start + _LENGTH], "big")
            if end - start - _LENGTH < size:
                break
            start += _LENGTH
            self.frame(buffer[start : start + size])
            start += size
        self._buffer = buffer[start:]

    @abstractmethod
    def frame(self, box: bytes) -> None:
        """Handle one whole frame (a sealed message)."""


def _keys(key: bytes) -> tuple[bytes, bytes]:
    return key, bytes(b ^ 0xFF for b in key)


class _Server(_Framed):
    def frame(self, box: bytes) -> None:
        request, _method, payload = self.receiving.open(box)
        if self.transport is not None:
            self.transport.write(self.sending.seal([request, "ok", payload]))


class BareRpcClient(_Framed):
    """The client side; `call` from any number of tasks."""

    def __init__(self, key: bytes) -> None:
        super().__init__(key, server=False)
        self._next = 0
        self._waiting: dict[int, asyncio.Future[bytes]] = {}

    @classmethod
    async def connect(cls, key: bytes, port: int) -> BareRpcClient:
        """Connect to the bare server on `port`."""
        loop = asyncio.get_running_loop()
        _transport, client = await loop.create_connection(lambda: cls(key), _HOST, port)
        return client

    async def call(self, payload: bytes) -> bytes:
        """Send `payload` to be echoed; the answer."""
        self._next += 1
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[self._next] = answer
        if self.transport is None:
            raise ConnectionError("not connected")
        self.transport.write(self.sending.seal([self._next, "echo", payload]))
        return await answer

    def frame(self, box: bytes) -> None:
        request, _status, payload = self.receiving.open(box)
        answer = self._waiting.pop(request, None)
        if answer is not None and not answer.done():
            answer.set_result(payload)

    def connection_lost(self, exc: Exception | None) -> None:
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(ConnectionError(f"the bare RPC server went: {exc}"))

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()


async def _serve(key: bytes) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Server(key, server=True), _HOST, 0)
    sys.stdout.write(f"{server.sockets[0].getsockname()[1]}\n")  # the port, for the benchmark
    sys.stdout.flush()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    server.close()


def run_server(key_hex: str) -> None:
    """Serve the bare echo until standard input closes; the port is printed first."""
    asyncio.run(_serve(bytes.fromhex(key_hex)))


def bare_rpc_server(key: bytes) -> contextlib.AbstractContextManager[int]:
    """The bare echo server in a process of its own; yields its port, stops it on exit."""
    program = "import sys; from troth.bench.bare_rpc import run_server; run_server(sys.argv[1])"
    # -P: not from the working directory, which `-c` puts first (review 53f, node home 4)
    return serving([sys.executable, "-P", "-c", program, key.hex()], "bare RPC server")
