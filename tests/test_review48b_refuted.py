"""Review 48b, attacks on offline trace verification that the code refused (or answered as
promised): they pin what holds. Proof bundles and JSONL exports (`verify_bundle`,
`verify_export`, `troth trace verify --file`), the log verifier's kept checkpoint, the
canonical forms a line's parts are read in, DSSE's PAE.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.traces import (
    NOW,
    Held,
    one_record_then_rotated,
    open_log,
    recorder,
    set_newest_history,
    tool_call,
)
from tests.test_review34g_trace import _insert
from troth import limits
from troth.clock import FixedClock
from troth.encoding.ijson import load_json
from troth.errors import DecodeError, TraceError, TraceFailure
from troth.trace import AnchorStatus, verify_log
from troth.trace.dsse import decode_envelope, encode_envelope, pae
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.log import TraceLog
from troth.trace.record import PAYLOAD_TYPE
from troth.trace.signing import sign_record

_F = TraceFailure


def _log(path: Path, records: int = 3, *, agent: Held | None = None) -> TraceLog:
    clock = FixedClock(NOW)
    log = open_log(path, clock)
    rec = recorder(log, agent or Held(), clock)
    for n in range(records):
        rec.record(tool_call("refund", args={"order": f"o{n}", "amount": 20}, result="ok"))
    return log


def _lines(log: TraceLog) -> list[dict[str, Any]]:
    out = io.StringIO()
    export_jsonl(log, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _text(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _refused(lines: list[dict[str, Any]], reason: TraceFailure, index: int | None) -> str:
    with pytest.raises(TraceError) as caught:
        verify_export([_text(line) for line in lines])
    assert caught.value.reason is reason, caught.value
    assert caught.value.index == index, caught.value
    return caught.value.detail


def test_a_duplicated_line_is_replayed_at_its_second_copy(tmp_path: Path) -> None:
    """The same line twice (anywhere in the export): REPLAYED at the record's index."""
    lines = _lines(_log(tmp_path / "trace.db"))
    _refused([*lines, lines[1]], _F.REPLAYED, 1)
    _refused([lines[2], lines[0], lines[2], lines[1]], _F.REPLAYED, 2)


def test_a_line_whose_proof_is_for_another_checkpoint_is_refused(tmp_path: Path) -> None:
    """A line of a later export (a checkpoint of 4 records) among lines against the one of 3:
    refused, at its record; its proof under the others' checkpoint note: PROOF_INVALID."""
    log = _log(tmp_path / "trace.db")
    early = _lines(log)
    recorder(log, Held(), FixedClock(NOW)).record(tool_call())
    late = _lines(log)
    assert late[0]["checkpoint"] != early[0]["checkpoint"]
    assert late[0]["proof"] != early[0]["proof"]
    detail = _refused([early[1], late[0], early[2]], _F.MALFORMED, 0)
    assert "different checkpoints" in detail
    grafted = {**late[0], "checkpoint": early[0]["checkpoint"]}
    _refused([grafted, early[1], early[2]], _F.PROOF_INVALID, 0)
    proof_only = {**early[0], "proof": late[0]["proof"]}
    _refused([proof_only, early[1], early[2]], _F.PROOF_INVALID, 0)


def test_a_kept_checkpoint_of_another_log_anchors_nothing(tmp_path: Path) -> None:
    """A verifier's kept checkpoint of log A: log B's export (verified) is UNANCHORED, never
    VALID; log B itself, verified against it, is refused (the kept note is not B's)."""
    a, b = _log(tmp_path / "a.db"), _log(tmp_path / "b.db")
    kept = a.checkpoint().note
    lines = [_text(line) for line in _lines(b)]
    assert verify_export(lines, anchor=kept).status is AnchorStatus.UNANCHORED
    assert verify_bundle(lines[0], anchor=kept).status is AnchorStatus.UNANCHORED
    with pytest.raises(TraceError) as caught:
        verify_log(b, anchor=kept)
    assert caught.value.reason is _F.CHECKPOINT_INVALID
    assert verify_export(lines, anchor=b.checkpoint().note).status is AnchorStatus.VALID
    assert verify_export(lines).status is AnchorStatus.UNANCHORED  # no kept state


