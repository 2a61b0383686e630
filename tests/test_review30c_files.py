"""Review 30c, the files the CLI reads. Every input file is read with a bound before it is parsed
(`read_input`, `_lines`), errors are typed with --json (tests/test_cli_hostile_input.py), and
no error echoes a file's bytes: those hold. One did not:

1. `troth trace verify --file F` reads F's first line to tell an export (JSON lines) from an
   indented proof bundle (`troth trace prove --out`), then opened F again to read the bundle
   whole. A file is read twice alike, but a pipe is read once: a bundle given as a FIFO (or
   `<(...)`, `/dev/stdin`) lost what the first read took. The second open of a FIFO waits for
   a writer: the command hung; or, with another writer, it read what that one wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path

from click.testing import CliRunner

from tests.support.cli import run
from tests.support.traces import tool_call
from troth.cli.main import cli
from troth.clock import SystemClock
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, open_node_log


def _bundle(tmp_path: Path) -> bytes:
    """An indented proof bundle of one record (`troth trace prove --out`)."""
    run("identity", "create", "support")
    clock = SystemClock()
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        record = agent.record(tool_call())
    run("trace", "checkpoint")
    out = tmp_path / "proof.json"
    run("trace", "prove", record.record, "--out", str(out))
    data = out.read_bytes()
    assert data.startswith(b"{\n")
    return data


def test_a_proof_bundle_from_a_fifo_verifies(tmp_path: Path) -> None:
    """Files 1: the bundle written into a FIFO verifies. The writer writes it, then opens the
    FIFO once more and writes nothing (a second reader gets end of file at once, not a hang).
    Was a strict xfail until `verify --file` read the bundle's rest from the stream it read the
    first line from."""
    bundle = _bundle(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write() -> None:
        for payload in (bundle, b""):
            with open(fifo, "wb") as file:
                file.write(payload)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        result = CliRunner().invoke(cli, ["trace", "verify", "--file", str(fifo), "--json"])
    finally:  # the writer's second open waits for a reader: be one
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(5)
    report = json.loads(result.stdout)
    assert (result.exit_code, report.get("verified"), report.get("index")) == (0, True, 0), report


def test_a_proof_bundle_on_stdin_verifies(tmp_path: Path) -> None:
    """The same stream read once for stdin (`--file -`), as it was before files 1's fix."""
    bundle = _bundle(tmp_path)
    result = CliRunner().invoke(cli, ["trace", "verify", "--file", "-", "--json"], input=bundle)
    report = json.loads(result.stdout)
    assert (result.exit_code, report.get("verified"), report.get("index")) == (0, True, 0), report
