"""Review 57h, cli 1: `troth trace export` (JSONL, no --out) wrote its lines to stdout as they
are: a record's disclosed values are a caller's or a model's text, any JSON, and JSON escapes
only C0 controls, so a member's record with C1 controls (CSI `\\u009b`, OSC `\\u009d`) or bidi
overrides in its arguments reached the terminal of whoever ran the export raw (a terminal acts
on them: erases the screen, sets the clipboard, reorders what is read), where `troth trace
prove` escapes them (`Reporter.document`). On a terminal the lines are written with them
escaped (`\\u009b`, the same JSON); to a file or a pipe, as `--out` writes them (escaping
always could take a line of a record at its limits past MAX_TRACE_LINE_BYTES, which verifiers
read: a member could make the log's export unverifiable).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.traces import tool_call
from troth.cli.main import cli
from troth.clock import SystemClock
from troth.node import open_node
from troth.trace import TraceRecorder, open_node_log
from troth.trace.export import verify_export

HOSTILE = "\u009b2J\u009d52;c;ZWNobyBwd25lZA==\u009c\u202eevil"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _export_to(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> str:
    """`troth trace export` with `stream` its stdout (in-process, not CliRunner's)."""
    with monkeypatch.context() as patched:
        patched.setattr("sys.stdout", stream)
        cli.main(["trace", "export"], prog_name="troth", standalone_mode=False)
    return stream.getvalue()


def _hostile_record(home: Path) -> None:
    run("identity", "create", "support")
    clock = SystemClock()
    with open_node("default", home=home) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        agent.record(tool_call(args={"note": HOSTILE}))


def test_cli1_an_export_to_a_terminal_escapes_what_a_terminal_acts_on(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hostile_record(troth_home)
    shown = _export_to(_Terminal(), monkeypatch)
    assert not any(c in shown for c in "\u009b\u009d\u009c\u202e")
    assert "\\u009b2J" in shown
    lines = [line.encode() for line in shown.splitlines()]
    assert json.loads(lines[0])["disclosures"]["args"]["value"] == {"note": HOSTILE}
    assert verify_export(lines).records == 1


def test_cli1_an_export_to_a_file_is_the_one_out_writes(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hostile_record(troth_home)
    piped = _export_to(io.StringIO(), monkeypatch)
    assert HOSTILE in piped  # as the signed value, byte for byte
    assert verify_export([line.encode() for line in piped.splitlines()]).records == 1
