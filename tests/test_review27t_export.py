"""Review 27t, export 1: an export line stripped of the chain its record keeps "at log" still
verifies.

A record names the delegation chain it acted under (`authority`: its digest, its credentials,
and where it is kept: "log", the log keeps it, refused at append if absent). An export line
(a proof bundle) carries that chain (`"chain"`), and `verify_bundle` checks it is the one
named and ends at the agent. A line without `"chain"` was not checked at all: whoever edits an
export (or a proof bundle) could drop the chains of the records it wants unexamined — which
authority delegated what to whom — and `troth trace verify --file` still answered "verified"
(every line "valid" against the kept checkpoint), where the log's own verification refuses a
record whose "at log" chain is missing (`the chain is not in the log`). A chain kept elsewhere
(another locator) is not in a bundle, and is not asked for.

Was a strict xfail until `verify_bundle` refused a record naming a chain "at log" whose bundle
does not carry it (CHAIN_MISMATCH).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.support.gates import T, make_world
from tests.support.parties import make_party
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import Authority, Kind, RecordContent, ToolCall, TraceLog, TraceRecorder
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.verify import verify_log

NOW = T + 10


def _export(tmp_path: Path, at: str) -> tuple[TraceLog, list[str]]:
    """A log where the support agent recorded one call under its chain (kept `at`), its
    export's lines."""
    world = make_world()
    owner = make_party(world.vault, now=T)
    clock = FixedClock(NOW)
    log = TraceLog.open(tmp_path / "trace.db", clock=clock, signer=lambda now: owner.signer)
    chain = world.support_chain
    recorder = TraceRecorder(log, lambda now: world.support.signer, clock=clock)
    content = RecordContent(
        Kind.TOOL_INVOCATION,
        tool=ToolCall("refund"),
        authority=Authority.from_chain(chain, at=at),
    )
    recorder.record(content, chain=chain if at == "log" else None)
    out = io.StringIO()
    export_jsonl(log, out)
    return log, out.getvalue().splitlines()


def test_a_line_stripped_of_the_chain_kept_at_the_log_is_refused(tmp_path: Path) -> None:
    log, (line,) = _export(tmp_path, "log")
    assert verify_export([line.encode()]).records == 1
    bundle = json.loads(line)
    del bundle["chain"]
    stripped = json.dumps(bundle).encode()
    anchor = log.latest_checkpoint().note
    with pytest.raises(TraceError) as caught:
        verify_export([stripped], anchor=anchor)
    assert (caught.value.reason, caught.value.index) == (TraceFailure.CHAIN_MISMATCH, 0)
    assert "does not carry the chain" in caught.value.detail
    with pytest.raises(TraceError) as bundled:
        verify_bundle(stripped, anchor=anchor)
    assert bundled.value.reason is TraceFailure.CHAIN_MISMATCH


def test_a_chain_kept_elsewhere_is_not_asked_of_a_bundle(tmp_path: Path) -> None:
    log, (line,) = _export(tmp_path, "https://example.org/chains")
    assert "chain" not in json.loads(line)
    assert verify_export([line.encode()]).records == 1
    assert verify_log(log).chains_elsewhere == 1