def test_a_forked_checkpoint_of_the_kept_size_is_refused(tmp_path: Path) -> None:
    """Two logs of one owner, the same size, other records: the kept checkpoint of one, the
    other's export: FORKED at its first line; a kept checkpoint larger than the export's:
    TRUNCATED."""
    clock, owner = FixedClock(NOW), Held()
    one, two = (open_log(tmp_path / f"{n}.db", clock, owner) for n in ("one", "two"))
    for log in (one, two):
        recorder(log, Held(), clock).record(tool_call())
    lines = [_text(line) for line in _lines(two)]
    with pytest.raises(TraceError) as caught:
        verify_export(lines, anchor=one.checkpoint().note)
    assert (caught.value.reason, caught.value.index) == (_F.FORKED, 0)
    recorder(two, Held(), clock).record(tool_call())
    with pytest.raises(TraceError) as caught:
        verify_export(lines, anchor=two.checkpoint().note)
    assert caught.value.reason is _F.TRUNCATED


def test_a_window_grafted_from_another_agent_is_refused(tmp_path: Path) -> None:
    """A version 2 bundle whose windows hold another agent's history (before or after the
    record's own): SIGNER_INVALID, at the record."""
    line = _lines(_log(tmp_path / "trace.db", 1))[0]
    other = base64.b64encode(Held().identity.history).decode()
    for at in (0, 1):
        grafted = copy.deepcopy(line)
        grafted["version"] = 2
        grafted["signer"].update(windows=[other], at=at)
        with pytest.raises(TraceError) as caught:
            verify_bundle(_text(grafted))
        assert (caught.value.reason, caught.value.index) == (_F.SIGNER_INVALID, 0)
    grafted = copy.deepcopy(line)
    grafted["signer"]["history"] = other  # version 1: the history itself another's
    with pytest.raises(TraceError) as caught:
        verify_bundle(_text(grafted))
    assert caught.value.reason is _F.SIGNER_INVALID


def _stolen(tmp_path: Path) -> tuple[list[dict[str, Any]], bytes, bytes]:
    """Review 35c's log: the agent's seq 0 at NOW by its first key; it rotates at NOW + 100;
    a thief of the first key signs seq 1 at NOW + 150, written into the log by its operator.
    The export's lines, and the agent's histories before and after the rotation."""
    clock, owner, agent = FixedClock(NOW), Held(), Held()
    log = open_log(tmp_path / "trace.db", clock, owner)
    old, before, after, head = one_record_then_rotated(log, agent, clock)
    stolen = sign_record(old, tool_call(args={"amount": 5000}), seq=1, prev=head, time=NOW + 150)
    _insert(log, 1, stolen)
    set_newest_history(log, agent, after)
    clock.advance(200)
    return _lines(open_log(tmp_path / "trace.db", clock, owner)), before, after.history


def test_a_key_retired_before_its_record_is_refused_one_current_stays_valid(
    tmp_path: Path,
) -> None:
    """The record signed while its key was current (seq 0) verifies under the history after
    the rotation; the one its retired key signed after it (seq 1) is KEY_RETIRED, alone, and
    as a version 2 bundle whose history ends at the key's change and whose window after it
    holds the rotation (the window `ends at a key retired earlier than the record`)."""
    lines, before, after = _stolen(tmp_path)
    assert verify_bundle(_text(lines[0])).record.seq == 0
    with pytest.raises(TraceError) as caught:
        verify_bundle(_text(lines[1]))
    assert (caught.value.reason, caught.value.index) == (_F.KEY_RETIRED, 1)
    windowed = copy.deepcopy(lines[1])
    windowed["version"] = 2
    windowed["signer"]["history"] = base64.b64encode(before).decode()
    windowed["signer"].update(windows=[base64.b64encode(after).decode()], at=0)
    with pytest.raises(TraceError) as caught:
        verify_bundle(_text(windowed))
    assert (caught.value.reason, caught.value.index) == (_F.KEY_RETIRED, 1)
    _refused([lines[0], windowed], _F.KEY_RETIRED, 1)


