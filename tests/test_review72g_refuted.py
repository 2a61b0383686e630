"""Review 72g, durable trace appends (perf): what was looked for on the append path and not
found (benchmarks/README.md, "Pass 72g"). The rows' time goes to CPU per record (~83 us of
which ~35 us is the signature) and to the machine (cores and fsync shared with other work),
not to a lock or a commit that batching should have shared: these keep it so."""

from __future__ import annotations

import threading
from multiprocessing import Pipe
from typing import Any

import pytest

from troth.bench import trace_processes
from troth.bench.trace_bench import CONTENT, NOW, _bench_node, _recorders
from troth.identity import Signer

BATCH = 128


def test_no_lock_of_the_log_is_held_while_a_record_is_signed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """72g refuted 1: a lock held across the signature (the batched and concurrent rows far
    below one agent's rate). Tried: every signature a recorder makes, while another agent's
    batch waits in the queue, with the log's mutex and its lead looked at. Neither is held:
    the recorder holds only its own agent's lock while it signs; an agent's records are
    queued at once after they are all signed, and the commit (one for the batch) runs after."""
    with _bench_node() as (_home, node, log, clock):
        first, second = _recorders(node, log, clock, 2)
        first.record(CONTENT)
        held: list[tuple[bool, bool]] = []
        sign = Signer.sign

        def watched(self: Signer, body: bytes) -> bytes:
            held.append((log._mutex.locked(), log._leader))
            return sign(self, body)

        monkeypatch.setattr(Signer, "sign", watched)
        commits = log.commits
        first.record_many([CONTENT] * BATCH)
        second.record_many([CONTENT] * BATCH)
        assert len(held) == 2 * BATCH
        assert not any(mutex or lead for mutex, lead in held), held
        assert log.commits - commits == 2  # one transaction per batch, one per agent


def test_the_processes_rows_bare_signing_appends_nothing() -> None:
    """72g refuted 2: the processes row's bare signing (`Workers.signing`, the cores the row's
    processes had: `processes_signing_bare`) touches the log. Tried: a worker asked to sign,
    then to append one batch. The signing answers with the log as it was (no commit, no
    record); the batch after it appends 128."""
    with _bench_node() as (home, node, log, _clock):
        node.identities.create(now=NOW, name="proc-0")
        parent, child = Pipe()
        worker = threading.Thread(
            target=trace_processes._serve,
            args=(str(home), "bench", ["proc-0"], NOW, CONTENT, child),
        )
        worker.start()

        def answer() -> Any:
            assert parent.poll(10), "the worker did not answer"
            return parent.recv()

        try:
            ready, commits = answer()
            assert ready == "ready"
            size = log.size()
            parent.send(("sign", 50))
            assert answer() == (0, commits)
            assert log.size() == size
            parent.send(1)
            assert answer() == (BATCH, commits + 1)
            assert log.size() == size + BATCH
        finally:
            parent.send(None)
            worker.join(10)
