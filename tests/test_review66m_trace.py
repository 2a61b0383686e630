"""Review 66m, trace.append.batched (a performance pass: benchmarks/README.md, "Pass 66m"): the
row read 0.36-0.40x after a9b58172 against 0.41x before (b97c5f42), the new tree lower in
each of three interleaved pairs. Counted, not timed: per appended record on the batched path
both trees make the same Python calls (145.48), the same SQL statements (1.094), the same
instructions (818.3 k / 818.4 k) and write the same WAL bytes (2,482.5); no file the path
runs changed between them. No finding: these pin the counts so that a growth on this path is
seen by a test, not guessed from a shared machine's clock."""

from __future__ import annotations

import cProfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support import profiled
from tests.support.statements import StatementCount
from troth.bench.trace_bench import CONTENT, _bench_node, _recorders
from troth.trace import TraceLog, TraceRecorder

BATCH = 128
CALLS = 2  # record_many calls counted (one per recorder, as the row's two agents)


@contextmanager
def _batched() -> Iterator[tuple[TraceLog, list[TraceRecorder]]]:
    """The row's log and two agents, each having appended a batch (keys cached, code warm)."""
    with _bench_node() as (_home, node, log, clock):
        recorders = _recorders(node, log, clock, 2)
        for recorder in recorders:
            recorder.record_many([CONTENT] * BATCH)
        yield log, recorders


def _append(recorders: list[TraceRecorder]) -> None:
    for recorder in recorders:
        recorder.record_many([CONTENT] * BATCH)


def test_python_calls_per_batched_record_stay_at_the_counted_146() -> None:
    with _batched() as (_log, recorders):
        profile = cProfile.Profile()
        profile.enable()
        _append(recorders)
        profile.disable()
    calls = profiled.calls(profile) / (CALLS * BATCH)
    # 144.50 here (256 records), 145.48 in both trees counted (1,024 records after 512): the
    # same calls; two more a record (a wrapper and a call in it) fail this. Counted through
    # pstats' rows, which keep one dataclass `__init__` of all (review 72g, perf 1): 146.57
    # here with each counted; 147.58 with the values' check signing shares with the batcher
    # (`signable_values`, review 74s: one call a record)
    assert 140 <= calls <= 148.5, calls


def test_sql_per_batched_record_is_one_data_version_and_a_commits_few(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    count = StatementCount(monkeypatch)
    with _batched() as (log, recorders):
        commits = log.commits
        with count.counting() as statements:
            _append(recorders)
        commits = log.commits - commits
    records = CALLS * BATCH
    assert statements.pop("PRAGMA data_version") == records  # the vault's check, per signature
    assert commits == CALLS  # one thread: each call's 128 records in one commit
    # per commit: BEGIN, the log's head, the duplicate look-up, (an agent's identity and head
    # when not known yet), the leaves 32 rows a statement, the tree's nodes (0-2), the size,
    # COMMIT: 12 a commit of 128 in the counted 1,024 records (1.094 a record with the PRAGMA)
    assert 10 * commits <= sum(statements.values()) <= 13 * commits, statements
