"""Review 65i: signed traces attacked end to end (issue #13).

1. A forked export signed by a renewed log key read `unanchored`. Since review 63s (traces
   1) an export's line of the kept size's last record proves whether its larger checkpoint
   grew from the verifier's kept one, but only when that line's log material signs the kept
   note (the stolen-old-key case: a thief's checkpoint of the honest root, handed with the
   log's history from before the rotation, must not read `valid`). So the log's operator
   that forks its log after a verifier kept a note only had to rotate (or renew) the log's
   key first: the fork's lines carry the attestation of the key that signed the fork's
   checkpoint alone (as every honest export does), the kept note's key is not among them,
   and the fork read `unanchored`, exit 0, as 63s found before its fix. A line whose first
   records hash to another root than the kept one is a fork whoever signed its checkpoint
   (that checkpoint verified under the line's own history of the same log identity: only a
   holder of one of the log's keys signs one), so it is now refused INCONSISTENT whether
   or not its log material signs the kept note; a matching prefix still needs that to read
   `valid` (else `unanchored`, as before). A thief of the log's pre-rotation key who signs
   a fork's checkpoint and hands the history from before the rotation is refused the same
   way (it read `unanchored`).
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import TraceLog
from troth.trace.checkpoint import AnchorStatus, parse_checkpoint, sign_checkpoint
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.signing import resolve_key


def renewed_fork(tmp_path: Path) -> tuple[bytes, list[bytes], list[bytes]]:
    """A log of 3 records checkpointed (the kept note); the log's key rotated; a fork of its
    first 2 records grown to 4 and checkpointed by the new key; the real log grown to 5 under
    the new key. Returns the kept note and the two exports' lines."""
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    real = open_log(tmp_path / "real.db", clock, owner)
    for _ in range(2):
        recorder(real, agent, clock).record(tool_call())
    real.close()
    for suffix in ("", "-wal", "-shm"):
        if (tmp_path / f"real.db{suffix}").exists():
            shutil.copy(tmp_path / f"real.db{suffix}", tmp_path / f"fork.db{suffix}")
    real = open_log(tmp_path / "real.db", clock, owner)
    recorder(real, agent, clock).record(tool_call("real-3"))
    kept = real.checkpoint().note
    real.close()
    owner.rotate(NOW + 100)
    later = FixedClock(NOW + 200)
    fork = open_log(tmp_path / "fork.db", later, owner)
    forked = recorder(fork, agent, later)
    forked.record(tool_call("forked-3"))
    forked.record(tool_call("forked-4"))
    fork_out = io.StringIO()
    export_jsonl(fork, fork_out)
    fork.close()
    real = open_log(tmp_path / "real.db", later, owner)
    grown = recorder(real, agent, later)
    grown.record(tool_call("real-4"))
    grown.record(tool_call("real-5"))
    real_out = io.StringIO()
    export_jsonl(real, real_out)
    real.close()
    forked_lines = fork_out.getvalue().encode().splitlines()
    return kept, forked_lines, real_out.getvalue().encode().splitlines()


def test_a_fork_checkpointed_by_a_renewed_log_key_is_refused(tmp_path: Path) -> None:
    """Traces 1: the fork's export (and its bundle of record 2) is INCONSISTENT against the
    kept note; it read `unanchored`, the renewed key's lines not signing the kept note."""
    kept, forked, _ = renewed_fork(tmp_path)
    with pytest.raises(TraceError) as caught:
        verify_export(forked, anchor=kept)
    assert caught.value.reason is TraceFailure.INCONSISTENT
    assert caught.value.index == 2
    with pytest.raises(TraceError) as bundle:
        verify_bundle(forked[2], anchor=kept)
    assert bundle.value.reason is TraceFailure.INCONSISTENT


def test_the_honest_log_grown_under_a_renewed_key_stays_unanchored(tmp_path: Path) -> None:
    """Traces 1, as fixed: the real log's export under the new key, whose lines do not carry
    the kept note's key, is not refused: `unanchored`, as before (its prefix matches, but
    `valid` needs log material that signs the kept note)."""
    kept, _, grown = renewed_fork(tmp_path)
    assert verify_export(grown, anchor=kept).status is AnchorStatus.UNANCHORED
    assert verify_bundle(grown[2], anchor=kept).status is AnchorStatus.UNANCHORED


def test_a_stolen_old_log_keys_fork_is_refused_too(tmp_path: Path) -> None:
    """Traces 1, as fixed: a thief of the log's key from before the rotation signs a
    checkpoint of a forked tree dated after the rotation, and hands its line of the kept
    size's last record with the log's history from before the rotation (in which the old key
    is current): INCONSISTENT, the kept note being signed by the new key (it read
    `unanchored`). The honest root so signed stays `unanchored` (review 63s: never `valid`)."""
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    old = owner.signer(NOW)
    real = open_log(tmp_path / "real.db", clock, owner)
    for _ in range(2):
        recorder(real, agent, clock).record(tool_call())
    real.close()
    for suffix in ("", "-wal", "-shm"):
        if (tmp_path / f"real.db{suffix}").exists():
            shutil.copy(tmp_path / f"real.db{suffix}", tmp_path / f"fork.db{suffix}")
    owner.rotate(NOW + 100)
    later = FixedClock(NOW + 200)
    real = open_log(tmp_path / "real.db", later, owner)
    grown = recorder(real, agent, later)
    grown.record(tool_call("real-3"))
    kept = real.checkpoint().note  # by the new key
    grown.record(tool_call("real-4"))
    real_lines = _lines(real)
    real.close()
    fork = open_log(tmp_path / "fork.db", later, owner)
    forked = recorder(fork, agent, later)
    forked.record(tool_call("forked-3"))
    forked.record(tool_call("forked-4"))
    fork_lines = _lines(fork)
    fork.close()
    stolen = {
        "history": base64.b64encode(old.identity.history).decode(),
        "attestations": [base64.b64encode(old.attestation).decode()],
    }
    epoch = resolve_key(old.identity, old.attestation)

    def resigned(text: bytes) -> bytes:
        line = json.loads(text)
        signed = parse_checkpoint(line["checkpoint"].encode())[0]
        line["checkpoint"] = sign_checkpoint(
            old, epoch, signed.size, signed.root, NOW + 300
        ).note.decode()
        line["log"] = stolen
        return json.dumps(line).encode()

    with pytest.raises(TraceError) as caught:
        verify_bundle(resigned(fork_lines[2]), anchor=kept)
    assert caught.value.reason is TraceFailure.INCONSISTENT
    report = verify_bundle(resigned(real_lines[2]), anchor=kept)
    assert report.status is AnchorStatus.UNANCHORED


def _lines(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return out.getvalue().encode().splitlines()