def test_a_swapped_disclosure_or_commitment_is_refused(tmp_path: Path) -> None:
    """A line's `args` disclosure moved under `result` (its salt and value: the commitment
    names the field), a redacted field given another value, the record's two commitments
    swapped in its readable copy: refused, at the record."""
    line = _lines(_log(tmp_path / "trace.db", 1))[0]
    moved = copy.deepcopy(line)
    moved["disclosures"] = {"result": line["disclosures"]["args"]}
    with pytest.raises(TraceError) as caught:
        verify_bundle(_text(moved))
    assert (caught.value.reason, caught.value.index) == (_F.DISCLOSURE_MISMATCH, 0)
    redacted = copy.deepcopy(line)
    del redacted["disclosures"]["result"]
    assert verify_bundle(_text(redacted)).disclosed == ("args",)  # redacted: still verifies
    redacted["disclosures"]["result"] = {**line["disclosures"]["result"], "value": "refused"}
    with pytest.raises(TraceError) as caught:
        verify_bundle(_text(redacted))
    assert caught.value.reason is _F.DISCLOSURE_MISMATCH
    swapped = copy.deepcopy(line)
    digests = swapped["record"]["digests"]
    digests["args"], digests["result"] = digests["result"], digests["args"]
    with pytest.raises(TraceError) as caught:
        verify_bundle(_text(swapped))
    assert (caught.value.reason, caught.value.index) == (_F.MALFORMED, 0)


def test_disclosed_numbers_are_judged_as_rfc8785_spells_them(tmp_path: Path) -> None:
    """A disclosed value's number in another JSON spelling (20 as 20.0 or 2e1: RFC 8785 writes
    each `20`, the bytes committed to) is the same value and verifies; `true` for 1, or 20 as
    the string "20", is another value: DISCLOSURE_MISMATCH."""
    line = _lines(_log(tmp_path / "trace.db", 1))[0]
    text = _text(line)
    assert b'"amount":20' in text
    assert verify_bundle(text.replace(b'"amount":20', b'"amount":2e1')).index == 0
    assert verify_bundle(text.replace(b'"amount":20', b'"amount":20.0')).index == 0
    for other in (b'"amount":"20"', b'"amount":true', b'"amount":21'):
        with pytest.raises(TraceError) as caught:
            verify_bundle(text.replace(b'"amount":20', other))
        assert caught.value.reason is _F.DISCLOSURE_MISMATCH


def test_a_line_with_a_duplicate_member_or_a_surrogate_is_refused(tmp_path: Path) -> None:
    """I-JSON: a line with two `index` members (json.loads keeps the last), a disclosure
    with two `value`s, a lone surrogate escaped: MALFORMED, before any check; the loader
    itself refuses the duplicate."""
    text = _text(_lines(_log(tmp_path / "trace.db", 1))[0])
    with pytest.raises(DecodeError, match="duplicate"):
        load_json(b'{"a":1,"a":2}', max_bytes=64)
    edits = [
        text.replace(b'"index":0,', b'"index":5,"index":0,', 1),
        text.replace(b'"value":"ok"', b'"value":"no","value":"ok"', 1),
        text.replace(b'"value":"ok"', b'"value":"\\ud800"', 1),
    ]
    for edited in edits:
        assert edited != text
        with pytest.raises(TraceError) as caught:
            verify_bundle(edited)
        assert caught.value.reason is _F.MALFORMED, caught.value


def test_dsse_pae_counts_bytes_and_the_trace_type_is_the_only_one(tmp_path: Path) -> None:
    """PAE's lengths are of UTF-8 bytes (DSSE protocol.md): a non-ASCII payload type of one
    character counts 2. A trace envelope whose payloadType is another (non-ASCII, escaped or
    not) is refused by the log's reader: never its leaf."""
    assert pae("é", b"x") == b"DSSEv1 2 \xc3\xa9 1 x"
    assert pae(PAYLOAD_TYPE, b"") == b"DSSEv1 %d %s 0 " % (
        len(PAYLOAD_TYPE),
        PAYLOAD_TYPE.encode(),
    )
    keyid = "0" * 64
    escaped = encode_envelope("application/vnd.troth.trace.v1+jsoné", b"{}", keyid, b"s")
    assert b"\\u00e9" in escaped
    assert decode_envelope(escaped)[0].payload_type.endswith("é")  # canonical, read
    raw = escaped.replace(b"\\u00e9", "é".encode())
    with pytest.raises(DecodeError):
        decode_envelope(raw)  # not ASCII: not the one spelling
    line = _lines(_log(tmp_path / "trace.db", 1))[0]
    envelope = json.loads(line["envelope"])
    for kind in ("application/vnd.troth.trace.v1+jsoné", "application/vnd.troth.trace.v2+json"):
        forged = {
            **line,
            "envelope": encode_envelope(
                kind,
                base64.b64decode(envelope["payload"]),
                envelope["signatures"][0]["keyid"],
                base64.b64decode(envelope["signatures"][0]["sig"]),
            ).decode(),
        }
        with pytest.raises(TraceError) as caught:
            verify_bundle(_text(forged))
        assert caught.value.reason is _F.UNKNOWN_TYPE, caught.value


