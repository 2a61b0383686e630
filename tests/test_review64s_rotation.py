"""Review 64s, rotation: a stolen pre-rotation key against every path that accepts an identity's
signature after it rotated.

Rotation 1: a thief holding a copy of a member's vault (its current and committed next key)
rotates the identity first and announces that rotation to her authority, which stores the
first extension of its copy it sees (as it must: nothing tells the owner's rotation from the
thief's) and names it in its feed. The owner's own rotation, `--compromised` or not, is then
refused there as a fork for good, and the thief is issued her credentials. `troth identity
show` on the owner's node told her that her node held "an older copy of the identity than (or
a fork of) the one its owner announced (a restored node.db, or a clone) ... use the node that
holds the current history" — the thief's — and that her own announcement was "not yet"
made and the next round would make it, which can never happen. It now says, when the
authority's feed names another change at an index her history holds (a fork, not an older
copy), that the authority took another rotation made with a copy of its keys, that the
identity is lost to that authority if this node is its own, and what to do (its operator
revokes the identity; she enrolls a new one), and that announcing again cannot help; JSON
`forked_by` names the authorities. When the feed names a change past her history's end (the
thief rotated further than she did), her node cannot tell a fork from a copy older than her
own rotation: it says both, and what to do when none of her nodes holds the newer history.
docs/vault.md promised the owner's rotation "competes" with the thief's "until her authority
names her rotation", which that authority never does.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from click.testing import CliRunner

from tests.support.announced_restore import enrolled_agent
from tests.support.cli import run
from troth.cli.main import cli
from troth.node import open_node
from troth.node.authorities import sync_from


def _thief_rotates_first(troth_home: Path, tmp_path: Path, *, thief: str, owner: str) -> None:
    """agent enrolled with acme; a thief copies its node directory, rotates agent there
    (`thief`: its rotate options) and announces it; the owner rotates (`owner`), her
    announcement refused as a fork; her node syncs acme's feed."""
    enrolled_agent(tmp_path)
    shutil.copytree(troth_home / "nodes" / "agent", troth_home / "nodes" / "thief")
    rotated = run("identity", "rotate", "agent", *thief.split(), "--node", "thief")
    assert "announced to acme" in rotated.stdout
    mine = CliRunner().invoke(
        cli, ["identity", "rotate", "agent", *owner.split(), "--node", "agent"]
    )
    assert "history forks from the stored copy" in mine.stderr  # acme took the thief's
    with open_node("acme") as acme, open_node("agent") as agent:
        sync_from(agent, acme.authority(), now=int(time.time()))


def test_an_owner_whose_thief_rotated_first_is_told_the_identity_is_lost(
    troth_home: Path, tmp_path: Path
) -> None:
    """Rotation 1. The thief rotates plainly, the owner as compromised: `identity show` names
    the fork and the recovery, not "use the node that holds the current history"."""
    _thief_rotates_first(troth_home, tmp_path, thief="", owner="--compromised")
    text = run("identity", "show", "agent", "--node", "agent").stdout
    assert "use the node that holds the current history" not in text
    assert "the identity is lost to that authority" in text
    assert "troth revoke identity" in text
    assert "announcing it again cannot change that" in text
    assert "not yet announced" not in text
    shown = json.loads(run("identity", "show", "agent", "--node", "agent", "--json").stdout)
    with open_node("acme") as acme:
        assert shown["forked_by"] == [str(acme.authority().identifier)]
    assert "superseded" in shown


def test_an_owner_whose_thief_rotated_further_first_is_told_what_to_do(
    troth_home: Path, tmp_path: Path
) -> None:
    """Rotation 1: the thief rotates as compromised (two changes), the owner plainly (one): the
    feed names change 2, past her history; `identity show` says what to do if none of her nodes
    holds that history."""
    _thief_rotates_first(troth_home, tmp_path, thief="--compromised", owner="")
    text = run("identity", "show", "agent", "--node", "agent").stdout
    assert "superseded" in text
    assert "If none of yours holds it" in text
    assert "troth revoke identity" in text
