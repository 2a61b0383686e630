"""Review 69d, refuted: attacks on how a rotation tells the nodes here (reviews 68p, 68u)
that the code withstood.

- A status.json planted in a node's directory of the home, naming this (not a node's) process
  and a control socket it listens on: the rotation's telling sends nothing there (the pid must
  be the node holding its lock).
- A node stopped (closed) while its identity's authority took two rotations of a member, one
  after the other, then opened: the feed it hands a program supersedes the newest history,
  not only the first (the due mark keeps the later rotation's count).
- A thief holding a copy of the hub's node (its member `ops`'s key before the rotation)
  leasing at the running broker in the window after a compromised rotation of `ops` revoked
  its leases and before it was announced (the process killed there, the announcement left to
  the next round): refused, as the broker's node stores the newer history, and no lease of
  `ops` is live.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path

import pytest

import troth
from tests import test_review67f_secrets as review67f
from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, thief_copy
from tests.support.public_api import READ, Agents
from tests.test_review68p_refuted import leased
from troth.clock import SystemClock
from troth.node import open_node
from troth.node.process import start_time
from troth.node.rotation import rotate_local
from troth.node.rotation_revoke import done as revocation_done
from troth.node.services.broker import open_broker
from troth.node.traces import tell_local_nodes
from troth.secrets.lease import LIVE_STATES

world = review67f.world  # acme's hub (node `acme`) hosting the authority, `agents` a member


def test_a_planted_status_file_draws_no_telling_to_a_process_of_its_choosing(
    world: Agents, troth_home: Path, tmp_path: Path
) -> None:
    planted = troth_home / "nodes" / "acme"
    path = str(tmp_path / "c.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    listener.settimeout(0.2)
    started = start_time(os.getpid())  # (this process's own: only the pid's owner differs)
    (planted / "status.json").write_text(
        f'{{"pid": {os.getpid()}, "control": "{path}", "started": {started}}}', encoding="utf-8"
    )
    (planted / "status.json").chmod(0o600)
    try:
        with open_node("agents") as agents:
            tell_local_nodes(agents, world.acme.identifier)
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            connection = None
        if connection is not None:
            connection.close()
        assert connection is None  # nothing connected, nothing sent
    finally:
        listener.close()


def test_a_node_down_through_two_rotations_holds_the_newest_when_opened(
    world: Agents,
) -> None:
    support = world.agents.identities.get("support")
    with troth.Node.open("gate") as gate:
        gate.enroll(world.acme.ticket(READ))
        held = gate.feed(world.acme.identifier)
        assert held is not None
        assert held.supersession(support.identifier) is None
    world.agents.identities.rotate("support")
    newest = world.agents.identities.rotate("support", compromised=True)
    with troth.Node.open("gate") as gate:
        feed = gate.feed(world.acme.identifier)
        assert feed is not None
        superseded = feed.supersession(support.identifier)
        assert superseded is not None
        assert superseded.changes == newest.changes


def _stolen(home: Path, tmp_path: Path, name: str) -> Path:
    """A thief's home holding a copy of node `name` as it is now (its vault and node.db)."""
    thief = tmp_path / "thief"
    (thief / "nodes").mkdir(mode=0o700, parents=True)
    thief.chmod(0o700)
    shutil.copytree(home / "nodes" / name, thief / "nodes" / name)
    copy_db(node_db(home, name), tmp_path / "stolen.db")
    thief_copy(node_db(thief, name), tmp_path / "stolen.db")
    return thief


def test_a_thiefs_lease_between_the_revocation_and_the_announcement_is_refused(
    world: Agents, troth_home: Path, tmp_path: Path
) -> None:
    ops = world.hub.identities.create("ops")
    world.hub.enroll(world.acme.ticket(READ), identity=ops)

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            thief_home = _stolen(troth_home, tmp_path, "acme")
            node = world.hub._stored  # `Identities.rotate`'s steps, up to its announcement
            new = rotate_local(node, "ops", clock=SystemClock(), compromised=True).identity
            world.hub.secrets.revoke_holder(new.identifier)
            revocation_done(node, new.identifier.digest, new.change_count)
            with (
                troth.Node.open("acme", home=thief_home) as thief,
                pytest.raises(troth.ChannelError) as refused,
            ):
                await leased(thief, "ops", running)
            assert "older than the stored copy" in str(refused.value)

    asyncio.run(main())
    broker = open_broker(world.hub._stored, now=NOW)
    try:
        assert broker.store.leases_in(LIVE_STATES, identity=ops.identifier, limit=None) == []
    finally:
        broker.close()
