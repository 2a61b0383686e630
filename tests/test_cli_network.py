"""The network CLI against real node processes: start/stop/status, enroll over TCP, relay,
message send through the relay, channel list, and a node without credentials refused."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.support.cli import run

NODES = ("hub", "a", "b", "stranger")


def troth(*args: str, code: int = 0) -> Result:
    """`troth ARGS` in this process (tests.support.cli), its exit code checked. The nodes are
    the real node processes this file drives: `troth node start` spawns each in a process of
    its own, from this process as from a shell (73f ci: the start and stop commands ran in an
    interpreter started for each, ~2 s apiece under CI load, most of the file's time; 71m ci
    did the same for every other command)."""
    return run(*args, code=code)


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
    troth("enroll", ticket_a["ticket"], "--as", "a", "--node", "a")  # a: not running
    troth("node", "start", "b")  # b: running, no listening port
    ticket_b = troth_json(
        "authority", "ticket", "create", "--authority", "hub", "--attr", "troth.relay=b"
    )["ticket"]
    troth("enroll", ticket_b, "--as", "b", "--node", "b")
    relay = troth_json("relay", "create", "b", "--at", hub, "--node", "b")
    assert relay["route"] == f"{hub}/relay/b"
    reply = troth_json("message", "send", f"{hub}/relay/b/service/echo", "hello b", "--node", "a")
    assert reply == {"reply": "hello b"}
    channels = troth_json("channel", "list", "--node", "b")
    assert any(row["state"] == "open" for row in channels)
    created = troth_json("channel", "create", hub, "--node", "a")
    assert created["peer"] == status["identifier"]
    pinned = troth_json(
        "message",
        "send",
        f"{hub}/service/echo",
        "pinned",
        "--node",
        "a",
        "--expect",
        status["identifier"],
    )
    assert pinned == {"reply": "pinned"}
    b_id = troth_json("node", "status", "b")["identifier"]
    wrong = troth(
        "message",
        "send",
        f"{hub}/service/echo",
        "x",
        "--node",
        "a",
        "--expect",
        b_id,
        code=1,
    )
    short = status["identifier"][:5]
    assert f"expected b ({b_id[:5]}…{b_id[-4:]}), but hub ({short}…" in wrong.stderr
    shown = troth("node", "status", "hub").stdout
    assert "channels counters: handshakes started " in shown
    assert "tcp counters:      accepted " in shown
    assert "relays served:     b\n" in shown  # the hub serves b's relay ...
    held = troth("node", "status", "b").stdout  # ... which b holds there, over its link
    assert "relays served:     none\n" in held
    assert f"links:             {hub} connected [relay b]\n" in held
    assert "None" not in shown
    assert "{" not in shown
    refused = troth(
        "message", "send", f"{hub}/relay/b/service/echo", "x", "--node", "stranger", code=1
    )
    assert "troth: stranger refused b (" in refused.stderr  # who refused whom, and why
    assert "stranger trusts no authority yet: enroll it with one first" in refused.stderr
    listed = {row["name"]: row["running"] for row in troth_json("node", "list")}
    assert listed == {"hub": True, "a": False, "b": True, "stranger": False}
    assert troth_json("node", "stop", "b") == {"name": "b", "stopped": True}
    troth("relay", "create", "b", "--at", hub, "--node", "b", code=3)  # not running: config
    log = (troth_home / "nodes" / "hub" / "node.log").read_text()
    assert "node hub running" in log


def test_a_refused_relay_says_who_refused_whom_and_why(running: None) -> None:
    """The README's failure: `relay create` from a node that trusts no authority yet, then from
    one whose credential lacks troth.relay=NAME; each message names both sides and the fix."""
    troth("authority", "create", "hub")
    hub = "/tcp/" + troth_json("node", "start", "hub", "--tcp-listen", "127.0.0.1:0")["listening"]
    troth("node", "create", "b")
    troth("node", "start", "b")
    refused = troth("relay", "create", "b", "--at", hub, "--node", "b", code=1)
    assert refused.stderr.startswith("troth: b refused hub (T")
    assert refused.stderr.endswith(
        "it holds no credential from an authority b trusts (b trusts no authority yet: enroll "
        "it with one first)\n"
    )
    ticket = troth("authority", "ticket", "create", "--authority", "hub").stdout.strip()
    troth("enroll", ticket, "--as", "b", "--node", "b")
    denied = troth("relay", "create", "b", "--at", hub, "--node", "b", code=1)
    assert denied.stderr.startswith("troth: hub refused b (T")
    assert "troth.relay attribute troth.relay=b (or troth.relay=*)" in denied.stderr
    assert "--attr troth.relay=b" in denied.stderr
    as_json = troth("relay", "create", "b", "--at", hub, "--node", "b", "--json", code=1)
    assert as_json.stderr == ""
    report = json.loads(as_json.stdout)
    assert report["error"] == "Denied"
    assert report["reasons"][0].startswith("hub refused T")


def test_a_node_that_cannot_listen_says_why_once(running: None, troth_home: Path) -> None:
    """A port in use: `troth node start` exits 3 with the reason, typed (not a traceback), and
    quotes only what this start logged (not an earlier run's lines in node.log). The address
    it never listened on is not recorded (tickets would carry it)."""
    troth("node", "create", "hub")
    with socket.socket() as probe:  # a fixed port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        earlier = f"127.0.0.1:{probe.getsockname()[1]}"
    troth("node", "start", "hub", "--tcp-listen", earlier)
    troth("node", "stop", "hub")
    (troth_home / "nodes" / "hub" / "node.log").write_text("an OLD line of an earlier run\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        said = troth("node", "start", "hub", "--tcp-listen", f"127.0.0.1:{port}", code=3).stderr
    assert f"cannot listen on 127.0.0.1:{port}" in said
    assert "OLD" not in said
    assert "Traceback" not in said
    config = json.loads((troth_home / "nodes" / "hub" / "node.json").read_text())
    assert config["listen"] == earlier
