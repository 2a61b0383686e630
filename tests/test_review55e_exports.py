"""Review 55e: offline verification of a JSONL export (`troth trace verify --file`).

exports 1: every line of an export carries the same signer history, the same log history and
attestation and the same checkpoint note (an honest export: one checkpoint for all lines), and
`verify_export` verified them again at every line: six Ed25519 verifications per record (the
signer's history, its key's attestation, the log's history, the log key's attestation, the
checkpoint note, the record) where `verify_log` does one, so a 100,000-record export took
about ten times as long as the log it came from. What the lines repeat is now verified once
per export (a memo bounded by MAX_TRACE_EXPORT_MEMO entries, so lines that all differ cost
no more memory than the lines themselves); each record's own signature, disclosures, chain
and inclusion proof are still checked at its line.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.crypto import keys
from troth.trace.export import export_jsonl, verify_export

RECORDS = 24


def _export(tmp_path: Path, agents: int = 1) -> list[bytes]:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    signers = [recorder(log, Held(), clock) for _ in range(agents)]
    for number in range(RECORDS):
        signers[number % agents].record(tool_call())
    out = io.StringIO()
    export_jsonl(log, out)
    log.close()
    return out.getvalue().encode().splitlines()


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many Ed25519 signatures are verified (each loads the public key once)."""
    counted = [0]
    load: Callable[[bytes], Any] = keys._load_ed25519

    def counting(data: bytes) -> Any:
        counted[0] += 1
        return load(data)

    monkeypatch.setattr(keys, "_load_ed25519", counting)
    return counted


@pytest.mark.parametrize("agents", [1, 3])
def test_exports1_what_the_lines_repeat_is_verified_once(
    tmp_path: Path, verifications: list[int], agents: int
) -> None:
    lines = _export(tmp_path, agents)
    verifications[0] = 0
    report = verify_export(lines)
    assert (report.records, report.agents) == (RECORDS, agents)
    # one per record, and each history, attestation and the note once
    assert verifications[0] <= RECORDS + 2 * agents + 3
