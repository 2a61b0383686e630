"""The TLS peer troth's secure channels are compared with: stdlib `ssl` (OpenSSL) TLS 1.3 over
loopback TCP, each side at its best.

Measured: the time of a full mutual-TLS 1.3 handshake (new TCP connection, ECDSA P-256
certificates on both sides, no resumption, no early data) and the bulk throughput of
application data over one established connection (one preallocated send buffer, `recv_into`
one preallocated receive buffer). A server thread plays the
peer; every figure is timed on the client side with `time.perf_counter`.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from troth.crypto.bench_tls import TlsPki, make_tls_pki

__all__ = [
    "client_context",
    "mutual_tls_handshakes",
    "server_context",
    "temporary_pki",
    "tls_bulk_throughput",
]

_HOST = "127.0.0.1"
_SERVER_NAME = "localhost"
_TIMEOUT = 10.0
"""Seconds any single socket operation may block: a stuck peer fails the benchmark, never hangs."""
_JOIN_TIMEOUT = 3 * _TIMEOUT
_WARMUP = 5
_RECEIVE_BUFFER = 65536
_ACK = b"\x01"

_T = TypeVar("_T")
_Address = tuple[str, int]


@contextlib.contextmanager
def temporary_pki() -> Iterator[TlsPki]:
    """A throwaway PKI (see `make_tls_pki`) in a temporary directory, deleted on exit."""
    with tempfile.TemporaryDirectory(prefix="troth-tls-bench-") as directory:
        yield make_tls_pki(Path(directory))


def server_context(pki: TlsPki) -> ssl.SSLContext:
    """TLS 1.3 only; requires a client certificate issued by the CA; issues no session ticket."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=pki.ca_cert)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.num_tickets = 0  # no resumption: every handshake is a full one
    return context


