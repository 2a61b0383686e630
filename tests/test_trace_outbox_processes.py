"""Nothing a node acknowledged is lost when it is SIGKILLed (docs/traces.md, "Where records
go"; docs/storage.md, "Trace outbox"), with real processes: a hub daemon collects traces over
TCP; an agent node process (tests/support/outbox_worker.py) records as fast as it can while its
trace client sends, and is SIGKILLed at a random moment, three times; then the agent's daemon
(`troth node start`) resumes sending what its outbox holds. Every record `record()`
acknowledged is in the hub's log exactly once, in the order made, the agent's chain verifies,
and the outbox ends empty."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run, run_json, start_here, stop_here
from tests.test_reconnect_daemon import free_port
from troth.clock import SystemClock
from troth.identity import Identifier
from troth.node import open_node
from troth.node.config import NodeConfig
from troth.node.home import write_private_file
from troth.trace import verify_log
from troth.trace.log import open_node_log
from troth.trace.signing import open_envelope

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 3
PER_ROUND = 400


@pytest.fixture
def hub(troth_home: Path) -> Iterator[str]:
    """The hub (authority, trace service) listening on TCP, and node `agent`, enrolled with
    it, whose node.json sends its traces there. Yields the hub's route."""
    try:
        run("authority", "create", "hub")
        route = f"/tcp/127.0.0.1:{free_port()}"
        start_here("hub", "--tcp-listen", route[5:])
        run("node", "create", "agent")
        ticket = run_json(
            "authority", "ticket", "create", "--authority", "hub", "--attr", "agents.team=x"
        )
        run("enroll", ticket["ticket"], "--as", "agent", "--node", "agent")
        path = troth_home / "nodes" / "agent" / "node.json"
        config = NodeConfig.from_json(path.read_bytes(), path)
        traced = dataclasses.replace(config, traces=f"{route}/service/trace")
        write_private_file(path, traced.to_json())
        yield route
    finally:
        for name in ("agent", "hub"):
            stop_here(name)


class Worker:
    """The agent's node process: its acknowledged records, read as it prints them."""

    def __init__(self, first: int, count: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.outbox_worker", "agent", str(first), str(count)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.acknowledged: list[tuple[int, str]] = []
        self.done = False
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if not line.endswith("\n"):
                return  # cut by the kill: not acknowledged
            if line == "done\n":
                self.done = True
                continue
            n, record = line.split()
            with self._lock:
                self.acknowledged.append((int(n), record))

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def kill_after(self, acknowledged: int) -> None:
        """SIGKILL the process once it acknowledged `acknowledged` records (or all it will)."""
        deadline = time.monotonic() + 60
        while self.count() < acknowledged and not self.done:
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"the worker stopped at {self.count()} records")
            time.sleep(0.001)
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(30) == -signal.SIGKILL
        self._reader.join(30)


def outbox_status() -> dict[str, int]:
    status = run_json("node", "status", "agent")
    return dict(status["traces"]["outbox"])


def test_records_acknowledged_before_sigkills_are_delivered_once(
    hub: str, troth_home: Path
) -> None:
    rng = random.Random(os.environ.get("TROTH_TEST_SEED", "11"))
    acknowledged: list[tuple[int, str]] = []
    for round_ in range(ROUNDS):
        worker = Worker(round_ * PER_ROUND, PER_ROUND)
        worker.kill_after(rng.randint(40, PER_ROUND - 40))
        acknowledged += worker.acknowledged

    (held,) = run_json("trace", "outbox", "--node", "agent")["agents"]
    assert held["queued"] > 0  # the last kill left records unsent (made in its last 0.2 s)
    start_here("agent")  # the daemon resumes sending the outbox
    deadline = time.monotonic() + 60
    while (shown := outbox_status())["queued"]:
        assert time.monotonic() < deadline, shown
        time.sleep(0.2)
    assert shown["refused"] == 0
    text = run("node", "status", "agent").stdout
    assert f"to {hub}/service/trace; outbox: 0 queued" in text
    run("node", "stop", "agent")
    run("node", "stop", "hub")

    with open_node("agent", home=troth_home) as node:
        agent = Identifier(node.identities.find("agent").identifier)
    with open_node("hub", home=troth_home) as node, open_node_log(node, clock=SystemClock()) as log:
        assert verify_log(log).size == log.size()
        logged = [
            (record.seq, record.id, json.loads(log.disclosures(record.id)["args"].value)["n"])
            for record in (open_envelope(entry.envelope)[0] for entry in log.stored())
            if record.agent == agent
        ]
    assert [seq for seq, _, _ in logged] == list(range(len(logged)))  # one chain, no gap
    numbers = [n for _, _, n in logged]
    assert numbers == sorted(set(numbers))  # in the order made, none twice
    ids = {n: record for _, record, n in logged}
    assert acknowledged  # the kills came after records were acknowledged
    missing = [(n, record) for n, record in acknowledged if ids.get(n) != record]
    assert missing == []  # every acknowledged record, under the id record() gave it
    # records made but not yet printed when the kill came may be there too, delivered once
    assert len(logged) <= ROUNDS * PER_ROUND
