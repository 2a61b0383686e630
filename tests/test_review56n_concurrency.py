"""Review 56n, concurrency 1 (review 56d's finding, with real processes): processes of one node
revoking at once. Each revocation commits in node.db, then is recorded as the next record of
the authority's chain in the node's trace log; another process's record appended between the
head's read and the append had it refused (CHAIN_BROKEN), and the recorder gave up after three
tries: the revocation stood, the call failed (StorageError; the CLI exits 4) and the trace
lacked its record. Here three processes revoke at once, released together, and every
revocation must be recorded, in one unbroken chain. (The deterministic variant, another
process appending between each head read and append: tests/test_review56d_concurrency.py.)"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import troth
import troth.limits
import troth.trace.recorder
from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock, SystemClock
from troth.errors import TraceError, TraceFailure
from troth.node import open_node
from troth.trace.log import TraceLog, open_node_log
from troth.trace.recorder import TraceRecorder
from troth.trace.signing import RecordContent, VerifiedRecord, sign_next
from troth.trace.verify import verify_log

_PROCESSES = 3
_EACH = 12

_REVOKER = """\
import os, sys, troth
from troth.errors import StorageError
with troth.Node.open("acme") as node:
    authority = node.authority()
    print("ready", flush=True)
    sys.stdin.readline()  # every process is ready: go
    failed = 0
    for _ in range(int(sys.argv[1])):
        try:
            authority.revoke(os.urandom(32))
        except StorageError as exc:
            failed += 1
            print(exc, file=sys.stderr)
sys.exit(1 if failed else 0)
"""


def test_concurrency1_revocations_of_processes_at_once_are_all_recorded(troth_home: Path) -> None:
    with troth.Node.open("acme") as acme:
        authority = acme.create_authority()
        authority.revoke(b"\1" * 32)  # the chain's first record: the log exists
        agent = authority.identifier
    with open_node("acme") as node, open_node_log(node, clock=SystemClock()) as log:
        head = log.head(agent)
        assert head is not None
        first = head[0]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _REVOKER, str(_EACH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(_PROCESSES)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [(child.wait(timeout=60), child.stderr) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    failures = [stderr.read() for code, stderr in results if code != 0 and stderr is not None]
    assert failures == []
    with open_node("acme") as node, open_node_log(node, clock=SystemClock()) as log:
        head = log.head(agent)
        assert head is not None
        assert head[0] == first + _PROCESSES * _EACH  # none lost
        verify_log(log)  # one unbroken chain


# -- in one process: two logs on one file, as two processes have ------------------------------


def _interloped(
    monkeypatch: pytest.MonkeyPatch, path: Path, times: int | None
) -> tuple[TraceRecorder, list[int]]:
    """A recorder of an agent on the log at `path`, and another recorder of the agent on a log
    of its own on that file (another process's) that appends a record of the agent between
    each of the first one's signing and its append, `times` times (None: always)."""
    clock = FixedClock(NOW)
    agent = Held()
    first = recorder(open_log(path, clock), agent, clock)
    other = recorder(TraceLog.open(path, clock=clock), agent, clock)
    first.record(tool_call())
    signed = first._signed
    interloped: list[int] = []

    def signed_then_other_records(content: RecordContent, renew: bool) -> VerifiedRecord:
        record = signed(content, renew)
        if times is None or len(interloped) < times:
            interloped.append(other.record(tool_call()).index)
        return record

    monkeypatch.setattr(first, "_signed", signed_then_other_records)
    return first, interloped


def test_concurrency1_a_record_is_signed_again_past_three_conflicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording, interloped = _interloped(monkeypatch, tmp_path / "trace.db", 6)
    receipt = recording.record(tool_call())  # refused six times over: no count, a deadline
    assert interloped == [1, 2, 3, 4, 5, 6]
    assert receipt.index == 7


def test_concurrency1_a_peer_that_always_comes_first_fails_it_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(troth.limits, "MAX_TRACE_CHAIN_RETRY_SECONDS", 0.2)
    recording, interloped = _interloped(monkeypatch, tmp_path / "trace.db", None)
    with pytest.raises(TraceError) as refused:
        recording.record(tool_call())  # (without the deadline: forever)
    assert refused.value.reason is TraceFailure.CHAIN_BROKEN
    assert len(interloped) > 1


def test_concurrency1_a_refusal_with_the_head_unmoved_is_not_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FixedClock(NOW)
    recording = recorder(open_log(tmp_path / "trace.db", clock), Held(), clock)
    recording.record(tool_call())
    signed: list[int] = []

    def ahead(signer: Any, content: RecordContent, after: Any, **kwargs: Any) -> VerifiedRecord:
        signed.append(after[0])
        return sign_next(signer, content, (after[0] + 5, *after[1:]), **kwargs)

    monkeypatch.setattr(troth.trace.recorder, "sign_next", ahead)
    with pytest.raises(TraceError) as refused:
        recording.record(tool_call())  # no race: it would be refused again and again
    assert refused.value.reason is TraceFailure.CHAIN_BROKEN
    assert signed == [0, 0]  # (the first refusal claims a head it was not signed on)


def test_concurrency1_a_record_not_refused_takes_no_turn_of_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path stays as it was: the leader's writer turn (a flock taken and let go per
    group commit), nothing per record, no chain turn."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    recording = recorder(log, Held(), clock)
    recording.record(tool_call())  # (the log's writer and its turn opened)
    flocks: list[int] = []
    flock = fcntl.flock

    def counted(file: Any, operation: int) -> None:
        flocks.append(operation)
        flock(file, operation)

    monkeypatch.setattr(fcntl, "flock", counted)
    commits = log.commits
    for _ in range(5):
        recording.record(tool_call())
    recording.record_many([tool_call() for _ in range(5)])
    assert log.commits - commits == 6
    assert flocks == [fcntl.LOCK_EX | fcntl.LOCK_NB, fcntl.LOCK_UN] * 6
    assert not (tmp_path / "trace.db.chains").exists()
