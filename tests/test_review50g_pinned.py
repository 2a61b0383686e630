"""Review 50g, pinned 1: a peer pinned by the operator (`Node.connect(route, expect=...)`, a
link's pinned identity) and admitted without a credential from an authority the node trusts
had its history checked at every handshake (no fork, no rollback of a stored copy) but never
stored (`NodeTrust._remember` kept members' and anchors' histories only): the node verified
the peer's rotation, and a stale backup of the peer (its node.db restored on another machine:
the pre-rotation keys) was admitted as that peer at the next handshake. The history of a peer
the node pins, or of which it stores a copy, is now stored (store-or-extend) once admitted,
so the backup is refused (`peer invalid`: older than the stored copy). A stranger admitted to
enroll is still judged but not kept (review 23a, histories 1).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import troth
from tests.support.backups import copy_db, node_db, thief_copy
from troth.errors import ChannelError, ChannelFailure
from troth.identity import Identifier
from troth.node import open_node


def _copy(home: Path, name: str, to: Path) -> None:
    copy_db(node_db(home, name), to)


def _restore(home: Path, name: str, copy: Path) -> None:
    """Node `name`'s node.db put back as a thief's machine holds the copy (no guard)."""
    thief_copy(node_db(home, name), copy)


async def _echo(bee: Identifier) -> str:
    """Node a calls echo on node bee (listening), pinned to `bee`."""
    with troth.Node.open("bee") as served, troth.Node.open("a") as caller:
        async with (
            served.serve(listen=("127.0.0.1", 0)) as at,
            caller.serve() as running,
            running.connect(at.address, expect=bee) as channel,
        ):
            return str(await channel.call("echo", "echo", "hi"))


def _stored(bee: Identifier) -> int | None:
    with open_node("a") as node:
        return node.identities.stored_changes(bee)


@pytest.fixture
def nodes(troth_home: Path) -> Identifier:
    """a, a member of acme; bee, trusting acme (it admits a) with no credential of its own."""
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
        authority = acme.identity.identifier
    with troth.Node.open("a") as a:
        a.enroll(ticket)
    with troth.Node.open("bee") as bee:
        identifier = bee.identity.identifier
    with open_node("bee") as node:
        node.wallet.trust(authority, "node:acme", now=int(time.time()))
    return identifier


def test_a_pinned_peers_stale_backup_is_refused_once_its_rotation_was_seen(
    troth_home: Path, tmp_path: Path, nodes: Identifier
) -> None:
    bee, copy = nodes, tmp_path / "bee.db"
    _copy(troth_home, "bee", copy)
    with troth.Node.open("bee") as node:
        node.identities.rotate(node.identity, compromised=True)
    assert asyncio.run(_echo(bee)) == "hi"  # a verified bee's rotation (3 changes)
    assert _stored(bee) == 3
    _restore(troth_home, "bee", copy)  # bee's stale backup, its pre-rotation keys
    with pytest.raises(ChannelError) as refused:
        asyncio.run(_echo(bee))
    assert refused.value.reason is ChannelFailure.PEER_INVALID
    assert "older than the stored copy" in str(refused.value)
