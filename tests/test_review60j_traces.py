"""Review 60j: the trace library calls (`troth.node.trace_checks`, `Node.traces`) attacked
against the CLI they came out of: a pipe named as a file read twice, a stream `export_jsonl`
cannot write to."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import troth
from tests.support.traces import record_on_node

RECORDS = 2


@pytest.fixture
def node(troth_home: Path, tmp_path: Path) -> Iterator[troth.Node]:
    """Node "default" with RECORDS records and a checkpoint of them the node accepted."""
    with troth.Node.open("default") as made:
        made.identities.create("support")
    record_on_node(troth_home, RECORDS)
    with troth.Node.open("default") as opened:
        opened.traces.checkpoint()
        opened.traces.verify(checkpoint=tmp_path / "kept.note")  # accepted by the node
        yield opened


def _export(node: troth.Node) -> bytes:
    written = io.StringIO()
    node.traces.export_jsonl(written)
    return written.getvalue().encode()


def _feed(fifo: Path, data: bytes, stop: threading.Event) -> threading.Thread:
    """A writer that writes `data` to `fifo` once, then, until `stop`, opens it again for
    each later reader and writes nothing (what a pipe gives a second open: no data)."""

    def write() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(data)
        while not stop.wait(0.005):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader yet
                continue

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


def test_a_fifo_named_as_the_file_is_read_once(node: troth.Node, tmp_path: Path) -> None:
    export = _export(node)
    fifo = tmp_path / "export.fifo"
    os.mkfifo(fifo)
    stop = threading.Event()
    writer = _feed(fifo, export, stop)
    try:
        verdict = node.traces.verify(file=fifo)
    finally:
        stop.set()
        writer.join(timeout=5)
    assert (verdict.status, verdict.records) == ("unanchored", RECORDS)
    assert verdict.warnings == (
        f"the node accepted a checkpoint of {RECORDS} record(s) of this log: {fifo} is not a"
        " regular file, read once, so not compared with it (name a regular file to compare)",
    )


def test_dev_stdin_from_a_pipe_is_read_once(node: troth.Node, troth_home: Path) -> None:
    export = _export(node)
    env = {**os.environ, "PYTHONPATH": str(Path(troth.__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "troth.cli.main", "trace", "verify", "--file", "/dev/stdin"],
        input=export,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"unanchored: 2 record(s) verified")
    assert b"not a regular file, read once" in done.stderr


@pytest.mark.parametrize("kind", ["binary", "closed"])
def test_a_stream_it_cannot_write_text_to_is_an_argument_error(node: troth.Node, kind: str) -> None:
    stream: io.IOBase = io.BytesIO() if kind == "binary" else io.StringIO()
    if kind == "closed":
        stream.close()
    with pytest.raises(troth.ArgumentError) as caught:
        node.traces.export_jsonl(stream)  # type: ignore[arg-type]
    assert caught.value.parameter == "stream"


def test_a_file_judged_against_the_accepted_checkpoint_was_compared(
    node: troth.Node, tmp_path: Path
) -> None:
    export = tmp_path / "eval.jsonl"
    export.write_bytes(_export(node))
    of_file, of_log = node.traces.verify(file=export), node.traces.verify()
    assert (of_log.status, of_log.anchor_source, of_log.compared) == ("valid", "accepted", True)
    assert (of_file.status, of_file.anchor_source, of_file.compared) == ("valid", "accepted", True)
