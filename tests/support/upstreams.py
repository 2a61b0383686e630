"""HTTP upstreams on 127.0.0.1 for the http-inject tests: one that holds every request until
released (its arrivals counted), one that sends its answer a byte at a time, one that echoes
the injected header (`echoing`), and one forward through the broker to any of them
(`forward_once`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.leases import LeaseWorld, open_broker
from troth.secrets import AllowListPolicy, HttpRequest, HttpResponse

HOLD_SECONDS = 20
"""The longest a held request waits for its release (a test that fails never hangs)."""


@dataclass
class HeldUpstream:
    """Answers 204 to every GET once `release` is set; `seen` lists the paths that arrived."""

    url: str = ""
    release: threading.Event = field(default_factory=threading.Event)
    seen: list[str] = field(default_factory=list)
    _arrived: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def arrivals(self, count: int) -> bool:
        """Wait until `count` more requests arrived (False if they did not within 10 s)."""
        return all(self._arrived.acquire(timeout=10) for _ in range(count))


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` served on 127.0.0.1 (a thread per request): the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def held_upstream() -> Iterator[HeldUpstream]:
    state = HeldUpstream()

    class Held(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append(self.path)
            state._arrived.release()
            state.release.wait(HOLD_SECONDS)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serving(Held) as base:
        state.url = base + "/api"
        try:
            yield state
        finally:
            state.release.set()


@contextmanager
def trickling_upstream(where: str, *, size: int = 200, every: float = 0.05) -> Iterator[str]:
    """An upstream that sends its answer one byte every `every` seconds: with `where` =
    "headers", its status line and a header of `size` bytes; with "body", a 200 whose body is
    `size` bytes. Each byte comes well within any read timeout; the whole answer takes
    `size * every` seconds (10 s by default). It stops when the client goes away."""
    pad = b"a" * size
    if where == "headers":
        answer = b"HTTP/1.1 200 OK\r\nX-Pad: " + pad + b"\r\nContent-Length: 2\r\n\r\nok"
    else:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + pad

    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            start = answer.index(pad)  # what precedes the padding goes at once
            try:
                self.wfile.write(answer[:start])
                for index in range(start, len(answer)):
                    time.sleep(every)
                    self.wfile.write(answer[index : index + 1])
            except OSError:  # the broker hung up
                return

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serving(Trickle) as base:
        yield base + "/api"


def echoing(encode: Callable[[str], str]) -> type[BaseHTTPRequestHandler]:
    """An upstream answering 200 with the request's Authorization header, `encode`d, as its
    body and in an `X-Seen` header (how a framework's debug page echoes what it was sent)."""

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            echoed = encode(self.headers.get("Authorization", ""))
            body = echoed.encode()
            self.send_response(200)
            self.send_header("X-Seen", echoed)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Echo


def forward_once(
    tmp_path: Path,
    world: LeaseWorld,
    upstream: type[BaseHTTPRequestHandler],
    secret: bytes,
    *,
    path: str = "/echo",
    now: int,
) -> HttpResponse:
    """Agent A, allowed an http-inject secret (`secret`, injected as Authorization) to
    `upstream`, forwards one GET of `path`: the answer as the agent reads it."""
    policy = AllowListPolicy({world.agent_a.identifier: {"echo": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=now, policy=policy)
    try:
        with serving(upstream) as base:
            config = {
                "scopes": ["read"],
                "ttl": 60,
                "upstream": base + "/api",
                "header": "Authorization",
                "rules": [{"methods": ["GET"], "path": path}],
            }
            broker.put_secret("echo", "http-inject", config, secret, now=now)
            agent = world.credential_a()
            issued = broker.issue(agent, "echo", now=now)
            return broker.forward(agent, issued.lease_id, HttpRequest("GET", path), now=now)
    finally:
        broker.close()


def answering(
    body_of: Callable[[str], bytes], *, status: int = 401
) -> type[BaseHTTPRequestHandler]:
    """An upstream answering `status` with `body_of(the request's Authorization header)` (an
    error page or a "whoami" that shows what it decoded)."""

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = body_of(self.headers.get("Authorization", ""))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Answer
