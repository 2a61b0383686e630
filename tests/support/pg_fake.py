"""A fake PostgreSQL server (no PostgreSQL needed; review 64w): it answers a client's startup as
a server would, with the authentication exchange of its `mode`, and keeps everything the client
sent after its startup message: what a machine in the path to the real server, or one squatting
its address or its socket's path, sees.

Modes: `trust` (no authentication: AuthenticationOk at once), `password`, `md5`, `gss`
(asking for that method), `scram-ok-early` (SCRAM begun, then AuthenticationOk before the
client's proof), `scram-no-final` (AuthenticationOk after the proof, no server signature),
`scram-bad-final` (a server signature that is not the password's)."""

from __future__ import annotations

import base64
import socket
import struct
import threading
from typing import Final

MODES: Final = (
    "trust",
    "password",
    "md5",
    "gss",
    "scram-ok-early",
    "scram-no-final",
    "scram-bad-final",
)
_ASK: Final = {
    "password": b"\x00\x00\x00\x03",
    "md5": b"\x00\x00\x00\x05salt",
    "gss": b"\x00\x00\x00\x07",
}


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def _ready() -> bytes:
    return (
        _message(b"R", struct.pack("!I", 0))
        + _message(b"S", b"server_version\x0016.0\x00")
        + _message(b"K", struct.pack("!II", 1, 2))
        + _message(b"Z", b"I")
    )


def _exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


class FakePostgres:
    """The fake server on 127.0.0.1 (`port`), or on a Unix-domain socket in `socket_dir`."""

    def __init__(self, mode: str, socket_dir: str | None = None, port: int = 5432) -> None:
        self.mode = mode
        if socket_dir is None:
            self.sock = socket.create_server(("127.0.0.1", 0))
            self.port = int(self.sock.getsockname()[1])
        else:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(f"{socket_dir}/.s.PGSQL.{port}")
            self.sock.listen()
            self.port = port
        self.sock.settimeout(0.05)
        self.received = b""
        self.authenticated = 0  # connections that were told AuthenticationOk
        self.queries = 0  # messages a client sent after being told it was in
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self._answer(conn)
                except (OSError, struct.error, IndexError):
                    continue

    def _read(self, conn: socket.socket) -> bytes:
        _exactly(conn, 1)
        size = struct.unpack("!I", _exactly(conn, 4))[0]
        body = _exactly(conn, size - 4)
        self.received += body
        return body

    def _answer(self, conn: socket.socket) -> None:
        while True:  # SSL and GSS encryption refused
            size = struct.unpack("!I", _exactly(conn, 4))[0]
            body = _exactly(conn, size - 4)
            if body[:4] not in (b"\x04\xd2\x16\x2f", b"\x04\xd2\x16\x30"):
                break
            conn.sendall(b"N")
        if self.mode in _ASK:
            conn.sendall(_message(b"R", _ASK[self.mode]))
            self._read(conn)
        elif self.mode.startswith("scram"):
            conn.sendall(_message(b"R", struct.pack("!I", 10) + b"SCRAM-SHA-256\x00\x00"))
            first = self._read(conn)
            if self.mode != "scram-ok-early":
                bare = first.split(b"\x00", 1)[1][4:]
                nonce = next(p for p in bare.split(b",") if p.startswith(b"r="))[2:]
                salt = base64.b64encode(b"saltsalt")
                said = b"r=" + nonce + b"srv,s=" + salt + b",i=4096"
                conn.sendall(_message(b"R", struct.pack("!I", 11) + said))
                self._read(conn)
                if self.mode == "scram-bad-final":
                    signature = b"v=" + base64.b64encode(b"x" * 32)
                    conn.sendall(_message(b"R", struct.pack("!I", 12) + signature))
        conn.sendall(_ready())
        self.authenticated += 1
        self._read(conn)  # the client's first query, if it went on
        self.queries += 1

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        self.sock.close()
