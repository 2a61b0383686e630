"""Review 68p, cache: what a long-lived process holding a node open keeps of an identity
after another process (or another handle) rotated it.

cache 1 (medium: a stolen key outlives the owner's rotation at the nodes running here) A
rotation announced to an authority on this machine (`troth identity rotate`, `Identities.rotate`:
`announce_here`) appends a supersession to the authority's feed, the entry every verifier
refuses the older history by. But, unlike a revocation (reviews 48c, 49a, 63u), nobody running
was told: a node served in this process read the hosting authority's store only at its next
poll (HOSTED_FEED_POLL) and a trusting node's feed only at its next maintenance round (30 s),
no daemon running a node here was asked to sync the feed (`feed.sync`), and no node was marked
due a sync (a program deciding tool calls on `Node.feed` used its copy until it went stale).
Meanwhile they judged on the copy they held: a thief holding a copy of the member's vault (its
history before the rotation) leased a secret from the running broker right after the owner's
`--compromised` rotation, refused only by a node started after it. Now the announcement tells
them as a revocation does: the other nodes trusting the authority are marked due a sync before
its commit (`local_nodes_due`), the runtimes served in this process re-read the authority's
feed before the rotation returns, and every daemon running a node of the home (the rotating
one's too) is asked to sync it.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import troth
import troth.node.daemon
import troth.node.traces
import troth.node.upkeep
from tests import test_review67f_secrets as review67f
from tests.support.backups import copy_db, node_db, thief_copy
from tests.support.public_api import READ, Agents
from tests.test_review68p_refuted import _rotate_elsewhere, leased
from troth.cli.main import cli

world = review67f.world  # acme's hub brokering `payments` to its members


def _stolen(home: Path, tmp_path: Path) -> Path:
    """A thief's home holding a copy of node `agents` as it is now (its vault and node.db)."""
    thief = tmp_path / "thief"
    (thief / "nodes").mkdir(mode=0o700, parents=True)
    thief.chmod(0o700)
    shutil.copytree(home / "nodes" / "agents", thief / "nodes" / "agents")
    copy_db(node_db(home, "agents"), tmp_path / "stolen.db")
    thief_copy(node_db(thief, "agents"), tmp_path / "stolen.db")
    return thief


@pytest.mark.parametrize("compromised", [False, True])
def test_cache1_a_running_broker_refuses_the_history_a_rotation_here_superseded(
    world: Agents,
    troth_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    compromised: bool,
) -> None:
    """support's vault copied (a stolen backup), its owner rotates it (`Identities.rotate`)
    while the hub runs its broker in this process: the thief's lease under the history before
    the rotation is refused as superseded at once (the hub's poll of its store never due
    within the test: the window it left)."""
    monkeypatch.setattr(troth.node.upkeep, "HOSTED_FEED_POLL", 3600.0)

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            assert await leased(world.agents, "support", running) == "ACTIVE"
            thief_home = _stolen(troth_home, tmp_path)
            world.agents.identities.rotate("support", compromised=compromised)
            with (
                troth.Node.open("agents", home=thief_home) as thief,
                pytest.raises(troth.ChannelError) as refused,
            ):
                await leased(thief, "support", running)
            assert "superseded history" in str(refused.value)
            assert await leased(world.agents, "support", running) == "ACTIVE"  # the owner's

    asyncio.run(main())


def test_cache1_a_rotation_here_tells_every_daemon_running_a_node_of_the_home(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`troth identity rotate support --node agents` beside daemons running `acme` (hosting
    the authority it announces to) and `agents` (holding its feed): each is asked to sync the
    authority's feed now (`feed.sync`), as after a revocation. (The daemons are stood in for,
    as in review 63u: only the telling can be checked without timing.)"""
    told: list[tuple[str, str, object]] = []

    def status(home: object, name: str) -> dict[str, object]:
        return {"name": name, "running": True}

    def control(home: object, name: str, status: object, op: str, arguments: object) -> None:
        told.append((name, op, arguments))

    monkeypatch.setattr(troth.node.daemon, "node_status", status)
    monkeypatch.setattr(troth.node.traces, "_control", control)
    rotated = CliRunner().invoke(cli, ["identity", "rotate", "support", "--node", "agents"])
    assert rotated.exit_code == 0, rotated.output
    authority = {"authority": str(world.acme.identifier)}
    assert sorted(told, key=str) == [
        ("acme", "feed.sync", authority),
        ("agents", "feed.sync", authority),
    ]


def test_cache1_a_node_open_here_holds_no_feed_missing_the_supersession(
    world: Agents,
) -> None:
    """A third node of the home, `gate`, trusting acme, open in a program deciding tool calls
    on `gate.feed(acme)` (docs/policy.md, "The tool gate"), its copy fresh: once another
    process rotated support (announced to acme), the feed it decides on is not the copy from
    before, which does not supersede the history a thief's backup shows: `gate` is marked due
    a sync before acme's commit, as for a revocation, and this read syncs it."""
    with troth.Node.open("gate") as gate:
        gate.enroll(world.acme.ticket(READ))
        held = gate.feed(world.acme.identifier)
        assert held is not None
        assert held.supersession(world.support.identifier) is None
        _rotate_elsewhere("agents", "support", compromised=True)
        feed = gate.feed(world.acme.identifier)
        assert feed is not None  # synced at this read (the mark), not refused
        assert feed.supersession(world.support.identifier) is not None