def client_context(pki: TlsPki) -> ssl.SSLContext:
    """TLS 1.3 only; presents the client certificate and verifies the server's against the CA,
    hostname included (connect with `server_hostname="localhost"`)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cafile=pki.ca_cert)
    context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


class _Peer:
    """The server side, in a thread; `join` re-raises what it raised."""

    def __init__(self, serve: Callable[[socket.socket], None], listener: socket.socket) -> None:
        self._serve = serve
        self._listener = listener
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tls-bench-peer", daemon=True)

    def _run(self) -> None:
        try:
            self._serve(self._listener)
        except BaseException as exc:  # handed to the client thread by `join`
            self._error = exc
            self.abort()  # a client still connecting is refused rather than left waiting

    def start(self) -> None:
        self._thread.start()

    def abort(self) -> None:
        # wakes an `accept` blocked on the listener (Linux); otherwise its timeout ends it
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)

    def join(self) -> None:
        self._thread.join(_JOIN_TIMEOUT)
        if self._thread.is_alive():
            raise TimeoutError("benchmark peer thread did not finish")
        if self._error is not None:
            raise ConnectionError("benchmark peer failed") from self._error


def _run_pair(serve: Callable[[socket.socket], None], client: Callable[[_Address], _T]) -> _T:
    """Run `serve(listener)` in a thread against `client(address)` here; join, close all."""
    with socket.create_server((_HOST, 0)) as listener:
        listener.settimeout(_TIMEOUT)
        address: _Address = listener.getsockname()[:2]
        peer = _Peer(serve, listener)
        peer.start()
        try:
            result = client(address)
        except BaseException as exc:
            peer.abort()
            try:
                peer.join()
            except (ConnectionError, TimeoutError) as peer_exc:  # the client's error comes first
                exc.add_note(f"benchmark peer: {peer_exc.__cause__ or peer_exc!r}")
            raise
        peer.join()
        return result


def _accept(listener: socket.socket) -> socket.socket:
    conn, _ = listener.accept()
    conn.settimeout(_TIMEOUT)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _connect(address: _Address) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _receive_exactly(sock: socket.socket, buffer: bytearray) -> None:
    view = memoryview(buffer)
    got = 0
    while got < len(buffer):
        n = sock.recv_into(view[got:])
        if n == 0:
            raise ConnectionError("peer closed the connection early")
        got += n


def mutual_tls_handshakes(pki: TlsPki, count: int, *, resumed: bool = False) -> float:
    """Seconds per full mutual-TLS 1.3 handshake over a new loopback TCP connection.

    The client times from `connect()` to handshake completion. In TLS 1.3 the client finishes
    first (its Finished flight, certificate and signature included, is still in flight to the
    server), so completion is the moment the client receives the server's one-byte
    confirmation that its side is done too (client certificate verified). Handshakes run
    one at a time, after `_WARMUP` uncounted ones.

    `resumed`: every timed handshake resumes the session of the first warm-up one (a TLS 1.3
    PSK with (EC)DHE: a new key exchange, no certificate sent, signed or verified), what a
    client reconnecting to the same server may do; a reconnecting troth node likewise keeps
    the claims it verified before (`channel.establish.tcp.resumed`'s peer).
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    total = _WARMUP + count
    server_ctx, client_ctx = server_context(pki), client_context(pki)
    if resumed:
        server_ctx.num_tickets = 1
    kept: list[ssl.SSLSession] = []

    def serve(listener: socket.socket) -> None:
        for _ in range(total):
            with (
                _accept(listener) as conn,
                server_ctx.wrap_socket(
                    conn, server_side=True, do_handshake_on_connect=False
                ) as tls,
            ):
                tls.do_handshake()
                tls.sendall(_ACK)

    def client(address: _Address) -> float:
        ack = bytearray(1)
        elapsed = 0.0
        for i in range(total):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(_TIMEOUT)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                start = time.perf_counter()
                sock.connect(address)
                with client_ctx.wrap_socket(
                    sock,
                    server_hostname=_SERVER_NAME,
                    do_handshake_on_connect=False,
                    session=kept[0] if kept else None,
                ) as tls:
                    tls.do_handshake()
                    _receive_exactly(tls, ack)
                    both_done = time.perf_counter()
                    if tls.version() != "TLSv1.3" or tls.session_reused is not bool(kept):
                        raise ConnectionError("not the TLS 1.3 handshake measured")
                    if resumed and not kept and tls.session is not None:
                        kept.append(tls.session)  # its ticket came before the server's byte
            if i >= _WARMUP:
                elapsed += both_done - start
        return elapsed / count

    return _run_pair(serve, client)


def tls_bulk_throughput(
    pki: TlsPki, message_size: int = 65536, total_bytes: int = 256 * 2**20
) -> float:
    """Bytes per second of application data, client to server, over one established mutual-TLS
    1.3 connection on loopback: `sendall` of `message_size`-byte slices of one buffer against
    `recv_into` one buffer, timed from the first send to the receiver's one-byte reply."""
    if message_size < 1 or total_bytes < 1:
        raise ValueError("message_size and total_bytes must be >= 1")
    server_ctx, client_ctx = server_context(pki), client_context(pki)

    def serve(listener: socket.socket) -> None:
        with _accept(listener) as conn, server_ctx.wrap_socket(conn, server_side=True) as sock:
            buffer = bytearray(max(message_size, _RECEIVE_BUFFER))
            sock.sendall(_ACK)  # ready: the timed transfer starts after any handshake
            received = 0
            while received < total_bytes:
                n = sock.recv_into(buffer)
                if n == 0:
                    raise ConnectionError("sender closed the connection early")
                received += n
            sock.sendall(_ACK)

    def client(address: _Address) -> float:
        with (
            _connect(address) as raw,
            client_ctx.wrap_socket(raw, server_hostname=_SERVER_NAME) as sock,
        ):
            message = memoryview(bytes(message_size))
            full, rest = divmod(total_bytes, message_size)
            ack = bytearray(1)
            _receive_exactly(sock, ack)
            start = time.perf_counter()
            for _ in range(full):
                sock.sendall(message)
            if rest:
                sock.sendall(message[:rest])
            _receive_exactly(sock, ack)
            return total_bytes / (time.perf_counter() - start)

    return _run_pair(serve, client)
