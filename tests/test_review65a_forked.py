"""Review 65a, forked: what a node says when its authority refuses a local identity's
rotation as a fork (reviews 64u, 64y, 64a2).

Forked 1: an agent (a local identity other than the node's own, enrolled with a remote
authority) whose stolen backup's rotation reached the authority first. The owner rotates it
(`--compromised`) and the node announces that over its own channel, which the authority's node
admits (it shows the node's history, not the agent's); the authority refuses the `rotated`
request itself as a fork, and its node answers `AuthorityError: request invalid (change 1:
history forks from the stored copy)`. The node read only a CLOSE or a local AuthorityError as
a fork refusal (`refused_as_fork`): the agent's row said `forked: false` with the bare answer,
so `troth identity rotate` promised that the running node retries, and every round retried a
refusal that no retry can change, nothing telling the owner that the agent is lost to that
authority and what to do. The answer is now read as the fork refusal it is, and the row names
the agent (whose history the request carried) as the identity to revoke, not the node's.

Forked 2: `troth identity show AGENT` beside the running node still said "not yet announced
... the running node's next round announces it" (review 64u read only the node's own
identity's link rows, and an agent's refusal is no link's): the running node now keeps, per
pending announcement, the identity its last one was refused as a fork for (`node status`:
`refused_as_fork`, gone once one succeeds), and `identity show` names the fork and what to do
for the agent too (JSON `refused_as_fork_by`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.backups import copy_db, node_db
from tests.support.cli import run
from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.authority.client import rotated_request
from troth.identity import LocalIdentity
from troth.node import daemon, open_node
from troth.node.runtime import NodeRuntime


async def agent_forked(net: MemNet) -> tuple[NodeRuntime, LocalIdentity]:
    """Node `owner` hosts agent `bot`, both members of the hub's authority; a copy of the node
    rotates `bot` and announces that first; the owner then rotates it as compromised (not
    announced yet)."""
    owner = await net.member("owner")
    bot = owner.node.identities.create(name="bot", now=net.clock.now())
    await owner.enroll(net.ticket(), "bot")
    await owner.channel_to(route(HUB))
    source, copy = net.home / "nodes" / "owner", net.home / "nodes" / "thief"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("node.db*", "*.sock"))
    copy_db(node_db(net.home, "owner"), node_db(net.home, "thief"))
    with open_node("thief", home=net.home) as thief:  # the stolen backup rotates first
        thief.identities.rotate("bot", now=net.clock.now())
        request = rotated_request(
            thief.identities, "bot", net.authority.identifier, now=net.clock.now()
        )
    net.authority.rotated(request, now=net.clock.now())
    owner.node.identities.rotate("bot", now=net.clock.now(), compromised=True)
    return owner, bot


def _agent_refused(
    home: Path,
) -> tuple[list[dict[str, Any]], dict[str, str], list[dict[str, str]]]:
    """`agent_forked`, announced: the announcement rows, the identifiers, and the running
    node's `refused_as_fork`."""
    rows: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    status: list[dict[str, str]] = []

    async def test(net: MemNet) -> None:
        owner, bot = await agent_forked(net)
        ids["bot"], ids["owner"] = str(bot.identifier), str(net.identifier(owner))
        rows.extend(await owner.announce_rotations("bot"))
        status.extend(owner.status()["refused_as_fork"])

    run_memnet(test, home, budget=30)
    return rows, ids, status


def test_an_agents_rotation_refused_as_a_fork_by_a_remote_authority_is_named(
    tmp_path: Path,
) -> None:
    """Forked 1: the agent's announcement row says `forked`, names the agent, not retry."""
    rows, ids, _ = _agent_refused(tmp_path / "home")
    (row,) = rows
    assert row["announced"] is False
    assert "history forks from the stored copy" in row["error"]
    assert row["forked"] is True
    assert "retrying cannot help" in row["error"]
    assert f"troth revoke identity {ids['bot']}" in row["error"]
    assert ids["owner"] not in row["error"]  # the node's own identity was not refused


def test_identity_show_names_an_agents_fork_beside_the_running_node(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forked 2: `identity show bot` names the fork (the running node's `refused_as_fork`),
    not "the running node's next round announces it"."""
    _, ids, refused = _agent_refused(troth_home)
    assert [row["identity"] for row in refused] == [ids["bot"]]
    monkeypatch.setattr(daemon, "node_status", lambda home, name: {"running": True})
    monkeypatch.setattr(daemon, "control", lambda *a, **k: {"refused_as_fork": refused})
    text = run("identity", "show", "bot", "--node", "owner").stdout
    assert "next round" not in text
    assert "its node refuses this history as a fork" in text
    assert f"troth revoke identity {ids['bot']}" in text
    shown = json.loads(run("identity", "show", "bot", "--node", "owner", "--json").stdout)
    assert shown["refused_as_fork_by"] == shown["unannounced"]
