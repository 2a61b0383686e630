"""Trace benchmarks: durable signed appends against the raw Ed25519 signing rate, verifying a
100,000-record log against its floor (signature verifications and hashes), and proofs.

The appends run on a node's trace log (`synchronous = FULL`: each commit fsynced) from several
agents at once, so group commit shares the commits, as a busy log would. `trace.append.ceiling`
times, beside the same floor, a bare durable signed append doing only the least of that work
(`bare_append`): how far any pure-Python design gets."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from troth.bench.bare_append import bare_appends
from troth.bench.durable_floor import DurableWrite
from troth.bench.harness import Case, Measurement, measure_pair, ratio_target, smoking
from troth.bench.trace_processes import BATCH, agent_processes
from troth.clock import FixedClock
from troth.crypto.bench_floor import ed25519_sign_loop, ed25519_verify_loop
from troth.node import Node, init_node, open_node
from troth.trace import (
    Decision,
    Kind,
    Links,
    RecordContent,
    ToolCall,
    TraceLog,
    TraceRecorder,
    open_node_log,
)
from troth.trace.merkle import verify_inclusion
from troth.trace.verify import verify_log

NOW = 1_790_000_000
_US = 1e6
_THREADS = 16
_PROCESSES = 2

CONTENT = RecordContent(
    Kind.TOOL_INVOCATION,
    tool=ToolCall("refund", "call_1"),
    values={"args": '{"order_id":"o1","amount":20}', "result": "ok"},
    decision=Decision("allow", "7", ("refund",)),
    links=Links(conversation="conv-1"),
)


def _recorders(node: Node, log: TraceLog, clock: FixedClock, count: int) -> list[TraceRecorder]:
    created = node.identities.create_many(count, now=NOW, name_prefix="agent")
    identities = node.identities
    return [
        TraceRecorder(log, identities.signer(local.name or "", now=NOW), clock=clock)
        for local in created
    ]


def _concurrently(recorders: list[TraceRecorder], batch: int) -> Callable[[int], float]:
    """About n appends spread over the recorders' threads, each appending `batch` at a time;
    returns the seconds per record actually appended."""

    def run(n: int) -> float:
        calls = max(1, n // (len(recorders) * batch))

        def work(recorder: TraceRecorder) -> None:
            for _ in range(calls):
                if batch == 1:
                    recorder.record(CONTENT)
                else:
                    recorder.record_many([CONTENT] * batch)

        threads = [threading.Thread(target=work, args=(r,)) for r in recorders]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return (time.perf_counter() - start) / (calls * batch * len(recorders))

    return run


@contextmanager
def _bench_log() -> Iterator[tuple[TraceLog, list[TraceRecorder]]]:
    """A fresh node's trace log and the recorders of its agents."""
    with _bench_node() as (_, node, log, clock):
        yield log, _recorders(node, log, clock, _THREADS)


@contextmanager
def _bench_node() -> Iterator[tuple[Path, Node, TraceLog, FixedClock]]:
    """A fresh node "bench" (its home), its trace log and the clock it runs on."""
    with tempfile.TemporaryDirectory(prefix="troth-bench-") as tmp:
        home = Path(tmp)
        init_node("bench", home=home)
        clock = FixedClock(NOW)
        with open_node("bench", home=home) as node, open_node_log(node, clock=clock) as log:
            yield home, node, log, clock


