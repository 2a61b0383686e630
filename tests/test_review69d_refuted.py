"""Review 69d, refuted: attacks on how a rotation tells the nodes here (reviews 68p, 68u)
that the code withstood.

- A status.json planted in a node's directory of the home, naming this (not a node's) process
  and a control socket it listens on: the rotation's telling sends nothing there (the pid must
  be the node holding its lock).
- A node stopped (closed) while its identity's authority took two rotations of a member, one
  after the other, then opened: the feed it hands a program supersedes the newest history,
  not only the first (the due mark keeps the later rotation's count).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import troth
from tests import test_review67f_secrets as review67f
from tests.support.public_api import READ, Agents
from troth.node import open_node
from troth.node.process import start_time
from troth.node.traces import tell_local_nodes

world = review67f.world  # acme's hub (node `acme`) hosting the authority, `agents` a member


def test_a_planted_status_file_draws_no_telling_to_a_process_of_its_choosing(
    world: Agents, troth_home: Path, tmp_path: Path
) -> None:
    planted = troth_home / "nodes" / "acme"
    path = str(tmp_path / "c.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    listener.settimeout(0.2)
    started = start_time(os.getpid())  # (this process's own: only the pid's owner differs)
    (planted / "status.json").write_text(
        f'{{"pid": {os.getpid()}, "control": "{path}", "started": {started}}}', encoding="utf-8"
    )
    (planted / "status.json").chmod(0o600)
    try:
        with open_node("agents") as agents:
            tell_local_nodes(agents, world.acme.identifier)
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            connection = None
        if connection is not None:
            connection.close()
        assert connection is None  # nothing connected, nothing sent
    finally:
        listener.close()


def test_a_node_down_through_two_rotations_holds_the_newest_when_opened(
    world: Agents,
) -> None:
    support = world.agents.identities.get("support")
    with troth.Node.open("gate") as gate:
        gate.enroll(world.acme.ticket(READ))
        held = gate.feed(world.acme.identifier)
        assert held is not None
        assert held.supersession(support.identifier) is None
    world.agents.identities.rotate("support")
    newest = world.agents.identities.rotate("support", compromised=True)
    with troth.Node.open("gate") as gate:
        feed = gate.feed(world.acme.identifier)
        assert feed is not None
        superseded = feed.supersession(support.identifier)
        assert superseded is not None
        assert superseded.changes == newest.changes
