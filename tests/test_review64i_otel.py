"""Review 64i, otel 1: the OTLP exporter's timeout (10 s, `OTEL_EXPORTER_OTLP_TIMEOUT`) bounds
each read of its HTTP client, not an answer: a collector (or anyone on the path of an http://
endpoint) that sends its answer a byte at a time held `troth trace export --format otel` (and
`export_otel`) for as long as it kept sending — 70 s and counting, where the endpoint that did
not answer at all failed after 10 s. Each batch is now sent from a daemon thread the export
waits for at most `limits.OTEL_EXPORT_BATCH_SECONDS`: past it the export fails (Unreachable,
exit 4), and the thread left reading holds no process exit.

Review 64i, otel 2: `troth trace export --format otel --endpoint URL --json` answered a
collector that took the spans with `{"spans": N, "endpoint": URL}`, the URL as given: its query
(`?api_key=...`) and its user information (`https://user:key@collector/`) on stdout, into the
job's log — what review 63e (cli 3) kept out of the exporter's log lines and what
`troth.trace.otel._check_endpoint` promises never to say. The result names the endpoint by its
scheme, host, port and path alone.

Review 64i, otel 3: `troth trace export --endpoint URL` without `--format otel` (the default is
jsonl) printed the JSONL export on stdout and exited 0, the endpoint ignored: a job meant to
send spans passed without sending one; `--format otel --out FILE` ignored the file. Either is
now a usage error (exit 2), before anything is read.

Review 64i, otel 4: a span under its own parent was a root (review 62k, traces 3), but two
records of one signer claiming each other's span as their parent (`links.span`,
`links.parent_span`: the signer's claims, an instrumented app's or a member's) were exported as
two spans each the other's parent: a trace with no root, a cycle a backend's tree walk follows.
The export keeps the parent each span was emitted under (`otel_ids`), and a span whose parent's
parents reach it is emitted as a root (past `MAX_TRACE_OTEL_SPAN_DEPTH` too, until review 64q,
otel 1: a chain deeper than that is no cycle).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.cli import run
from tests.support.traces import NOW, Held, log_of, open_log, recorder
from tests.test_review57h_cli import _hostile_record
from troth import limits
from troth.clock import FixedClock
from troth.errors import Unreachable
from troth.trace import Kind, Links, RecordContent, ToolCall, TraceLog
from troth.trace.otel import export_otel, otlp_exporter, record_spans


class _Trickling:
    """An HTTP server that answers every request with a 200 whose body comes a byte at a time,
    for at most `seconds`; `done` is set once it stopped sending."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.done = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(2)
            received = b""
            while b"\r\n\r\n" not in received:
                received += connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                b"Content-Length: 1000\r\n\r\n"
            )
            for _ in range(int(self.seconds / 0.05)):
                if self._stop.wait(0.05):
                    break
                connection.sendall(b"\x00")
        self.done.set()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(3)


@pytest.fixture
def trickling() -> Iterator[_Trickling]:
    server = _Trickling(seconds=1.5)
    yield server
    server.close()


def test_otel1_a_collector_answering_a_byte_at_a_time_holds_no_export(
    tmp_path: Path, trickling: _Trickling, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2")  # (unfixed: fails sooner)
    monkeypatch.setattr(limits, "OTEL_EXPORT_BATCH_SECONDS", 0.3)
    log = log_of(tmp_path / "trace.db", 2)
    exporter = otlp_exporter(f"http://127.0.0.1:{trickling.port}/v1/traces")
    with pytest.raises(Unreachable, match="did not answer"):
        export_otel(log, exporter)
    # the export gave up while the collector was still sending its answer
    assert not trickling.done.is_set()
    log.close()


class _Taking(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Taking)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_otel2_an_export_sent_never_says_the_endpoint_s_key(
    troth_home: Path, collector: int
) -> None:
    _hostile_record(troth_home)
    endpoint = f"http://agent:PASSW0RD@127.0.0.1:{collector}/v1/traces?api_key=S3CRET#F"
    said = run("trace", "export", "--format", "otel", "--endpoint", endpoint, "--json").stdout
    assert "S3CRET" not in said
    assert "PASSW0RD" not in said
    assert json.loads(said) == {
        "spans": 1,
        "endpoint": f"http://127.0.0.1:{collector}/v1/traces",
    }


@pytest.mark.parametrize(
    "options",
    [
        ["--endpoint", "http://127.0.0.1:9/v1/traces"],  # no --format: jsonl on stdout
        ["--format", "jsonl", "--endpoint", "http://127.0.0.1:9/v1/traces"],
        ["--format", "otel", "--endpoint", "http://127.0.0.1:9/v1/traces", "--out", "spans"],
    ],
)
def test_otel3_an_export_option_the_format_ignores_is_a_usage_error(
    troth_home: Path, options: list[str]
) -> None:
    _hostile_record(troth_home)
    said = run("trace", "export", *options, code=2)
    assert "--endpoint" in said.stderr
    assert said.stdout == ""
    assert not (troth_home / "spans").exists()


def _roots_reached(spans: Sequence[ReadableSpan]) -> bool:
    """Whether every span's parents, followed among `spans`, reach a root (no cycle)."""
    parent = {s.context.span_id: s.parent and s.parent.span_id for s in spans if s.context}
    for start in parent:
        at: int | None = start
        for _ in range(len(parent) + 1):
            at = parent.get(at) if at is not None else None
            if at is None:
                break
        else:
            return False
    return True


def _claiming_each_other(path: Path) -> TraceLog:
    """A log where one agent's two records claim each other's span as their parent."""
    clock = FixedClock(NOW)
    log = open_log(path, clock)
    agent = recorder(log, Held(), clock)
    for call, span, parent in (("c1", "1" * 16, "2" * 16), ("c2", "2" * 16, "1" * 16)):
        links = Links(trace="a" * 32, span=span, parent_span=parent)
        agent.record(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("x", call), links=links))
    return log


def test_otel4_spans_claiming_each_other_as_parent_make_no_cycle(tmp_path: Path) -> None:
    log = _claiming_each_other(tmp_path / "trace.db")
    exporter = InMemorySpanExporter()
    assert export_otel(log, exporter) == 2
    spans = exporter.get_finished_spans()
    assert _roots_reached(spans)
    assert [s.parent is None for s in spans] == [False, True]  # the second closed it
    assert _roots_reached(record_spans((e.index, e.envelope) for e in log.stored()))
    log.close()


def test_otel4_a_chain_is_kept_whole(tmp_path: Path) -> None:
    """(A depth limit cut it every 65 spans: review 64q, otel 1, tests/test_review64q_otel.py.)"""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent = recorder(log, Held(), clock)
    for level in range(6):  # span k under span k-1
        parent = None if level == 0 else f"{level:016x}"
        links = Links(trace="a" * 32, span=f"{level + 1:016x}", parent_span=parent)
        agent.record(RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("x"), links=links))
    exporter = InMemorySpanExporter()
    export_otel(log, exporter)
    spans = exporter.get_finished_spans()
    assert [s.parent is None for s in spans] == [True] + [False] * 5
    assert _roots_reached(spans)
    log.close()
