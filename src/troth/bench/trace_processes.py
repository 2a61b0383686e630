"""Durable signed appends by agents that run in processes of their own, as agents do, to one
node's trace log (`trace.append.processes`).

Each worker process opens the node and its trace log (`open_node_log`), signs as its own agent
(a `TraceRecorder` with the node's signer) and appends 128 records per `record_many`: each
process's records are committed by its own group commits, and SQLite's write lock orders the
processes' commits on the one file. The parent only tells the workers how many batches to
append and waits for all of them, so what is timed is the log's durable append rate with its
agents' Python in interpreters of their own (agents as threads of one process share one GIL:
`trace.append.batched`, benchmarks/gil_handoff.py).

The same workers also sign with a bare key, no log (`Workers.signing`): the raw Ed25519 rate
the row's processes get at once on this machine, which says how much of a second core was
free during the run (benchmarks/README.md, "Agents in processes").
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final

from troth.clock import FixedClock
from troth.crypto.bench_floor import ed25519_sign_loop
from troth.node import open_node
from troth.trace import RecordContent, TraceRecorder, open_node_log

__all__ = ["BATCH", "Workers", "agent_processes"]

BATCH: Final = 128
"""Records per `record_many` call."""
_READY: Final = "ready"
_SIGN: Final = "sign"


def _serve(
    home: str, node: str, agents: Sequence[str], now: int, content: RecordContent, conn: Connection
) -> None:
    """A worker: append `BATCH` records per call as each of `agents` (a thread each), as many
    calls as the parent asks, until it sends None; answer the records appended."""
    clock = FixedClock(now)
    with open_node(node, home=Path(home)) as opened, open_node_log(opened, clock=clock) as log:
        recorders = [
            TraceRecorder(log, opened.identities.signer(name, now=now), clock=clock)
            for name in agents
        ]
        for recorder in recorders:  # each agent's chain head is in the log before timing
            recorder.record(content)
        conn.send((_READY, log.commits))
        sign = ed25519_sign_loop(1)
        while (calls := conn.recv()) is not None:
            if isinstance(calls, tuple):  # (_SIGN, n): n bare signatures, no log
                sign(calls[1])
                conn.send((0, log.commits))
                continue

            def work(recorder: TraceRecorder, calls: int = calls) -> None:
                for _ in range(calls):
                    recorder.record_many([content] * BATCH)

            threads = [threading.Thread(target=work, args=(r,)) for r in recorders]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            conn.send((calls * BATCH * len(recorders), log.commits))


@contextmanager
def agent_processes(
    home: Path, node: str, agents: Sequence[Sequence[str]], *, now: int, content: RecordContent
) -> Iterator[Workers]:
    """A process per entry of `agents` (the local identity names it signs as), started and
    ready (their `batch` appends about n records across them); stops them on exit."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    with ExitStack() as stack:
        pipes: list[Connection] = []
        for names in agents:
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve, args=(str(home), node, list(names), now, content, child), daemon=True
            )
            process.start()
            stack.callback(process.join, 30)
            stack.callback(parent.send, None)
            pipes.append(parent)
        workers = Workers(pipes, BATCH * sum(len(names) for names in agents))
        for pipe in pipes:
            ready, commits = pipe.recv()
            if ready != _READY:
                raise RuntimeError("a trace benchmark worker did not start")
            workers.seen[pipe] = commits
        yield workers


@dataclass
class Workers:
    """The worker processes' pipes; what they appended and in how many group commits."""

    pipes: list[Connection]
    per_call: int
    appended: int = 0
    commits: int = 0
    seen: dict[Connection, int] = field(default_factory=dict)  # each one's commits so far

    def signing(self, n: int) -> float:
        """About n bare Ed25519 signatures (the floor's) made across the workers at once, no
        log; seconds per signature."""
        each = max(1, n // len(self.pipes))
        start = time.perf_counter()
        for pipe in self.pipes:
            pipe.send((_SIGN, each))
        for pipe in self.pipes:
            pipe.recv()
        return (time.perf_counter() - start) / (each * len(self.pipes))

    def batch(self, n: int) -> float:
        """About n records appended across the workers, durably; seconds per record."""
        calls = max(1, n // self.per_call)
        start = time.perf_counter()
        for pipe in self.pipes:
            pipe.send(calls)
        answers = [pipe.recv() for pipe in self.pipes]
        elapsed = time.perf_counter() - start
        appended = 0
        for pipe, (count, commits) in zip(self.pipes, answers, strict=True):
            appended += count
            self.commits += commits - self.seen[pipe]
            self.seen[pipe] = commits
        self.appended += appended
        return elapsed / appended
