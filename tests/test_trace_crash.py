"""Crash safety: a writer killed with SIGKILL in the middle of appends, 20 times over, loses no
acknowledged record, and the log still verifies (nothing half-written shows)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path

from tests.support.traces import NOW, Held, recorder, tool_call
from troth.clock import FixedClock
from troth.trace import TraceLog
from troth.trace.verify import verify_log

RUNS = 20


def _writer(path: str, owner: Held, acks: Connection) -> None:
    """Append until killed: a record id is sent only once its append was acknowledged."""
    clock = FixedClock(NOW)
    log = TraceLog.open(path, clock=clock, signer=lambda now: owner.signer(now))
    rec = recorder(log, Held(), clock)
    count = 0
    while True:
        receipt = rec.record(tool_call())
        acks.send(receipt.record)
        count += 1
        if count % 7 == 0:
            log.checkpoint()


def test_sigkill_loses_no_acknowledged_record(tmp_path: Path) -> None:
    path = tmp_path / "trace.db"
    clock = FixedClock(NOW)
    owner = Held()  # the log's identity, inherited by every forked writer
    context = multiprocessing.get_context("fork")
    acknowledged: list[str] = []
    chance = random.Random(13)
    for _run in range(RUNS):
        receiver, sender = context.Pipe(duplex=False)
        writer = context.Process(target=_writer, args=(str(path), owner, sender))
        writer.start()
        sender.close()
        deadline = time.monotonic() + chance.uniform(0.05, 0.4)
        while time.monotonic() < deadline:
            if receiver.poll(0.01):
                acknowledged.append(receiver.recv())
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        while receiver.poll():  # acks sent before the kill
            try:
                acknowledged.append(receiver.recv())
            except EOFError:
                break
        receiver.close()
        log = TraceLog.open(path, clock=clock)
        for record_id in acknowledged:
            log.find(record_id)  # raises NotFound if an acknowledged record was lost
        report = verify_log(log)
        assert report.size >= len(acknowledged)
        log.close()
    assert len(acknowledged) > RUNS  # the writers did get records in before each kill
