"""Review 64u, rotation: what a member whose thief's rotation won is told, with a REMOTE
authority (its node reached over a channel: review 64s covered an authority on the machine).

Rotation 1: a thief holding a copy of the member's node rotates her identity first and
announces it; the authority's node stores the thief's history and refuses hers as a fork at
the handshake, so her node never gets the feed naming the thief's change. She saw only the
link error `peer invalid (change 1: history forks from the stored copy)` in `node status`
(its links) and in her announcement's row, and `identity show` still said "the running
node's next round announces it". All three now name the case (`identity show` from the
running node's link, JSON `refused_as_fork_by`; the link row's `forked`) (a copy of her keys rotated
first) and what to do (the authority's operator revokes the identity, she enrolls a new one);
the authority sends the same bytes as before (the member's node explains the close it got).

Rotation 2: her first announcement after rotating went over the shared channel, which still
showed her history before the rotation: refused as "superseded history ... fewer changes", as
if her node had missed a rotation. Her node's own announcement refused over it is sent again
over a channel of its own showing the rotated history, and gets the authority's true answer.

Rotation 3: the announcement row said nothing about retrying being useless, and `troth
identity rotate` said "a running node retries" for a fork no retry can change: the row now
carries `forked: true` (a field added) and the CLI no longer promises a retry; likewise
for an authority on this machine, announced to directly (its REQUEST_INVALID naming a fork).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.announced_restore import thief_rotated_first
from tests.support.cli import run
from tests.support.nodes import MemNet, run_memnet
from troth.cli.main import cli
from troth.node import daemon


def test_the_first_announcement_names_the_fork_not_a_missed_rotation(tmp_path: Path) -> None:
    """Rotation 2 and 3: the announcement's row says the authority refuses the history as a
    fork, what to do, and `forked`; not "superseded ... fewer changes"."""
    rows: list[dict[str, Any]] = []

    async def test(net: MemNet) -> None:
        agent = await thief_rotated_first(net)
        rows.extend(await agent.announce_rotations("agent"))

    run_memnet(test, tmp_path / "home", budget=30)
    (row,) = rows
    assert row["announced"] is False
    assert "fewer changes" not in row["error"]
    assert "history forks from the stored copy" in row["error"]
    assert "retrying cannot help" in row["error"]
    assert "troth revoke identity" in row["error"]
    assert row["forked"] is True


def test_node_status_names_the_fork_on_the_link_to_the_authority(tmp_path: Path) -> None:
    """Rotation 1: once the node shows its rotated history, the link to the hub fails as a
    fork; `node status` says what it means."""
    errors: list[str] = []

    async def test(net: MemNet) -> None:
        agent = await thief_rotated_first(net)
        await agent.announce_rotations("agent")  # `rotated`: the shared channel closes
        for _ in range(200):
            (link,) = agent.status()["links"]
            if link["error"]:
                errors.append(link["error"])
                return
            await asyncio.sleep(0.01)

    run_memnet(test, tmp_path / "home", budget=30)
    (error,) = errors
    assert "history forks from the stored copy" in error
    assert "a copy of its keys" in error
    assert "troth revoke identity" in error


def _refused_over_the_network(home: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`thief_rotated_first` in `home`, announced; the announcement rows and the link rows
    once the link to the hub failed (the stopped runtime's last word)."""
    rows: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []

    async def test(net: MemNet) -> None:
        agent = await thief_rotated_first(net)
        rows.extend(await agent.announce_rotations("agent"))
        for _ in range(200):
            if any(link["error"] for link in agent.status()["links"]):
                links.extend(agent.status()["links"])
                return
            await asyncio.sleep(0.01)

    run_memnet(test, home, budget=30)
    return rows, links


def _running_with(monkeypatch: pytest.MonkeyPatch, links: list[dict[str, Any]]) -> None:
    """The CLI sees node `agent` running, its status showing `links`."""
    monkeypatch.setattr(daemon, "node_status", lambda home, name: {"running": True})
    monkeypatch.setattr(daemon, "control", lambda *a, **k: {"links": links})


def test_identity_show_names_the_fork_a_remote_authority_refused(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rotation 1: `identity show` with the running node's link refused as a fork says so,
    not "the running node's next round announces it"; JSON `refused_as_fork_by` (added)."""
    _rows, links = _refused_over_the_network(troth_home)
    _running_with(monkeypatch, links)
    text = run("identity", "show", "agent", "--node", "agent").stdout
    assert "next round" not in text
    assert "its node refuses this history as a fork" in text
    assert "troth revoke identity" in text
    shown = json.loads(run("identity", "show", "agent", "--node", "agent", "--json").stdout)
    assert shown["refused_as_fork_by"] == shown["unannounced"]


def test_rotate_promises_no_retry_for_a_fork(troth_home: Path) -> None:
    """Rotation 3: `identity rotate` again, its announcement refused as a fork (the hub's node
    is on this machine: announced to it directly; the running node's rows are above) does
    not say "a running node retries", and its JSON row says `forked`."""
    _refused_over_the_network(troth_home)
    rotated = CliRunner().invoke(cli, ["identity", "rotate", "agent", "--node", "agent"])
    assert "not announced to" in rotated.stderr
    assert "retrying cannot help" in rotated.stderr
    assert "a running node retries" not in rotated.stderr
    again = run("identity", "rotate", "agent", "--node", "agent", "--json").stdout
    (row,) = json.loads(again)["announcements"]
    assert row["forked"] is True
