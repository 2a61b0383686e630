"""Review 68p, cache: what a long-lived process holding a node open keeps of an identity
after another process (or another handle) rotated it.

cache 1 (medium: a stolen key outlives the owner's rotation at the nodes running here) A
rotation announced to an authority on this machine (`troth identity rotate`, `Identities.rotate`:
`announce_here`) appends a supersession to the authority's feed, the entry every verifier
refuses the older history by. But, unlike a revocation (reviews 48c, 49a, 63u), nobody running
was told: a node served in this process read the hosting authority's store only at its next
poll (HOSTED_FEED_POLL) and a trusting node's feed only at its next maintenance round (30 s),
and no daemon running a node here was asked to sync the feed (`feed.sync`). Meanwhile the
running nodes judged channels on the feed in their memory: a thief holding a copy of the
member's vault (its history before the rotation) leased a secret from the running broker
right after the owner's `--compromised` rotation, refused only by a node started after it.
Now the announcement tells them as a revocation does: the runtimes served in this process
re-read the authority's feed before the rotation returns, and every daemon running a node of
the home (the rotating one's too) is asked to sync it.
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
from tests.support.public_api import Agents
from tests.test_review68p_refuted import leased
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
