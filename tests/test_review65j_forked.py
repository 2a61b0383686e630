"""Review 65j, forked: what the owner is told when her identity's rotation is refused as a fork.

Forked 1: a local identity's rotation refused as a fork by an authority on this machine
(`announce_here`: `troth identity rotate` beside a local authority, review 64u rotation 3)
named the identity to revoke as a Python bytes literal: "troth revoke identity
b'\\xf0^\\xb5c...' --authority NAME", the store row's raw identifier put in the text, a command
no one can run (the remote path, troth.node.announcements, named it right). It is the
identifier's text form now.

Forked 2 (left by review 65a): `troth identity show` said of every authority whose feed the
node holds naming another change at one its history holds (`forked_by`) that it "took another
rotation of this identity ... the identity is lost to that authority: have its operator revoke
it and enroll a new identity" — a co-trusted authority's too, one the identity holds no
credential of (a copy of its keys enrolled it there and announced the copy's rotation). Its
word counts on the identity only where it is judged by that authority's feed, not on the
chains of its own authorities (docs/formats.md, "Whose word counts on an identity"): the
owner was told to give up an identity her authorities still accept (as review 64a2, forked 1
found for a link). The co-trusted authorities are named apart (JSON `forked_by_co_trusted`),
with what is true: someone holds the keys, rotate, have that authority revoke it there.

Forked 3: the running node's `refused_as_fork` (review 65a, forked 2) kept an entry per
(identity as the request spelled it, authority) until an announcement under that spelling
succeeded: `troth identity rotate` with the identifier, then the rounds with the name, listed
the refusal twice, and one whose announcement was no longer pending (the credential of that
authority gone) stayed in `node status` for the node's life. Each announcing pass now drops
the entries of what it read as no longer pending (a full round: every entry not of its own).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from click.testing import CliRunner

from tests.support.announced_restore import enrolled_agent
from tests.support.cli import run
from tests.support.nodes import MemNet, run_memnet
from tests.test_review65a_forked import agent_forked
from troth.cli.main import cli
from troth.identity import Identifier
from troth.node import open_node
from troth.node.authorities import announce_here, sync_from


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


def _ticket(scratch: Path, authority: str, name: str) -> str:
    path = scratch / name
    created = run("authority", "ticket", "create", "--authority", authority, "--attr", "t.n=x")
    path.write_text(created.stdout)
    return str(path)


def test_a_co_trusted_authoritys_fork_is_not_said_to_lose_the_identity(
    troth_home: Path, tmp_path: Path
) -> None:
    """Forked 2: node `agent` trusts globex too (another identity of it is globex's member);
    a copy of the node enrolls `agent` with globex, and rotates it after the owner did: acme
    took the owner's rotation, globex the thief's. `identity show` names globex's fork and
    what to do there, not the identity lost and a new one to enroll."""
    enrolled_agent(tmp_path)
    run("authority", "create", "globex")
    run("identity", "create", "other", "--node", "agent")
    run("enroll", _ticket(tmp_path, "globex", "t1"), "--as", "other", "--node", "agent")
    shutil.copytree(troth_home / "nodes" / "agent", troth_home / "nodes" / "thief")
    run("enroll", _ticket(tmp_path, "globex", "t2"), "--as", "agent", "--node", "thief")
    assert "announced to acme" in run("identity", "rotate", "agent", "--node", "agent").stdout
    thief = CliRunner().invoke(cli, ["identity", "rotate", "agent", "--node", "thief"])
    assert "announced to globex" in thief.stdout
    with open_node("globex") as globex, open_node("agent") as agent:
        sync_from(agent, globex.authority(), now=int(time.time()))
        globex_id = str(globex.authority().identifier)
    text = run("identity", "show", "agent", "--node", "agent").stdout
    assert "serves another rotation of this identity" in text
    assert "the authorities of its credentials are not concerned" in text
    assert "lost to that authority" not in text
    assert "enroll a new identity" not in text
    shown = json.loads(run("identity", "show", "agent", "--node", "agent", "--json").stdout)
    assert "forked_by" not in shown
    assert shown["forked_by_co_trusted"] == [globex_id]


def test_a_fork_entry_goes_with_its_pending_announcement(tmp_path: Path) -> None:
    """Forked 3: the entry of an announcement refused as a fork under another spelling of the
    identity (its identifier) is not listed twice, nor kept once nothing is pending there."""
    entries: list[int] = []

    async def test(net: MemNet) -> None:
        owner, bot = await agent_forked(net)
        (row,) = await owner.announce_rotations(str(bot.identifier))
        assert row["forked"] is True
        (row,) = await owner.announce_rotations()
        assert row["forked"] is True
        entries.append(len(owner.status()["refused_as_fork"]))
        wallet = owner.node.wallet
        held = wallet.held("bot")
        wallet.store.forget_held(bot.identifier.digest, [h.id for h in held])
        assert await owner.announce_rotations() == []  # nothing pending for bot now
        entries.append(len(owner.status()["refused_as_fork"]))

    run_memnet(test, tmp_path / "home", budget=30)
    assert entries == [1, 0]
