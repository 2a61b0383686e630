"""The network CLI against real node processes: start/stop/status, enroll over TCP, relay,
message send through the relay, channel list, and a node without credentials refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

NODES = ("hub", "a", "b", "stranger")


def troth(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "troth.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    assert result.returncode == code, (args, result.stdout, result.stderr)
    return result


def troth_json(*args: str, code: int = 0) -> Any:
    return json.loads(troth(*args, "--json", code=code).stdout)


@pytest.fixture
def running(troth_home: Path) -> Iterator[None]:
    yield
    for name in NODES:
        if (troth_home / "nodes" / name).is_dir():
            troth("node", "stop", name)


def test_three_nodes_through_a_relay(running: None, troth_home: Path) -> None:
    troth("authority", "create", "hub")
    status = troth_json("node", "start", "hub", "--tcp-listen", "127.0.0.1:0")
    hub = "/tcp/" + status["listening"]
    assert troth_json("node", "status", "hub")["running"] is True
    for name in ("a", "b", "stranger"):
        troth("node", "create", name)
    ticket_a = troth_json(
        "authority", "ticket", "create", "--authority", "hub", "--attr", "agents.team=x"
    )
    assert ticket_a["ticket"].startswith("troth-ticket:")
    troth("enroll", ticket_a["ticket"], "--identity", "a", "--node", "a")  # a: not running
    troth("node", "start", "b")  # b: running, no listening port
    ticket_b = troth_json(
        "authority", "ticket", "create", "--authority", "hub", "--attr", "troth.relay=b"
    )["ticket"]
    troth("enroll", ticket_b, "--identity", "b", "--node", "b")
    relay = troth_json("relay", "create", "b", "--at", hub, "--from", "b")
    assert relay["route"] == f"{hub}/relay/b"
    reply = troth_json(
        "message", "send", "--from", "a", "--to", f"{hub}/relay/b/service/echo", "hello b"
    )
    assert reply == {"reply": "hello b"}
    channels = troth_json("channel", "list", "--node", "b")
    assert any(row["state"] == "open" for row in channels)
    created = troth_json("channel", "create", "--from", "a", "--to", hub)
    assert created["peer"] == status["identifier"]
    pinned = troth_json(
        "message",
        "send",
        "--from",
        "a",
        "--to",
        f"{hub}/service/echo",
        "--expect",
        status["identifier"],
        "pinned",
    )
    assert pinned == {"reply": "pinned"}
    b_id = troth_json("node", "status", "b")["identifier"]
    wrong = troth(
        "message",
        "send",
        "--from",
        "a",
        "--to",
        f"{hub}/service/echo",
        "--expect",
        b_id,
        "x",
        code=1,
    )
    assert f"expected {b_id}, but {status['identifier']} answered" in wrong.stderr
    shown = troth("node", "status", "hub").stdout
    assert "channels.handshakes_started:" in shown
    assert "tcp.accepted:" in shown
    refused = troth(
        "message", "send", "--from", "stranger", "--to", f"{hub}/relay/b/service/echo", "x", code=1
    )
    assert "peer not allowed" in refused.stderr
    listed = {row["name"]: row["running"] for row in troth_json("node", "list")}
    assert listed == {"hub": True, "a": False, "b": True, "stranger": False}
    assert troth_json("node", "stop", "b") == {"name": "b", "stopped": True}
    troth("relay", "create", "b", "--at", hub, "--from", "b", code=2)  # not running: NotFound
    log = (troth_home / "nodes" / "hub" / "node.log").read_text()
    assert "node hub running" in log