def _append(quick: bool) -> list[Measurement]:
    n, rounds = (800, 2) if quick else (4000, 5)
    results = [_append_processes(n, rounds)]
    with _bench_log() as (log, recorders), tempfile.TemporaryDirectory() as tmp:
        for name, agents, batch in (
            ("trace.append.concurrent", _THREADS, 1),
            ("trace.append.batched", 2, 128),
        ):
            description = f"{agents} agents (threads), {batch} record(s) per append call"
            subject = _concurrently(recorders[:agents], batch)
            size_before, commits_before = log.size(), log.commits
            value, floor = measure_pair(subject, ed25519_sign_loop(1), n=n, rounds=rounds)
            rate, floor_rate = 1 / value, 1 / floor
            ratio = rate / floor_rate
            results.append(
                Measurement(
                    name,
                    rate,
                    "records/s",
                    "floor: raw Ed25519 signatures per second (one thread)",
                    floor_rate,
                    ratio,
                    ">= 0.5x",
                    ratio >= 0.5,
                    {
                        "appenders": description,
                        "durability": "each commit fsynced (WAL, synchronous=FULL)",
                        "records_per_commit": round(
                            (log.size() - size_before) / max(1, log.commits - commits_before),
                            1,
                        ),
                    },
                )
            )
        results.append(_commit_chain_bound(Path(tmp), n=max(50, n // 16), rounds=rounds))
        recorders[0].record(CONTENT)
        envelope = json.loads(next(iter(log.stored())).envelope)
        template = json.loads(base64.b64decode(envelope["payload"]))
        with bare_appends(Path(tmp), template) as bare:
            value, floor = measure_pair(bare, ed25519_sign_loop(1), n=n, rounds=rounds)
        results.append(
            Measurement(
                "trace.append.ceiling",
                1 / value,
                "records/s",
                "floor: raw Ed25519 signatures per second (one thread)",
                1 / floor,
                floor / value,
                extra={
                    "subject": "bare durable signed append in Python (troth.bench.bare_append): "
                    "JSON, DSSE, Ed25519, 128 per fsynced SQLite commit in a second thread",
                },
            )
        )
    return results


def _commit_chain_bound(directory: Path, *, n: int, rounds: int) -> Measurement:
    """`trace.append.concurrent.bound`: the most any log that answers an append only once its
    record is durable can take from `_THREADS` appenders with one record in flight each: at
    best every commit carries one record of each, so the rate is at most `_THREADS` records
    per fsynced commit. The commit (one row, WAL, `synchronous = FULL`, on the disk the log is
    on) is timed beside the same floor as the rows above."""
    commit = DurableWrite(directory / "commit-bound.db", durability="full")

    def commits(k: int) -> None:
        for _ in range(k):
            commit()

    try:
        value, floor = measure_pair(commits, ed25519_sign_loop(1), n=n, rounds=rounds)
    finally:
        commit.close()
    rate = _THREADS / value
    return Measurement(
        "trace.append.concurrent.bound",
        rate,
        "records/s",
        "floor: raw Ed25519 signatures per second (one thread)",
        1 / floor,
        rate * floor,
        extra={
            "subject": f"{_THREADS} records per fsynced SQLite commit (one-row commit timed: "
            f"{value * 1e3:.2f} ms): the bound of trace.append.concurrent's appenders, one "
            "record in flight each, whatever the log's design",
        },
    )


def _append_processes(n: int, rounds: int) -> Measurement:
    """`trace.append.processes`: agents in processes of their own (troth.bench.trace_processes)
    appending batches of 128 to one node's trace log."""
    with _bench_node() as (home, node, _log, _):
        names = [[f"proc-{p}"] for p in range(_PROCESSES)]
        for (name,) in names:
            node.identities.create(now=NOW, name=name)
        with agent_processes(home, "bench", names, now=NOW, content=CONTENT) as workers:
            value, floor = measure_pair(workers.batch, ed25519_sign_loop(1), n=n, rounds=rounds)
            per_commit = workers.appended / max(1, workers.commits)
            # the same processes signing bare, beside the same floor: the cores they had
            both, alone = measure_pair(workers.signing, ed25519_sign_loop(1), n=n, rounds=rounds)
    ratio = floor / value
    return Measurement(
        "trace.append.processes",
        1 / value,
        "records/s",
        "floor: raw Ed25519 signatures per second (one thread)",
        1 / floor,
        ratio,
        ">= 0.5x",
        ratio >= 0.5,
        {
            "appenders": f"{_PROCESSES} agents, each in a process of its own, {BATCH} records "
            "per append call, one node's trace log",
            "durability": "each commit fsynced (WAL, synchronous=FULL)",
            "records_per_commit": round(per_commit, 1),
            # ~1.9 with a second core free, ~1.0 without: then the row, CPU-bound at ~2.5
            # signatures' worth a record, reads ~0.4x (benchmarks/README.md, "Pass 72g")
            "processes_signing_bare": round(alone / both, 2),
            "of_processes_signing_bare": round(both / value, 3),
        },
    )


def _verify_floor(count: int, envelope: bytes, payload: bytes) -> Callable[[int], float]:
    """Per record: one Ed25519 key load + verification, and the SHA-256s a verifier cannot
    skip: the leaf, the record hash, one tree node, the two disclosure commitments."""
    verify = ed25519_verify_loop(1)
    leaf, node, disclosure = b"\x00" + envelope, b"\x01" + bytes(64), bytes(80)
    sha = hashlib.sha256

    def log(_: int) -> None:
        verify(count)
        for _ in range(count):
            sha(leaf).digest()
            sha(payload).digest()
            sha(node).digest()
            sha(disclosure).digest()
            sha(disclosure).digest()

    return whole_logs(log, count)


def whole_logs(verify: Callable[[int], object], count: int) -> Callable[[int], float]:
    """A batch of about n records' worth of `verify(i)` calls, each over a whole log of `count`
    records, at least one (a batch shorter than the log, the warm-up's or a smoke run's, ran
    none: review 62g, bench 2); returns its own seconds per record."""

    def batch(n: int) -> float:
        logs = max(1, n // count)
        start = time.perf_counter()
        for i in range(logs):
            verify(i)
        return (time.perf_counter() - start) / (logs * count)

    return batch


def _verify_and_prove(quick: bool) -> list[Measurement]:
    # a smoke run verifies a small log: every whole-log batch verifies one (review 62g, bench 2)
    size = 256 if smoking() else 2_000 if quick else 100_000
    rounds = 1 if quick else 3
    results = []
    with _bench_log() as (log, recorders):
        _concurrently(recorders, max(1, min(256, size // len(recorders))))(size)
        while log.size() < size:
            recorders[0].record(CONTENT)
        checkpoint = log.checkpoint()
        size = checkpoint.size
        sample = next(iter(log.stored()))
        payload = hashlib.sha256(sample.envelope).digest()  # (size only matters)
        floor_batch = _verify_floor(size, sample.envelope, payload * 20)

        subject = whole_logs(lambda _: verify_log(log), size)
        value, floor = measure_pair(subject, floor_batch, n=size, rounds=rounds)
        ratio = value / floor
        target, ok = ratio_target(ratio, 2.0)
        results.append(
            Measurement(
                f"trace.verify.{size // 1000}k" if size >= 1000 else f"trace.verify.{size}",
                value * size,
                "s/log",
                "floor: per record 1 Ed25519 key load + verify and 5 SHA-256",
                floor * size,
                ratio,
                target,
                ok,
                {"records": checkpoint.size, "agents": _THREADS},
            )
        )
        results.extend(_proofs(log, checkpoint.size, checkpoint.root, rounds=2 + rounds))
    return results


def _proofs(log: TraceLog, size: int, root: bytes, *, rounds: int) -> list[Measurement]:
    """Proofs generated from the log's SQLite file (each at a fresh random index, so no page
    of one is warm from the same proof before) and checked, each beside the hashes of a proof
    of the log's depth, rounds interleaved (they were timed once, the floor after them, no
    warm-up: review 62g, bench 3)."""
    count = 200
    indices = [int.from_bytes(os.urandom(4)) % size for _ in range(count)]
    leaves = {i: log.records(i, i + 1).__next__().leaf for i in indices}
    proofs = [log.inclusion_proof(i, size) for i in indices]
    depth = math.ceil(math.log2(size))
    sha = hashlib.sha256

    def floor(k: int) -> None:
        for _ in range(k):
            for _ in range(depth):
                sha(bytes(65)).digest()

    def generate(k: int) -> None:
        for _ in range(k):
            log.inclusion_proof(int.from_bytes(os.urandom(4)) % size, size)

    def check(k: int) -> None:
        for j in range(k):
            index = indices[j % count]
            verify_inclusion(index, size, leaves[index], proofs[j % count], root)

    def consistency(k: int) -> None:
        for _ in range(k):
            log.consistency_proof(max(1, int.from_bytes(os.urandom(4)) % size), size)

    rows = []
    for name, subject, extra in (
        (
            "trace.proof.inclusion.generate",
            generate,
            {"from": "the log's SQLite file (stored subtrees every 4 levels)"},
        ),
        ("trace.proof.inclusion.verify", check, {}),
        ("trace.proof.consistency.generate", consistency, {}),
    ):
        value, base = measure_pair(subject, floor, n=count, rounds=rounds)
        rows.append(
            Measurement(
                name,
                value * _US,
                "us/proof",
                f"floor: {depth} SHA-256 (a proof's hashes)",
                base * _US,
                value / base,
                extra=extra,
            )
        )
    return rows


CASES = [Case("trace.append", _append), Case("trace.verify", _verify_and_prove)]
