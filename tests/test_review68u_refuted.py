"""Review 68u, notify: attacks on how a rotation here tells the nodes here (review 68p,
cache 1) that did not work, each kept as a test of the defence that stopped it.

- another node of the home whose `node.db` is garbage, or whose configuration is gone (a node
  being deleted) while its store stays: the rotation commits, is announced (no error row),
  and the nodes that could be marked are (`local_nodes_due` logs and skips the broken one);
- a node told of the supersession re-reads the feed, and a second rotation told again
  supersedes the first: no node ends up holding the older history's feed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests import test_review67f_secrets as review67f
from tests.support.public_api import READ, Agents

world = review67f.world  # acme's hub (node `acme`) hosting the authority, `agents` a member


@pytest.mark.parametrize("broken", ["garbage", "deleting"])
def test_a_broken_node_here_fails_no_rotation(
    world: Agents, troth_home: Path, broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`gate` trusts acme; `wreck` is broken (its node.db garbage, or its node.json gone while
    its store stays): rotating support announces it all the same, and `gate`'s next read of
    the feed holds the supersession (marked, not skipped with the broken one)."""
    with troth.Node.open("wreck") as wreck:
        wreck.enroll(world.acme.ticket(READ))
    nodes = troth_home / "nodes"
    if broken == "garbage":
        (nodes / "wreck" / "node.db").write_bytes(b"not a database" * 64)
    else:
        (nodes / "wreck" / "node.json").unlink()
    with troth.Node.open("gate") as gate:
        gate.enroll(world.acme.ticket(READ))
        world.agents.identities.rotate("support", compromised=True)
        feed = gate.feed(world.acme.identifier)
        assert feed is not None
        assert feed.supersession(world.support.identifier) is not None
    if broken == "garbage":  # (tried, and skipped)
        assert "node 'wreck' was not marked due a sync" in caplog.text
    held = world.agents.feed(world.acme.identifier)
    assert held is not None
    assert held.supersession(world.support.identifier) is not None


def test_a_second_rotation_reaches_a_node_told_of_the_first(world: Agents) -> None:
    """`gate` open across two rotations of support: its feed names the second's history (the
    supersession of the newer change count), never left at the first."""
    with troth.Node.open("gate") as gate:
        gate.enroll(world.acme.ticket(READ))
        world.agents.identities.rotate("support")
        first = gate.feed(world.acme.identifier)
        assert first is not None
        one = first.supersession(world.support.identifier)
        world.agents.identities.rotate("support", compromised=True)
        second = gate.feed(world.acme.identifier)
        assert second is not None
        two = second.supersession(world.support.identifier)
        assert one is not None
        assert two is not None
        assert two != one
