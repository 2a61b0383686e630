"""Review 49b, relays 1, with real processes on loopback (the scenario of the reverted review
48u's test): a (a running daemon, enrolled at the hub: its link channel runs over its
connection there) holds a channel to b through the hub's relay (`/tcp/hub/relay/b`). b is
SIGKILLed and started again, and creates its relay again. a's channel to the old b names the
old b's connection at the hub, which is gone: before, the hub dropped the first call's packet
without a word and the call waited its whole timeout (10 s). Now the hub sends a a no-route
notice over a's link channel and a closes the stale channel at once: the first call fails
"no route at the hub" (not "no answer within 10 s"), the second reaches the new b over a fresh
channel. Asserted by the outcome, the error's words and a's counters, not by the clock: the
calls are given 60 s.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json, start_here, stop_here
from troth.errors import TrothError
from troth.node.daemon import control, node_status


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ask(name: str, op: str, arguments: dict[str, Any], timeout: float = 30.0) -> Any:
    return control(Path(os.environ["TROTH_HOME"]), name, op, arguments, timeout)


def relay_up(name: str) -> bool:
    relays = ask("hub", "status", {}).get("services", {}).get("relay", {})
    return bool(relays.get(name, {}).get("state") == "up")


def until(condition: Any, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the condition did not hold in time")
        time.sleep(0.1)


def kill(name: str) -> None:
    status = Path(os.environ["TROTH_HOME"]) / "nodes" / name / "status.json"
    pid = json.loads(status.read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    try:  # a node this process started (`start_here`) is its child: reaped here, once all its
        # threads ended (73f ci: its leader shows as a zombie while the others still hold
        # node.lock, and a start right then was refused, the node "already running")
        os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass  # one a `troth node start` process started: init reaps it
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:  # gone, or a zombie whose parent (init) reaps it late
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
                return
        except FileNotFoundError:
            return
        time.sleep(0.02)
    pytest.fail(f"{name} ({pid}) survived SIGKILL")


@pytest.fixture
def hub(troth_home: Path) -> Iterator[str]:
    """A hub (authority and relay), b behind it as `/relay/b`, a running (a daemon: its
    channels outlive one call). Yields the hub's route."""
    started: list[str] = []
    try:  # in this process (tests.support.cli), the daemons' starts and stops too (each node
        # a process of its own as ever: 73f ci, an interpreter for each was set-up time)
        run("authority", "create", "hub")
        route = f"/tcp/127.0.0.1:{free_port()}"
        start_here("hub", "--tcp-listen", route[5:])
        started.append("hub")
        for name in ("a", "b"):
            run("node", "create", name)
            start_here(name)
            started.append(name)
        for name, relay in (("a", None), ("b", "b")):
            attributes = ["--attr", "agents.team=x"]
            if relay is not None:
                attributes += ["--attr", f"troth.relay={relay}"]
            ticket = ("authority", "ticket", "create", "--authority", "hub")
            made = run_json(*ticket, *attributes)
            run("enroll", made["ticket"], "--as", name, "--node", name)
        run("relay", "create", "b", "--at", route, "--node", "b")
        yield route
    finally:
        for name in started:
            stop_here(name)


def test_the_first_call_after_a_relayed_member_restarts_fails_fast_and_the_next_reaches_it(
    hub: str,
) -> None:
    to_b = f"{hub}/relay/b/service/echo"
    assert ask("a", "message.send", {"to": to_b, "text": "before"}) == "before"
    rows = ask("a", "channel.list", {})
    b = ask("b", "status", {})["identifier"]
    olds = [row["id"] for row in rows if row["peer"] == b]
    assert len(olds) == 1, rows
    old = olds[0]
    kill("b")
    start_here("b")
    until(lambda: node_status(Path(os.environ["TROTH_HOME"]), "b")["running"])
    until(lambda: relay_up("b"))
    if old not in [row["id"] for row in ask("a", "channel.list", {})]:  # its keepalive (45 s)
        pytest.skip("a's channel to the old b was closed before the first call: nothing to test")
    with pytest.raises(TrothError, match="no route at the hub"):
        ask("a", "message.send", {"to": to_b, "text": "first"}, timeout=60.0)
    assert ask("a", "message.send", {"to": to_b, "text": "second"}, timeout=60.0) == "second"
    ids = [row["id"] for row in ask("a", "channel.list", {})]
    assert old not in ids
    counters = ask("a", "status", {})["counters"]["channels"]
    assert counters["closed_by_no_route"] == 1, counters
