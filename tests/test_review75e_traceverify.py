"""Review 75e (traceverify): offline trace verification attacked by one who controls the
exported file or the collector (the log's own key), wanting an offline verifier to accept a
lie. Each test failed on the code before its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.traces import (
    NOW,
    Held,
    export_lines,
    one_line_export,
    open_log,
    re_signed,
    recorder,
    tool_call,
)
from troth.cli.trace_cmds import _verdict_text
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.node.trace_checks import TraceVerdict
from troth.trace import Authority, Kind, RecordContent
from troth.trace.export import bundle_text, prove, verify_bundle, verify_export
from troth.trace.signing import sign_record
from troth.trace.verify import verify_log


def test_an_export_of_one_agents_records_out_of_seq_order_is_refused(tmp_path: Path) -> None:
    """75e traceverify 1: a collector's re-signed tree holding an agent's seq 1 at index 0 and
    its seq 0 at index 1 (two records of one agent swapped, docs/traces.md: "per-agent chain
    broken"), each line's proof and checkpoint true of that tree: `verify_log` refuses such a
    log at index 0 (`the agent's first record has seq 1`), but the export of it verified: the
    lines' chain was checked in seq order (each names the one before, times, key changes),
    never that the log holds them in that order."""
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    log = open_log(tmp_path / "log.db", clock, owner)
    steps = recorder(log, agent, clock)
    steps.record(tool_call("first"))
    steps.record(tool_call("second"))
    lines = export_lines(log)
    log.close()
    swapped = re_signed(lines[::-1], owner, NOW + 1)
    for order in (swapped, swapped[::-1]):  # whatever the order of the lines
        with pytest.raises(TraceError) as caught:
            verify_export(order)
        assert caught.value.reason is TraceFailure.CHAIN_BROKEN
        assert caught.value.index == 0
    assert verify_export(re_signed(lines, owner, NOW + 1)).records == 2  # the log's own order


def test_an_export_or_bundle_says_which_chains_it_did_not_check(tmp_path: Path) -> None:
    """75e traceverify 2: a record naming a delegation chain kept elsewhere than "at log" (a
    locator: no line carries it, so no chain is checked, not even that one exists: here a
    digest of zeros) verified `valid` as an export line and as a proof bundle with nothing in
    the answer saying its chain went unchecked: `verify_log` counts such chains
    (`chains_elsewhere`), `verify_export` and `verify_bundle` (`troth trace verify --file
    --json`: `verified: true`) did not."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    nowhere = Authority(bytes(32), ((bytes(16), bytes(32)),), at="https://example.com/c")
    content = RecordContent(Kind.DECISION, authority=nowhere)
    log.append(sign_record(Held().signer(), content, seq=0, prev=None, time=NOW))
    log.checkpoint()
    assert verify_log(log).to_json()["chains_elsewhere"] == 1
    lines = [json.dumps(line).encode() for line in export_lines(log)]
    report = verify_export(lines)
    assert report.to_json()["chains_elsewhere"] == 1
    verdict = TraceVerdict(report, None, False, (), None, False, False)
    said = _verdict_text(verdict, verdict.to_json(), True)  # `troth trace verify --file`
    assert "1 record(s) name a delegation chain kept elsewhere than the log: not checked" in said
    bundle = prove(log, export_lines(log)[0]["record"]["id"])
    assert verify_bundle(bundle_text(bundle).encode()).to_json()["chains_elsewhere"] == 1
    log.close()


@pytest.mark.parametrize(
    ("committed", "shown"),
    [
        ('"amount": 20', '"amount": 20.000000000000001'),  # digits past a double's
        ('"fee": 0', '"fee": 1e-400'),  # a nonzero number that reads as 0
    ],
)
def test_an_export_line_showing_another_number_than_its_disclosure_committed_is_refused(
    tmp_path: Path, committed: str, shown: str
) -> None:
    """75e traceverify 3: an export line's disclosed value is read as JSON and its canonical
    form (RFC 8785) opened against the record's commitment; a number the line spells with
    digits past a double's precision, or a nonzero one that underflows to 0, reads as the
    double committed to, so a line showing an amount of 20.000000000000001 (or a fee of
    1e-400) where the agent committed to 20 (or 0) verified, what a reader keeping the
    number's digits (jq 1.7) shows not what was signed. Refused now (malformed): a line's
    numbers are the doubles they spell (troth writes each as the shortest that reads back)."""
    text = one_line_export(tmp_path / "log.db", args={"amount": 20, "fee": 0})
    assert verify_export([text.encode()]).records == 1
    assert committed in text
    with pytest.raises(TraceError) as caught:
        verify_export([text.replace(committed, shown).encode()])
    assert caught.value.reason is TraceFailure.MALFORMED
    assert "line 1: " in caught.value.detail  # no index read: the line named by its number
    assert "not the double" in caught.value.detail
