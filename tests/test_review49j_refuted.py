"""Review 49j, attacks on offline trace verification that the code refused (or answered as
promised): they pin what holds. DSSE envelopes with two signatures, payload numbers outside
I-JSON, Unicode and whitespace in a checkpoint's origin line, other keys' signature lines,
a bundle's index out of range, and the checkpoint a log's verifier kept corrupted or another
log's.
"""

from __future__ import annotations

import base64
import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from tests.test_review48b_refuted import _lines, _log, _text
from troth.clock import FixedClock
from troth.errors import DecodeError, TraceError, TraceFailure
from troth.trace import AnchorStatus, verify_log
from troth.trace.checkpoint import format_note, parse_note
from troth.trace.export import verify_bundle
from troth.trace.record_decode import decode_payload
from troth.trace.signing import open_envelope, sign_record

_F = TraceFailure


@pytest.fixture(scope="module")
def line() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        return _lines(_log(Path(directory) / "trace.db"))[1]


def _refused(value: dict[str, Any]) -> TraceError:
    with pytest.raises(TraceError) as caught:
        verify_bundle(_text(value))
    return caught.value


def test_a_dsse_envelope_with_two_signatures_is_refused(line: dict[str, Any]) -> None:
    """One valid and one not, or the same twice under two keyids: exactly one signature."""
    envelope = json.loads(line["envelope"])
    good = envelope["signatures"][0]
    bad = {"keyid": good["keyid"], "sig": base64.b64encode(bytes(64)).decode()}
    other = {"keyid": "0" * 64, "sig": good["sig"]}
    for signatures in ([good, bad], [bad, good], [good, other], [good, good]):
        edited = copy.deepcopy(line)
        edited["envelope"] = json.dumps(
            {**envelope, "signatures": signatures}, separators=(",", ":")
        )
        error = _refused(edited)
        assert error.reason is _F.MALFORMED, error
        assert "2 signatures" in error.detail, error


def test_payload_numbers_outside_ijson_or_not_canonical_are_refused() -> None:
    """A record's payload: a seq past 2**53, -0, 0.0, 1e0 (RFC 8785 spells 0 one way); a
    value past I-JSON's range cannot be signed."""
    signed = sign_record(Held().signer(NOW), tool_call(), seq=0, prev=None, time=NOW)
    payload = open_envelope(signed.envelope)[1]
    for spelt in (b'"seq":9007199254740993', b'"seq":-0', b'"seq":0.0', b'"seq":1e0'):
        with pytest.raises(DecodeError):
            decode_payload(payload.replace(b'"seq":0', spelt, 1))
    for value in (2**53 + 1, float("inf")):
        with pytest.raises(ValueError, match="JSON"):
            sign_record(
                Held().signer(NOW), tool_call(args={"n": value}), seq=0, prev=None, time=NOW
            )


@pytest.mark.parametrize(
    "edit",
    [
        lambda o: o.replace("troth.trace/", "troth.trace/\u200b", 1),
        lambda o: o + " ",
        lambda o: o.replace("troth.trace/", "troth.trace/\u00a0", 1),
        lambda o: o.replace("troth.trace/", "TROTH.trace/", 1),
        lambda o: o.replace("troth.trace/", "troth.trace//", 1),
    ],
)
def test_an_origin_line_respelt_is_refused(line: dict[str, Any], edit: Any) -> None:
    """Unicode and whitespace in the origin line (the text and the signature line's name
    both, so the name still matches): the origin must be the log's, byte for byte."""
    note = line["checkpoint"]
    origin = note.split("\n", 1)[0]
    edited = copy.deepcopy(line)
    edited["checkpoint"] = note.replace(origin, edit(origin))
    assert _refused(edited).reason is _F.CHECKPOINT_INVALID


def test_other_keys_signature_lines_are_skipped(line: dict[str, Any]) -> None:
    """A witness's line, a line under another name with the log's key id, the log's own line
    twice: the log's good signature decides."""
    text, signatures = parse_note(line["checkpoint"].encode())
    name, key_id, signature = signatures[0]
    for extra in (
        [("witness.example/w", b"abcd", bytes(64))],
        [("troth.trace/other", key_id, bytes(64))],
        [(name, key_id, signature)],
    ):
        edited = copy.deepcopy(line)
        edited["checkpoint"] = format_note(text, [*extra, *signatures]).decode()
        assert verify_bundle(_text(edited)).status is AnchorStatus.UNANCHORED


@pytest.mark.parametrize("index", [-1, 3, 2**53 - 1, 2**53, 10**30])
def test_a_bundle_index_out_of_range_is_refused(line: dict[str, Any], index: int) -> None:
    edited = copy.deepcopy(line)
    edited["index"] = index
    assert _refused(edited).reason in (_F.MALFORMED, _F.PROOF_INVALID)


def _kept(tmp_path: Path) -> tuple[Any, bytes]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    recorder(log, Held(), clock).record(tool_call())
    note = log.checkpoint().note
    assert verify_log(log, anchor=note).status is AnchorStatus.VALID
    return log, note


def test_a_kept_checkpoint_corrupted_or_another_logs_is_never_valid(tmp_path: Path) -> None:
    """The file a log's verifier keeps, corrupted (a signature byte, the size, emptied) or
    replaced by another log's: refused (exit 1 at the CLI), never `valid` and never a silent
    `unanchored`."""
    log, note = _kept(tmp_path)
    text, signatures = parse_note(note)
    ((name, key_id, signature),) = signatures
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    (tmp_path / "other").mkdir()
    _other, other_note = _kept(tmp_path / "other")
    for bad in (
        format_note(text, [(name, key_id, flipped)]),
        note.replace(b"\n1\n", b"\n0\n", 1),
        b"",
        other_note,
    ):
        with pytest.raises(TraceError) as caught:
            verify_log(log, anchor=bad)
        assert caught.value.reason is _F.CHECKPOINT_INVALID, (bad, caught.value)


def test_a_payload_with_a_duplicate_member_is_refused() -> None:
    """RFC 8785 has one spelling: a member twice (either value first) is not it."""
    signed = sign_record(Held().signer(NOW), tool_call(), seq=0, prev=None, time=NOW)
    payload = open_envelope(signed.envelope)[1]
    for twice in (b'"seq":0,"seq":1', b'"seq":1,"seq":0', b'"seq":0,"seq":0'):
        with pytest.raises(DecodeError):
            decode_payload(payload.replace(b'"seq":0', twice, 1))


@pytest.mark.parametrize(
    "edit",
    [
        lambda n: n.replace("\n\n", "\nextra line\n\n", 1),  # a second extension line
        lambda n: n.replace("\ntroth-time", "\n\ntroth-time", 1),  # an empty line in the text
        lambda n: n.replace("\n\n", "\n\n\n", 1),  # an empty line ending the text
        lambda n: n.replace("troth-time ", "troth-time  ", 1),
        lambda n: n.replace("troth-time ", "troth-time +", 1),
    ],
)
def test_a_checkpoint_with_extra_lines_is_refused(line: dict[str, Any], edit: Any) -> None:
    """The text is signed: an edited note no longer verifies, and most edits do not parse."""
    edited = copy.deepcopy(line)
    edited["checkpoint"] = edit(line["checkpoint"])
    assert edited["checkpoint"] != line["checkpoint"]
    assert _refused(edited).reason is _F.CHECKPOINT_INVALID
