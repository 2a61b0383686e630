"""Review 67q: attacks on 67l's revocation recorded due for a compromised rotation
(`broker_revoke_due`, troth.node.rotation_revoke) that did not work (each a real attempt,
failing if the defence it names broke)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import troth
from tests import test_review67f_secrets as review67f
from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, restore_db, restores_found
from tests.support.killed import killed_after
from tests.support.public_api import READ, Agents
from tests.test_review67l_refuted import leased
from troth.faults import CRASH_EXIT_CODE
from troth.node.rotation_revoke import finish_due
from troth.node.services.broker import open_broker

world = review67f.world  # the fixture: acme's hub brokering `payments` to its members


def _rotate_in_a_child(ref: str | None, crash_at: str, *, compromised: bool = True) -> None:
    """acme's identity `ref` (None: the node's own) rotated in a forked child (another
    process) killed at `crash_at`."""

    def rotate() -> None:
        with troth.Node.open("acme") as hub:
            hub.identities.rotate(ref or hub.identity, compromised=compromised)

    assert killed_after(0, rotate, crash_at) == CRASH_EXIT_CODE


def test_a_running_broker_refuses_a_chain_under_a_key_another_process_rotated_out(
    world: Agents,
) -> None:
    """The thief's window 67l left untested: the hub's identity (support's chain's issuer)
    rotated as compromised by another process killed before its revocation, the running
    broker's next maintenance round not yet come: support's chain, signed under the retired
    key, leases no more and renews no more (the broker reads the rotation stored, not a
    history it cached), though it leased a moment before."""
    secrets = world.agents.secrets
    outcome: list[str] = []

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier

            async def lease() -> troth.IssuedLease:
                return await secrets.lease(
                    "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
                )

            issued = await lease()
            await lease()  # the control: the same chain leases again before the rotation
            _rotate_in_a_child(None, "identity.rotate.after-commit")
            renew = secrets.renew(issued.lease_id.text(), holder="support", broker=at)
            for attempt in (lease(), renew):
                try:
                    await attempt
                    outcome.append("granted")
                except troth.SecretError as exc:
                    outcome.append(str(exc))

    asyncio.run(main())
    assert len(outcome) == 2
    assert all("holds no current credential" in reason for reason in outcome), outcome


def test_a_row_left_by_a_rotation_killed_before_its_commit_ends_only_that_identitys_leases(
    world: Agents,
) -> None:
    """A compromised rotation of `ops` (a member hosted on the hub) killed before its commit
    leaves its row; ops's next, routine, rotation has the broker's start revoke ops's lease
    (over-revocation of its own chains, as the compromised one meant), never support's."""
    ops = world.hub.identities.create("ops")
    world.hub.enroll(world.acme.ticket(READ), identity=ops)
    leased(world, (world.agents, "support"), (world.hub, "ops"))
    _rotate_in_a_child("ops", "identity.rotate.before-commit")
    world.hub.identities.rotate("ops")  # routine

    async def start() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)):
            pass

    asyncio.run(start())
    assert world.hub.secrets.revoke_holder(ops) == []  # revoked by the broker's start
    ended = world.hub.secrets.revoke_holder(world.support)
    assert [lease.state.name for lease in ended] == ["REVOKED"]  # live until now


def test_a_row_finished_twice_or_for_an_identity_not_held_here_revokes_once(
    world: Agents,
) -> None:
    """A row naming no identity held here (deleted, or planted) is revoked as due (deny when
    in doubt) and deleted; the daemon and the CLI both finishing a row (the CLI's delete after
    the daemon's) find it gone: nothing revoked twice, no error, the table not growing."""
    leased(world, (world.agents, "support"))
    node = world.hub._stored
    node.db.execute(
        "CREATE TABLE IF NOT EXISTS broker_revoke_due "
        "(identity BLOB PRIMARY KEY, changes INTEGER NOT NULL) STRICT"
    )
    node.db.execute("INSERT INTO broker_revoke_due VALUES (?, 0)", (bytes(32),))
    broker = open_broker(node, now=NOW)
    try:
        assert finish_due(node, broker, NOW) == 1
        assert finish_due(node, broker, NOW) == 0
    finally:
        broker.close()
    assert node.db.fetch_all("SELECT * FROM broker_revoke_due") == []
    ended = world.hub.secrets.revoke_holder(world.support)
    assert [lease.state.name for lease in ended] == ["REVOKED"]  # no one else's lease ended


def test_a_restore_from_before_the_row_serves_nothing_until_its_operator_answers(
    world: Agents, troth_home: Path, tmp_path: Path
) -> None:
    """node.db put back from a copy taken before a compromised rotation of the node's own
    identity whose process was killed before its revocation: the row is lost with the copy,
    and so is the rotation itself (the stolen key current in the copy); the broker does not
    serve support's lease on that copy: the restore found holds the identity, the node refuses
    to start until its operator answers (docs/vault.md, "A node.db restored from before a
    rotation")."""
    leased(world, (world.agents, "support"))
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)
    _rotate_in_a_child(None, "identity.rotate.after-commit")
    restore_db(path, copy)

    async def start(hub: troth.Node) -> None:
        async with hub.serve(listen=("127.0.0.1", 0)):
            pass

    with (
        troth.Node.open("acme") as hub,  # the restored file (the fixture's holds the old)
        pytest.raises(troth.IdentityError, match="restored from a copy taken before"),
    ):
        asyncio.run(start(hub))
    assert "identity" in {row.scope for row in restores_found(path)}
