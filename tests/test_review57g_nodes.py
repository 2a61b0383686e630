"""Review 57g (identity rotation) on running nodes: a member's stolen pre-rotation keys (a copy
of her node directory) against nodes that stored her rotation and nodes that did not.

acme hosts an authority; `a` is its member; `desk` and `bee` trust acme. `thief` is a copy of
a's node directory taken before she rotated (her vault: current and committed next key, her
credential). Every attempt here was refused (the refuted half of the review); see
tests/test_review57g_refuted.py for the library-level attempts.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

import troth
from troth.errors import ChannelError, ChannelFailure
from troth.identity import Identifier
from troth.node import open_node


@pytest.fixture
def member(troth_home: Path) -> Identifier:
    """acme, its member a, desk and bee trusting acme, and thief: a copy of a's node now."""
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
        authority = acme.identity.identifier
    with troth.Node.open("a") as a:
        a.enroll(ticket)
        identifier = a.identity.identifier
    for name in ("desk", "bee"):
        with troth.Node.open(name):
            pass
        with open_node(name) as node:
            node.wallet.trust(authority, "node:acme", now=int(time.time()))
    shutil.copytree(troth_home / "nodes" / "a", troth_home / "nodes" / "thief")
    return identifier


async def _echo(caller: str, served: str) -> str:
    with troth.Node.open(served) as node, troth.Node.open(caller) as calling:
        peer = node.identity.identifier
        async with (
            node.serve(listen=("127.0.0.1", 0)) as at,
            calling.serve() as running,
            running.connect(at.address, expect=peer) as channel,
        ):
            return str(await channel.call("echo", "echo", "hi"))


def _refused(caller: str, served: str) -> ChannelError:
    with pytest.raises(ChannelError) as refused:
        asyncio.run(_echo(caller, served))
    return refused.value


def _stored(node_name: str, identifier: Identifier) -> int | None:
    with open_node(node_name) as node:
        return node.identities.stored_changes(identifier)


def test_a_thiefs_fork_is_refused_where_her_rotation_was_stored_and_where_it_was_announced(
    troth_home: Path, member: Identifier
) -> None:
    """a rotates (announced to acme on this machine) and calls desk, which stores her history.
    The thief rotates its copy to a key of its own (a fork at change 1) and calls desk: refused
    as a fork, kept as evidence; and bee, which never saw a: refused by acme's feed, which
    names her rotation (superseded). Her own calls still pass at both."""
    with troth.Node.open("a") as a:
        a.identities.rotate(a.identity)
    assert asyncio.run(_echo("a", "desk")) == "hi"
    assert _stored("desk", member) == 2
    with troth.Node.open("thief") as thief:
        thief.identities.rotate(thief.identity)  # its own key: [c0, c1'] (its announcement fails)
    at_desk = _refused("thief", "desk")
    assert at_desk.reason is ChannelFailure.PEER_INVALID
    assert "forks" in str(at_desk)
    with open_node("desk") as node:
        assert node.identities.forks(member)  # the evidence
    at_bee = _refused("thief", "bee")
    assert at_bee.reason is ChannelFailure.PEER_INVALID
    assert "superseded" in str(at_bee)
    assert _stored("bee", member) is None  # nothing of the thief's kept
    assert asyncio.run(_echo("a", "bee")) == "hi"
    assert _stored("bee", member) == 2


def test_a_stale_copy_is_refused_after_several_rotations(
    troth_home: Path, member: Identifier
) -> None:
    """a rotates three times (the last one as compromised) and calls desk; the thief's copy,
    three rotations old, is refused at desk (older than the stored copy) and at bee (acme's
    feed supersedes it)."""
    with troth.Node.open("a") as a:
        a.identities.rotate(a.identity)
        a.identities.rotate(a.identity)
        a.identities.rotate(a.identity, compromised=True)
    assert asyncio.run(_echo("a", "desk")) == "hi"
    assert _stored("desk", member) == 5
    at_desk = _refused("thief", "desk")
    assert at_desk.reason is ChannelFailure.PEER_INVALID
    assert "older than the stored copy" in str(at_desk)
    at_bee = _refused("thief", "bee")
    assert at_bee.reason is ChannelFailure.PEER_INVALID
    assert "superseded" in str(at_bee)
