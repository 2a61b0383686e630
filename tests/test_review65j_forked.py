"""Review 65j, forked: what the owner is told when her identity's rotation is refused as a fork.

Forked 1: a local identity's rotation refused as a fork by an authority on this machine
(`announce_here`: `troth identity rotate` beside a local authority, review 64u rotation 3)
named the identity to revoke as a Python bytes literal: "troth revoke identity
b'\\xf0^\\xb5c...' --authority NAME", the store row's raw identifier put in the text, a command
no one can run (the remote path, troth.node.announcements, named it right). It is the
identifier's text form now.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from click.testing import CliRunner

from tests.support.announced_restore import enrolled_agent
from tests.support.cli import run
from troth.cli.main import cli
from troth.identity import Identifier
from troth.node import open_node
from troth.node.authorities import announce_here


def test_a_local_authoritys_fork_refusal_names_the_identity_to_revoke(
    troth_home: Path, tmp_path: Path
) -> None:
    """Forked 1: the thief's copy announced first; the owner's announcement row names her
    identity in its text form in the command it tells her to have run."""
    enrolled_agent(tmp_path)
    shutil.copytree(troth_home / "nodes" / "agent", troth_home / "nodes" / "thief")
    run("identity", "rotate", "agent", "--node", "thief")
    now = int(time.time())
    with open_node("agent") as agent:
        identifier = Identifier(agent.identities.find("agent").identifier)
        agent.identities.rotate("agent", now=now, compromised=True)
        (row,), remote = announce_here(agent, "agent", now=now)
    assert remote == []
    assert row.forked is True
    assert f"troth revoke identity {identifier} --authority NAME" in str(row.error)
    mine = CliRunner().invoke(cli, ["identity", "rotate", "agent", "--node", "agent"])
    assert "troth revoke identity b'" not in mine.stderr  # the CLI's text of it too