def test_verify_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`troth trace verify --file`: an honest export exits 0, `unanchored` (not valid) with no
    kept checkpoint, and 1 with --require-anchor; against its own kept checkpoint, `valid`; a
    flipped byte in a record's envelope: exit 1, its index and id named."""
    log = _log(tmp_path / "trace.db")
    lines = _lines(log)
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"\n".join(_text(line) for line in lines) + b"\n")
    kept = tmp_path / "kept.checkpoint"
    kept.write_bytes(lines[0]["checkpoint"].encode())
    envelope = json.loads(lines[1]["envelope"])
    payload = base64.b64decode(envelope["payload"]).replace(b'"seq":1', b'"seq":7')
    envelope["payload"] = base64.b64encode(payload).decode()
    flipped = {**lines[1], "envelope": json.dumps(envelope, separators=(",", ":"))}
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(_text(line) for line in [lines[0], flipped, lines[2]]))
    monkeypatch.setenv("TROTH_HOME", str(tmp_path / "fresh"))
    run("node", "init", "verifier")
    said = json.loads(run("trace", "verify", "--file", str(export), "--json").stdout)
    assert (said["valid"], said["status"], said["records"]) == (False, "unanchored", 3)
    run("trace", "verify", "--file", str(export), "--require-anchor", code=1)
    args = ("--checkpoint", str(kept), "--require-anchor", "--json")
    said = json.loads(run("trace", "verify", "--file", str(export), *args).stdout)
    assert (said["valid"], said["status"]) == (True, "valid")
    said = json.loads(run("trace", "verify", "--file", str(bad), "--json", code=1).stdout)
    assert (said["valid"], said["index"], said["record"]) == (False, 1, lines[1]["record"]["id"])


def test_an_export_line_of_exactly_the_limit_verifies_one_byte_more_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX_TRACE_LINE_BYTES counts a line's bytes with its newline, at the CLI's reader and at
    the loader alike: an honest line padded with JSON whitespace to exactly the limit (its
    newline included) verifies, in a file of two such lines; one byte more is refused before
    it is parsed (OSError: exit 4), naming its line. (The largest bundle a log writes is
    within MAX_SERVICE_MESSAGE, half the limit: test_review47b_limits, test_review47o.)"""
    lines = [_text(line) for line in _lines(_log(tmp_path / "trace.db", 2))]
    most = limits.MAX_TRACE_LINE_BYTES

    def padded(line: bytes, size: int) -> bytes:
        return line[:-1] + b" " * (size - len(line) - 1) + b"}\n"

    exact = tmp_path / "exact.jsonl"
    exact.write_bytes(padded(lines[0], most) + padded(lines[1], most))
    assert verify_export([padded(line, most) for line in lines]).records == 2
    over = tmp_path / "over.jsonl"
    over.write_bytes(padded(lines[0], most) + padded(lines[1], most + 1))
    with pytest.raises(TraceError) as caught:
        verify_bundle(padded(lines[1], most + 1))
    assert caught.value.reason is _F.MALFORMED
    monkeypatch.setenv("TROTH_HOME", str(tmp_path / "fresh"))
    run("node", "init", "verifier")
    assert run("trace", "verify", "--file", str(exact)).stdout.startswith("unanchored: 2 rec")
    result = run("trace", "verify", "--file", str(over), code=4)
    assert "line 2 is longer than" in result.output + result.stderr
