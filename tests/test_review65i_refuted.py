"""Review 65i: attacks on signed traces that did not work (each would fail if the defence it
names broke).

- A checkpoint naming the log in another spelling of its identifier (the DID form,
  `troth.trace/did:troth:...`), so that the kept note's origin differs and the line is
  "another log's" (`unanchored`), is refused: a checkpoint's origin must be the log
  identity's text form exactly (`verify_checkpoint`), though `Identifier.parse` reads both.
- No one without a log key makes an honest export read INCONSISTENT against a kept note
  (the refusal review 65i traces 1 now makes whoever signed the larger checkpoint): any
  hash of the kept size's last line's inclusion proof edited, left sibling or right, fails
  the proof against the signed root first (PROOF_INVALID), before its prefix root is read.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace.checkpoint import (
    ORIGIN_PREFIX,
    format_note,
    note_key_id,
    parse_checkpoint,
)
from troth.trace.export import export_jsonl, verify_bundle
from troth.trace.signing import resolve_key


def grown(tmp_path: Path) -> tuple[bytes, list[bytes], Held]:
    """A log of 3 records checkpointed (the kept note), grown to 6 (its export's lines) and
    its owner."""
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    log = open_log(tmp_path / "log.db", clock, owner)
    for _ in range(3):
        recorder(log, agent, clock).record(tool_call())
    kept = log.checkpoint().note
    for _ in range(3):
        recorder(log, agent, clock).record(tool_call())
    out = io.StringIO()
    export_jsonl(log, out)
    log.close()
    return kept, out.getvalue().encode().splitlines(), owner


def test_a_checkpoint_naming_the_log_in_did_form_is_refused(tmp_path: Path) -> None:
    kept, lines, owner = grown(tmp_path)
    line = json.loads(lines[2])
    signed = parse_checkpoint(line["checkpoint"].encode())[0]
    signer = owner.signer(NOW)
    origin = ORIGIN_PREFIX + owner.identifier.did
    root = base64.b64encode(signed.root).decode()
    body = f"{origin}\n{signed.size}\n{root}\ntroth-time {signed.time}\n".encode()
    key = resolve_key(signer.identity, signer.attestation).key
    line["checkpoint"] = format_note(
        body, [(origin, note_key_id(origin, key), signer.sign(body))]
    ).decode()
    assert parse_checkpoint(line["checkpoint"].encode())[0].origin == origin
    with pytest.raises(TraceError) as caught:
        verify_bundle(json.dumps(line).encode(), anchor=kept)
    assert caught.value.reason is TraceFailure.CHECKPOINT_INVALID
    assert "is not the log" in str(caught.value), caught.value


def test_an_edited_proof_hash_is_no_fork(tmp_path: Path) -> None:
    kept, lines, _ = grown(tmp_path)
    line = json.loads(lines[2])
    assert len(line["proof"]) >= 2  # index 2 in 6 leaves: a left sibling and right ones
    for at in range(len(line["proof"])):
        edited = dict(line)
        proof = list(line["proof"])
        proof[at] = ("00" if proof[at][:2] != "00" else "01") + proof[at][2:]
        edited["proof"] = proof
        with pytest.raises(TraceError) as caught:
            verify_bundle(json.dumps(edited).encode(), anchor=kept)
        assert caught.value.reason is TraceFailure.PROOF_INVALID, at
