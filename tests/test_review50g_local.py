"""Review 50g, local 1: a node running a stale copy of its own identity (its node.db restored
from before a rotation, or a clone of it) that held a feed saying so was not told. The feed of
its authority supersedes the history the node holds (the rotation was announced), every
verifier holding that feed refuses what the node signs, and `troth identity show` said
nothing: the operator kept signing with the retired key. `troth identity show` (JSON
`superseded`) now says which held feed supersedes the local history, and what to do.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run
from troth.node import open_node
from troth.node.authorities import sync_from


def test_a_restored_node_is_told_its_identity_is_superseded(
    troth_home: Path, tmp_path: Path
) -> None:
    run("authority", "create", "acme")
    run("node", "create", "agent")
    ticket = tmp_path / "ticket"
    ticket.write_text(
        run("authority", "ticket", "create", "--authority", "acme", "--attr", "t.n=x").stdout
    )
    run("enroll", str(ticket), "--as", "agent", "--node", "agent")
    shown = json.loads(run("identity", "show", "agent", "--node", "agent", "--json").stdout)
    assert "superseded" not in shown
    copy = tmp_path / "agent.db"
    copy_db(node_db(troth_home, "agent"), copy)
    run("identity", "rotate", "agent", "--compromised", "--node", "agent")  # announced
    restore_db(node_db(troth_home, "agent"), copy)
    with open_node("acme") as acme, open_node("agent") as agent:
        sync_from(agent, acme.authority(), now=int(time.time()))  # its feed: 3 changes
    text = run("identity", "show", "agent", "--node", "agent").stdout
    assert "superseded" in text
    shown = json.loads(run("identity", "show", "agent", "--node", "agent", "--json").stdout)
    assert shown["changes"] == 1
    assert "superseded" in shown
