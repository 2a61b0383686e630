"""Review 51g, caches 1: a trace log remembered, in its process, every signing key and every
chain digest it had stored (`TraceLog` kept them so that an append skips storing them again),
for as long as it stayed open: a set that grows with each key. A member mints signing keys
freely (an attestation by its primary key, no rotation), so signing each record with a new
key (four per batch, MAX_TRACE_SUBMIT_KEYS) made the node's memory grow with the log for as
long as the node ran. The log now remembers at most TRACE_LOG_KNOWN_CACHE of each and starts
again past it (what it forgets it stores again with INSERT OR IGNORE: nothing changes on disk).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import DAY, NOW, Held, open_log, tool_call
from troth import limits
from troth.clock import FixedClock
from troth.crypto import KeyType
from troth.identity import Signer, attest_purpose_key
from troth.trace.signing import VerifiedRecord, sign_record
from troth.trace.verify import verify_log
from troth.vault import KeyPurpose

_RECORDS = 24


def _fresh_signer(agent: Held) -> Signer:
    """A new signing key of `agent` under its current change (what a member mints freely)."""
    handle = agent.vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    attestation = attest_purpose_key(
        agent.vault,
        agent.held.primary,
        agent.identity,
        KeyPurpose.SIGNING,
        agent.vault.public_key(handle),
        now=NOW,
        expires_at=NOW + DAY,
    )
    return Signer(agent.identity, agent.vault, handle, attestation, NOW + DAY)


def test_a_key_per_record_does_not_grow_the_logs_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "TRACE_LOG_KNOWN_CACHE", 8)
    log = open_log(tmp_path / "trace.db", FixedClock(NOW))
    agent = Held()
    prev: bytes | None = None
    signed: list[VerifiedRecord] = []
    first = _fresh_signer(agent)
    for seq in range(_RECORDS):
        signer = first if seq == 0 else _fresh_signer(agent)
        record = sign_record(signer, tool_call(), seq=seq, prev=prev, time=NOW)
        signed.append(record)
        prev = record.hash
    for start in range(0, _RECORDS, 4):  # a batch of four records, four new keys
        log.append_many(signed[start : start + 4])
    # what the log remembers in its process (white box: the memory itself is the finding)
    assert len(log._known_keys) <= 8
    assert len(log.attestations()) == _RECORDS  # every key stored all the same
    again = sign_record(first, tool_call(), seq=_RECORDS, prev=prev, time=NOW)  # forgotten
    log.append(again)
    assert len(log.attestations()) == _RECORDS
    log.checkpoint()
    assert verify_log(log).size == _RECORDS + 1
    log.close()
