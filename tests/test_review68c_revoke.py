"""Review 68c, a second review of 67f/67l/67q's leases revoked by a compromised rotation
(troth.node.rotation_revoke, `broker_revoke_due`).

revoke 1 (medium: what a stolen key obtained outlives the owner's rotation) `troth identity
  rotate --compromised` on a broker node committed the rotation, then announced it to every
  authority the identity holds credentials from (over the network for a remote one: a
  transient node's connection, its timeouts), and only then revoked the leases the stolen key
  obtained. An announcement that fails other than by a TrothError, or is cut short (Ctrl-C
  while a remote authority does not answer), left every such lease live (a PostgreSQL role's
  sessions with it) until the node's broker next started: on a node not running, days. The
  leases are now revoked right after the commit, before the announcement.

revoke 2 (low: a narrow race) One `broker_revoke_due` row per identity is shared by every
  compromised rotation of it: `mark_due` kept the earliest count (ON CONFLICT DO NOTHING), so
  a rotation B marking while an earlier one A's committed row waited left no trace, and the
  broker's round finishing A's row (or A's own process, `done`) deleted it though B had not
  committed: a lease the thief of the key B retires took before B's commit outlived B killed
  after its commit. The row now keeps the latest count a rotation marked at (`marked`; a
  table made before is given the column); a revocation made once the identity held k
  changes deletes the row only if no rotation marked at k or later, else leaves it due beyond
  k. (Left: a rotation that fails still deletes a row another of the same count in flight
  relies on: `failed`, as before.)
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import troth
from tests import test_review67f_secrets as review67f
from tests.conftest import NOW
from tests.support.killed import killed_after
from tests.support.public_api import READ, Agents
from tests.test_review67l_refuted import leased
from tests.test_review68c_refuted import _rotate_ops as rotate_ops
from troth._api import node as api_node
from troth.cli import identity_cmds
from troth.cli.main import cli
from troth.faults import CRASH_EXIT_CODE
from troth.node.rotation_revoke import finish_due, mark_due
from troth.node.services.broker import open_broker

world = review67f.world  # the fixture: acme's hub brokering `payments` to its members


def test_revoke1_an_announcement_cut_short_leaves_no_lease_live(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """support leases; the hub (not running) rotates its own identity as compromised, the
    announcement interrupted: support's lease, obtained under the stolen key, ended anyway."""
    leased(world, (world.agents, "support"))

    def interrupted(node_name: str, ref: str) -> list[object]:
        raise KeyboardInterrupt  # Ctrl-C while a remote authority does not answer

    monkeypatch.setattr(identity_cmds, "_announce", interrupted)
    name, before = world.hub.name, world.hub.identity.changes
    rotated = CliRunner().invoke(cli, ["identity", "rotate", name, "--compromised", "--node", name])
    assert rotated.exit_code != 0
    assert world.hub.identity.changes > before  # committed
    assert world.hub.secrets.revoke_holder(world.support) == []  # ended by the rotation


def test_revoke1_the_apis_announcement_cut_short_leaves_no_lease_live(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through `Identities.rotate(..., compromised=True)`: its announcement to the
    authorities on this machine interrupted, support's lease ended anyway."""
    leased(world, (world.agents, "support"))

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api_node, "announce_here", interrupted)
    with pytest.raises(KeyboardInterrupt):
        world.hub.identities.rotate(world.hub.identity, compromised=True)
    assert world.hub.secrets.revoke_holder(world.support) == []  # ended by the rotation


def test_revoke2_a_finish_between_a_rotations_mark_and_its_commit_loses_its_row(
    world: Agents,
) -> None:
    """ops's compromised rotation A is killed after its commit (its row due); B, the next
    compromised rotation of ops, records its row (kept: A's, the earliest count), and the
    running broker's maintenance round finishes A's row then, deleting it; a lease the thief
    of the key B retires takes before B's commit outlives B killed after its commit."""
    ops = world.hub.identities.create("ops")
    world.hub.enroll(world.acme.ticket(READ), identity=ops)
    leased(world, (world.hub, "ops"))
    assert killed_after(0, rotate_ops, "identity.rotate.after-commit") == CRASH_EXIT_CODE
    node = world.hub._stored
    mark_due(node, "ops")  # B's first step
    broker = open_broker(node, now=NOW)
    try:
        assert finish_due(node, broker, NOW) == 1  # the round: A's lease ended, the row gone
        with troth.Node.open("acme") as fresh:  # ops's history as stored (a child rotated)
            leased(world, (fresh, "ops"))  # the thief, under the key B retires
        node.identities.rotate("ops", now=world.hub._clock.now(), compromised=True)  # B: killed
        finish_due(node, broker, NOW + 10)  # the next round, or the node's next start
    finally:
        broker.close()
    assert world.hub.secrets.revoke_holder(ops) == []  # nothing live


def test_revoke2_a_table_made_before_is_given_its_column(world: Agents) -> None:
    """A node.db whose table 67l made (no `marked`): its row, due, is finished as before, and
    the next mark gives the table the column."""
    node = world.hub._stored
    node.db.execute(
        "CREATE TABLE broker_revoke_due "
        "(identity BLOB PRIMARY KEY, changes INTEGER NOT NULL) STRICT"
    )
    node.db.execute("INSERT INTO broker_revoke_due VALUES (?, 0)", (bytes(32),))
    broker = open_broker(node, now=NOW)
    try:
        assert finish_due(node, broker, NOW) == 1
    finally:
        broker.close()
    assert node.db.fetch_all("SELECT * FROM broker_revoke_due") == []
    ops = world.hub.identities.create("ops")
    assert mark_due(node, "ops") == ops.identifier.digest
    assert node.db.fetch_all("SELECT changes, marked FROM broker_revoke_due") == [
        (ops.changes, ops.changes)
    ]
